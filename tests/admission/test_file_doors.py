"""The batch doors (CSV and JSON Lines imports, Salesforce syncs) with hostile values.

Each file or sync gets a verdict per row (the error report), never a crashed
job, and every row reported as imported is readable on its user afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from insights.domain.core import limits
from tests.admission.hostile import (
    FEW,
    NUMBERS,
    STRINGS,
    UUID_EDGES,
    Counter,
    Taken,
    prefill,
    prefills,
    scalars,
    values,
)
from tests.conftest import T0_MS, Stack
from tests.imports.test_imports import upload
from tests.salesforce.salesforce_fake import App, FakeSalesforce
from tests.salesforce.test_salesforce import body as connection

CAP = 5  # the per-user attribute cap while this module runs: met at every ±1 cheaply
DAY_MS = 86_400_000


@pytest.fixture(scope="module", autouse=True)
def small_caps() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", CAP)
        yield


def rejected_rows(job: dict[str, Any]) -> dict[int, str]:
    """Row number -> the report's line, for every row the job rejected."""
    if job["error_report"] is None:
        return {}
    text = requests.get(job["error_report"]["url"], timeout=10).text
    lines = list(csv.reader(io.StringIO(text)))[1:]
    return {int(line[0]): ",".join(line) for line in lines if line and line[0].isdigit()}


def _text(value: Any) -> str | None:
    """A value as a CSV cell (None: not sendable in a UTF-8 file)."""
    text = (
        json.dumps(value) if isinstance(value, bool | dict | list) or value is None else str(value)
    )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None  # a lone surrogate: no UTF-8 file holds one (the JSON Lines door sends it)
    return None if "\x00" in text or "\r" in text else text


def _number(text: str) -> float | int:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        return float(stripped)


rows = st.lists(st.tuples(values, scalars, prefills, st.booleans()), min_size=5, max_size=12)


def test_the_csv_door(shared: Stack) -> None:
    account = shared.account("csv")
    taken = Taken(shared, account)
    fresh = Counter("csv")

    @FEW
    @given(rows)
    def send(examples: list[tuple[Any, Any, int, bool]]) -> None:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["uuid", "v", "n"])
        sent: list[tuple[str, str, str]] = []
        for value, number, held, edge in examples:
            uuid = fresh()
            if edge:  # at the uuid length cap
                uuid = "u" * (256 - len(uuid)) + uuid
            cell, cell_n = _text(value), _text(number)
            if cell is None or cell_n is None:
                continue
            prefill(shared, account, uuid, held)
            writer.writerow([uuid, cell, cell_n])
            sent.append((uuid, cell, cell_n))
        writer.writerow(["u" * 257, "too long a uuid", "1"])
        job = upload(
            shared, account, "hostile.csv", out.getvalue().encode(), {"types": {"n": "number"}}
        )
        assert job["status"] in ("succeeded", "partially_succeeded", "failed"), job
        assert job["error"] is None or "rejected" in job["error"], job
        refused = rejected_rows(job)
        assert len(sent) + 2 in refused  # the 257-character uuid
        for row, (uuid, cell, cell_n) in enumerate(sent, start=2):
            if row in refused:
                continue
            if cell.strip():
                taken.add(uuid, "v", cell, json.dumps(job))
            if cell_n.strip():
                taken.add(uuid, "n", _number(cell_n), json.dumps(job))

    send()
    taken.check()


def test_the_json_lines_door(shared: Stack) -> None:
    account = shared.account("jsonl")
    taken = Taken(shared, account)
    fresh = Counter("jl")

    @FEW
    @given(rows)
    def send(examples: list[tuple[Any, Any, int, bool]]) -> None:
        lines: list[str] = []
        sent: list[tuple[str, Any, Any]] = []
        for value, other, held, edge in examples:
            uuid = fresh()
            if edge:
                uuid = "u" * (256 - len(uuid)) + uuid
            prefill(shared, account, uuid, held)
            # ensure_ascii: a lone surrogate travels as its \\u escape, a 41-digit
            # integer as its digits (read as a BigNumber, never an int).
            lines.append(json.dumps({"uuid": uuid, "v": value, "w": other}))
            sent.append((uuid, value, other))
        lines.append(json.dumps({"uuid": UUID_EDGES[2], "v": 1}))
        job = upload(shared, account, "hostile.jsonl", "\n".join(lines).encode())
        assert job["status"] in ("succeeded", "partially_succeeded", "failed"), job
        refused = rejected_rows(job)
        assert len(sent) + 1 in refused  # the uuid holding a lone surrogate
        for row, (uuid, value, other) in enumerate(sent, start=1):
            if row in refused:
                continue
            for name, item in (("v", value), ("w", other)):
                if item is None or (isinstance(item, str) and not item.strip()):
                    continue  # an empty cell leaves the attribute as it is
                taken.add(uuid, name, item, json.dumps(job))

    send()
    taken.check()


def test_the_salesforce_door(shared: Stack) -> None:
    account = shared.account("salesforce")
    taken = Taken(shared, account)
    fresh = Counter("sf")
    fake = FakeSalesforce(start_ms=T0_MS - DAY_MS).start()
    fake.add_object("Contact")
    fake.apps["key-acme"] = App("key-acme", consumer_secret="secret-acme")
    os.environ["SALESFORCE_ENDPOINT_URL"] = fake.url
    path = "/v1/integrations/salesforce"
    try:
        put = shared.cloud.http("PUT", path, headers=shared.auth(account), body=connection())
        assert put.status in (200, 201), put.body

        titles = st.one_of(st.sampled_from(STRINGS), st.text(max_size=30))
        seats = st.one_of(st.sampled_from(NUMBERS), st.floats(allow_nan=False))

        @FEW
        @given(st.lists(st.tuples(titles, seats, prefills), min_size=4, max_size=10))
        def send(records: list[tuple[str, Any, int]]) -> None:
            sent: dict[str, tuple[str, str, Any]] = {}
            for title, seat, held in records:
                uuid = fresh()
                prefill(shared, account, uuid, held)
                record = fake.add_record("Contact", External_Id__c=uuid, Title=title, Seats__c=seat)
                sent[record] = (uuid, title, seat)
            started = shared.cloud.http("POST", path + "/sync", headers=shared.auth(account))
            assert started.status == 202, started.body
            shared.cloud.settle()
            job = shared.cloud.http(
                "GET", f"/v1/imports/{started.json()['id']}", headers=shared.auth(account)
            ).json()
            assert job["status"] in ("succeeded", "partially_succeeded", "failed"), job
            assert job["rows"]["read"] == len(records), job
            lines = " ".join(rejected_rows(job).values())
            for record, (uuid, title, seat) in sent.items():
                if f"record {record}:" in lines:
                    continue
                if title.strip():
                    taken.add(uuid, "role", title, json.dumps(job))
                if isinstance(seat, int | float) and math.isfinite(seat):
                    taken.add(uuid, "Seats__c", seat, json.dumps(job))

        send()
        taken.check()
    finally:
        fake.stop()
        os.environ.pop("SALESFORCE_ENDPOINT_URL", None)
