"""Bad rows never fail the file; big files stop on time; a user can cancel an import."""

from __future__ import annotations

import json
from typing import Any

import pytest

from insights.domain.core import limits
from insights.domain.imports.files import MAX_COLUMNS
from insights.services.imports import slices as import_service
from insights.storage.imports import jobs
from tests.conftest import Stack
from tests.imports.test_imports import drop, get_job, gz, jsonl, put, report, stored, upload


def reasons(job: dict[str, Any]) -> list[str]:
    return report(job)[1:]


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("1e300", "too large"),
        ("1e-200", "too small"),
        ("1e-400", "too small"),  # below a double's range: was read as 0, and stored
        ("1" * 40, "more than 38 digits"),
    ],
)
def test_a_csv_number_dynamodb_cannot_keep_rejects_its_row_only(
    stack: Stack, cell: str, why: str
) -> None:
    acme = stack.account()
    data = f"uuid,n\nbad,{cell}\ngood,{'9' * 38}\n".encode()
    job = upload(stack, acme, "n.csv", data, {"types": {"n": "number"}})
    assert job["status"] == "partially_succeeded", job
    assert job["rows"]["imported"] == 1 and job["rows"]["rejected"] == 1
    [line] = reasons(job)
    assert line.startswith("2,n,") and why in line
    assert stored(acme, "good") == {"n": (int("9" * 38), "csv")}


def test_jsonl_numbers_surrogates_and_huge_rows_reject_their_rows_only(stack: Stack) -> None:
    acme = stack.account()
    lines = [
        '{"uuid": "big", "n": ' + "1" * 5000 + "}",
        '{"uuid": "forty", "n": ' + "1" * 40 + "}",
        '{"uuid": "huge", "n": 1e300}',
        '{"uuid": "nan", "n": NaN}',
        '{"uuid": "lone", "s": "a\\ud800"}',
        '{"uuid": "lonekey", "\\udc00": 1}',
        '{"uuid": ' + "7" * 45 + ', "plan": "numeric uuid"}',
        '{"uuid": "good", "plan": "VIP", "pair": "\\ud83d\\ude00"}',
    ]
    wide = {"uuid": "wide", **{f"k{i}": i for i in range(20_000)}}
    data = ("\n".join(lines) + "\n").encode() + jsonl([wide])
    job = drop(stack, acme, "rows.jsonl", data)
    assert job["status"] == "partially_succeeded", job
    assert job["rows"] == {"total": 9, "read": 9, "imported": 2, "rejected": 7}
    got = reasons(job)
    assert [line.split(",")[0] for line in got] == ["1", "2", "3", "4", "5", "6", "9"]
    assert "more than 38 digits" in got[0] and "more than 38 digits" in got[1]
    assert "too large" in got[2] and "finite" in got[3] and "surrogate" in got[4]
    assert "surrogate" in got[5] and "the row sets 20000 custom attributes" in got[6]
    assert stored(acme, "good") == {"plan": ("VIP", "s3"), "pair": ("\U0001f600", "s3")}
    assert stored(acme, "7" * 45) == {"plan": ("numeric uuid", "s3")}


def test_a_timestamp_of_5000_digits_rejects_its_row_only(stack: Stack) -> None:
    """isdecimal() holds for it and int() raised ValueError (over 4,300 digits), which
    the row check did not catch: the import's slice failed instead of one row."""
    acme = stack.account()
    data = f"uuid,timestamp,plan\nbad,{'1' * 5000},free\ngood,,VIP\n".encode()
    job = upload(stack, acme, "t.csv", data)
    assert job["status"] == "partially_succeeded", job
    assert job["rows"]["imported"] == 1 and job["rows"]["rejected"] == 1
    [line] = reasons(job)
    assert line.startswith("2,timestamp,")
    assert stored(acme, "good") == {"plan": ("VIP", "csv")}


def test_a_csv_row_of_999_long_columns_rejects_that_row_only(stack: Stack) -> None:
    acme = stack.account()
    header = "uuid," + ",".join(f"c{i}" for i in range(999))
    wide = "wide," + ",".join("x" * 1024 for _ in range(999))
    data = f"{header}\n{wide}\ngood,{'y' * 1024}\n".encode()
    job = drop(stack, acme, "wide.csv", data)
    assert job["status"] == "partially_succeeded", job["error"]
    assert job["rows"]["imported"] == 1 and job["rows"]["rejected"] == 1
    assert "the row sets 999 custom attributes" in reasons(job)[0]
    assert stored(acme, "good") == {"c0": ("y" * 1024, "s3")}
    assert stored(acme, "wide") == {}


def test_a_csv_cell_over_128_kb_rejects_its_row_only_or_nothing_when_not_imported(
    stack: Stack,
) -> None:
    """The csv module refuses a field over 131,072 characters by default: one long
    cell (a CRM's notes, even in a column the mapping leaves out) failed the whole
    file, where the docs promise it for a line over 1 MiB only."""
    acme = stack.account()
    notes = "n" * 200_000
    data = (
        "uuid,notes,plan\n"
        f"skipped,{notes},free\n"  # notes is not imported: the row is fine
        f'quoted,"{notes}\n{notes}",pro\n'  # a quoted cell over two lines
        "good,short,VIP\n"
    ).encode()
    job = upload(stack, acme, "crm.csv", data, {"columns": ["plan"]})
    assert job["status"] == "succeeded", job
    assert job["rows"]["imported"] == 3
    assert stored(acme, "skipped") == {"plan": ("free", "csv")}
    assert stored(acme, "quoted") == {"plan": ("pro", "csv")}
    job = upload(stack, acme, "all.csv", data)
    assert job["status"] == "partially_succeeded", job
    assert job["rows"]["imported"] == 1 and job["rows"]["rejected"] == 2
    assert all(",notes," in line and "longer than 1024" in line for line in reasons(job))


def test_rows_that_would_take_a_user_past_the_caps_are_rejected_the_rest_kept(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", 3)
    acme = stack.account()
    data = b"uuid,a,b,c,d\nu,1,2,,\nu,,,3,\nu,,,,4\nother,1,2,3,\nu,9,,,\n"
    job = drop(stack, acme, "caps.csv", data)
    assert job["status"] == "partially_succeeded"
    assert job["rows"]["imported"] == 4 and job["rows"]["rejected"] == 1
    [line] = reasons(job)
    assert line.startswith("4,,") and "at most 3 per user" in line
    assert {k: v[0] for k, v in stored(acme, "u").items()} == {"a": "9", "b": "2", "c": "3"}
    assert len(stored(acme, "other")) == 3
    # The next file for the same user: a new name is refused, an update is not.
    stack.advance(1)  # import ids sort by time: the listing's newest is this one
    again = drop(stack, acme, "caps2.csv", b"uuid,a,d\nu,10,\nu,,5\n")
    assert again["rows"]["imported"] == 1 and again["rows"]["rejected"] == 1
    assert stored(acme, "u")["a"][0] == "10" and "d" not in stored(acme, "u")


def test_a_gzip_of_blank_lines_fails_fast_on_the_row_cap(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_service, "MAX_FILE_ROWS", 5_000)
    acme = stack.account()
    bomb = gz(b"uuid,plan\n" + b"\n" * 100_000 + b"u,VIP\n")
    assert len(bomb) < 1_000
    job = drop(stack, acme, "bomb.csv.gz", bomb)
    assert job["status"] == "failed" and "more than 5,000 rows" in job["error"]
    assert stored(acme, "u") == {}


def test_the_decompressed_size_is_capped(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_service, "MAX_FILE_BYTES", 50_000)
    acme = stack.account()
    rows = b"".join(b"u%d,%s\n" % (i, b"x" * 100) for i in range(1_000))
    job = drop(stack, acme, "big.csv.gz", gz(b"uuid,plan\n" + rows))
    assert job["status"] == "failed" and "decompressed" in job["error"]
    assert job["rows"]["imported"] == 0


def test_the_time_budget_holds_across_blank_lines(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "10")
    monkeypatch.setenv("IMPORT_RESERVE_MS", str(10**9))  # always "low on time"
    acme = stack.account()
    job = drop(stack, acme, "blank.csv.gz", gz(b"uuid,plan\n" + b"\n" * 95 + b"u,VIP\n"))
    assert job["status"] == "succeeded" and job["rows"]["imported"] == 1
    # Each slice stops after 10 records, blank or not: validation and apply both.
    assert job["invocations"] >= 18
    assert stored(acme, "u") == {"plan": ("VIP", "s3")}


def test_a_pending_upload_can_be_cancelled_and_its_file_is_then_ignored(stack: Stack) -> None:
    acme = stack.account()
    started = stack.cloud.http(
        "POST", "/v1/imports", headers=stack.auth(acme), body={"filename": "late.csv"}
    ).json()
    cancel = f"/v1/imports/{started['id']}/cancel"
    response = stack.cloud.http("POST", cancel, headers=stack.auth(acme))
    assert response.status == 200, response.body
    assert response.json()["status"] == "cancelled"
    assert response.json()["error"] == "cancelled by the user"
    again = stack.cloud.http("POST", cancel, headers=stack.auth(acme))
    assert again.status == 409 and again.json()["error"] == "import_finished"
    form = started["upload"]
    sent = stack.cloud.post_object(form["url"], form["fields"], b"uuid,plan\nu,VIP\n", "late.csv")
    assert sent.status == 204
    stack.cloud.settle()
    assert get_job(stack, acme, started["id"])["status"] == "cancelled"
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(acme)).json()["imports"]
    assert [j["id"] for j in listed] == [started["id"]]  # no second import was started
    assert stored(acme, "u") == {}
    other = stack.account("Other")
    stolen = stack.cloud.http("POST", cancel, headers=stack.auth(other))
    assert stolen.status == 404


def test_a_running_import_stops_soon_after_it_is_cancelled(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "5")
    monkeypatch.setattr(import_service, "CANCEL_CHECK_SECONDS", 0.0)
    acme = stack.account()
    real = import_service.apply_rows
    applied: list[int] = []

    def cancel_after_first_batch(account_id: str, rows: list, source: str, **kw: Any) -> int:
        applied.append(len(rows))
        result = real(account_id, rows, source, **kw)
        if len(applied) == 1:  # the user presses cancel while the slice runs
            import_id = stack.cloud.s3_deliveries[-1]["Records"][0]["s3"]["object"]["key"]
            import_id = import_id.split("/")[3]  # imports/<account>/uploads/<id>/<name>
            assert jobs.cancel(account_id, import_id, 0, "cancelled by the user")
        return result

    monkeypatch.setattr(import_service, "apply_rows", cancel_after_first_batch)
    data = b"uuid,plan\n" + b"".join(b"u%d,VIP\n" % i for i in range(50))
    job = upload(stack, acme, "many.csv", data)
    assert job["status"] == "cancelled"
    assert job["rows"]["imported"] == 5 and job["rows"]["read"] == 5  # counted, then stopped
    assert sum(1 for i in range(50) if stored(acme, f"u{i}")) == 5


def test_a_mapping_past_its_size_cap_is_refused_naming_the_size(stack: Stack) -> None:
    """The mapping is kept on the job item (400 KB) and answered in every listing of up
    to 100 jobs (6 MB): 5,000 column names of 100 characters failed the put, a 500."""
    acme = stack.account()
    columns = [f"c{i:05d}" + "x" * 94 for i in range(5000)]
    for mapping in (
        {"columns": columns},
        {"types": dict.fromkeys(columns, "number")},
        {"rename": {column: column[:100] for column in columns}},
        {"columns": columns[:400]},  # 40,000 characters: over the cap, if not the item
    ):
        body = {"filename": "crm.csv", "mapping": mapping}
        started = stack.cloud.http("POST", "/v1/imports", headers=stack.auth(acme), body=body)
        assert started.status == 400, started.body[:300]
        assert started.json()["error"] == "invalid_import"
        assert "mapping" in started.json()["message"] and "KB" in started.json()["message"]
    # A drop's mapping.json (a file under its own 64 KiB cap) is the same mapping:
    # its import fails with the reason.
    account_id = acme.account.account_id
    text = json.dumps({"columns": columns[:400]}).encode()
    put(stack, f"imports/{account_id}/mapping.json", text)
    job = drop(stack, acme, "crm.csv", b"uuid,a\nu1,1\n")
    assert job["status"] == "failed" and "KB" in job["error"], job
    # A mapping of a wide file's every column still fits.
    wide = [f"column {i:04d}" for i in range(MAX_COLUMNS)]
    body = {"filename": "crm.csv", "mapping": {"columns": wide}}
    started = stack.cloud.http("POST", "/v1/imports", headers=stack.auth(acme), body=body)
    assert started.status == 201, started.body[:300]
