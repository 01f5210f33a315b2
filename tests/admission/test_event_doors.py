"""The event doors (POST /v1/events, the SDK's function URL, Segment's API) with hostile values.

Each answer is a 4xx or a per-item rejection, never a 5xx, and every value a
door reports as taken is readable on the user afterwards (hostile.Taken).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from insights.domain.core import limits
from tests.admission.hostile import (
    BOUNDED,
    UUID_EDGES,
    Counter,
    Taken,
    ips,
    names,
    prefill,
    prefills,
    values,
)
from tests.conftest import Stack

CAP = 5  # the per-user attribute cap while this module runs: met at every ±1 cheaply


@pytest.fixture(scope="module", autouse=True)
def small_caps() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", CAP)
        yield


def test_events_and_the_sdk_door(shared: Stack) -> None:
    account = shared.account("events")
    taken = Taken(shared, account)
    fresh = Counter("ev")

    @BOUNDED
    @given(name=names, value=values, ip=ips, via=st.sampled_from(["api", "sdk"]))
    def send(name: str, value: Any, ip: Any, via: str) -> None:
        uuid = fresh()
        properties = {name: value, "ok": 1}  # user properties: each is an attribute
        body = {"events": [{"uuid": uuid, "user_properties": properties}], "context": {"ip": ip}}
        if via == "api":
            headers = {"X-Insights-Key": account.write_key}
            answer = shared.cloud.http("POST", "/v1/events", headers=headers, body=body)
        else:  # the browser SDK posts to the function URL with the key in the query
            answer = shared.cloud.function_url(
                "TrackFunction", "POST", "/", query={"key": account.write_key}, body=body
            )
        assert answer.status < 500, answer.body
        if answer.status == 200 and answer.json()["accepted"] == 1:
            for key, item in properties.items():
                taken.add(uuid, key, item)

    send()
    taken.check()


def _leaves(prefix: str, raw: dict[str, Any], depth: int = 1) -> Iterator[tuple[str, Any]]:
    """Traits as the Segment door names them: nested objects dotted, up to 4 levels."""
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 4:
            yield from _leaves(name + ".", value, depth + 1)
        else:
            yield name, value


def test_the_segment_door(shared: Stack) -> None:
    account = shared.account("segment")
    taken = Taken(shared, account)
    fresh = Counter("sg")

    @BOUNDED
    @given(
        name=names,
        value=values,
        ip=ips,
        user=st.sampled_from([None, None, None, *UUID_EDGES]),
        held=prefills,
        route=st.sampled_from(["/v1/batch", "/v1/b"]),
        via=st.sampled_from(["url", "api"]),
    )
    def send(
        name: str, value: Any, ip: Any, user: str | None, held: int, route: str, via: str
    ) -> None:
        uuid = fresh()
        if user is not None:  # at and past the uuid rules; unique, so times never tie
            uuid = user[: len(user) - len(uuid)] + uuid if len(user) > 200 else user + uuid
        elif held:
            prefill(shared, account, uuid, held)
        neighbour = fresh()
        traits = {name: value, "ok": 1}
        batch = [
            {"type": "identify", "userId": uuid, "traits": traits, "context": {"ip": ip}},
            {"type": "track", "userId": uuid, "event": "E", "properties": traits},
            {"type": "identify", "userId": neighbour, "traits": {"plain": "yes"}},
        ]
        headers = {"X-Insights-Key": account.write_key}
        if via == "api":
            answer = shared.cloud.http("POST", route, headers=headers, body={"batch": batch})
        else:
            answer = shared.cloud.function_url(
                "TrackFunction", "POST", route, headers=headers, body={"batch": batch}
            )
        assert answer.status < 500, answer.body
        if answer.status != 200:
            return
        rejected = answer.json()["rejected"]
        # The good message beside the hostile ones is always taken.
        assert not [r for r in rejected if r["index"] == 2], rejected
        taken.add(neighbour, "plain", "yes")
        mine = [r for r in rejected if r["index"] == 0]
        if any("only this value was refused" not in r["error"] for r in mine):
            return  # the message was refused whole
        refused = [r["field"] for r in mine]
        for leaf, item in _leaves("", traits):
            # A long name is echoed cut short: a field naming the leaf's start refuses it.
            if not any(f"batch[0].traits.{leaf}".startswith(field) for field in refused):
                taken.add(uuid, leaf, item, answer.body)

    send()
    taken.check()
