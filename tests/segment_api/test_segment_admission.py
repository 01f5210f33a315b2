"""Segment's door and the admission rules (issue 24, points 1, 2, 10, 11).

Every bad value gets its message's verdict (or its own), never a 500 that
Segment's libraries would retry and so lose the good messages of the batch;
nothing a user cannot hold is answered as taken.
"""

from __future__ import annotations

from typing import Any

import pytest

from insights.domain.core import limits
from insights.storage.core import store
from insights.storage.core.records import user_pk
from tests.conftest import Stack
from tests.segment_api.test_segment_api import ctx, post

BIG = 10**40  # 41 digits: more than DynamoDB's 38


def held(account: Any, uuid: str) -> dict[str, Any]:
    """The user's stored custom attributes (identify traits stay hidden until a session closes)."""
    record = store.get_profile(user_pk(account.account_id, uuid), consistent=True)
    return {} if record is None else {k: v.value for k, v in record.profile.custom.items()}


# ------------------------------------------------------------- point 1
@pytest.mark.parametrize("route", ["/v1/batch", "/v1/b"])
def test_a_41_digit_number_anywhere_in_a_batch_costs_at_most_its_own_value(
    stack: Stack, route: str
) -> None:
    acme = stack.account()
    for via in ("url", "api"):
        batch = [
            {"type": "track", "userId": "u1", "event": "E", "properties": {"big": BIG}},
            {"type": "identify", "userId": "u2", "traits": {"big": BIG, "plan": "pro"}},
            {"type": "track", "userId": "u3", "event": "E", "context": {"library": {"v": BIG}}},
            {"type": "page", "userId": "u4", "messageId": BIG},
            {"type": "identify", "userId": "u5", "traits": {"plan": "team"}},
        ]
        answer = post(stack, route, {"batch": batch}, key=acme.write_key, via=via)
        assert answer.status == 200, answer.body
        body = answer.json()
        assert body["accepted"] == 5
        [refused] = body["rejected"]
        assert refused["field"] == "batch[1].traits.big"
        assert "more than 38 digits" in refused["error"]
        assert held(acme, "u2") == {"plan": "pro"} and held(acme, "u5") == {"plan": "team"}


@pytest.mark.parametrize("via", ["url", "api"])
def test_a_41_digit_number_in_a_single_message_is_its_own_verdict(stack: Stack, via: str) -> None:
    acme = stack.account()
    track = {"userId": "u1", "event": "E", "properties": {"big": BIG}, "messageId": BIG}
    answer = post(stack, "/v1/track", track, key=acme.write_key, via=via)
    assert answer.status == 200 and answer.json()["accepted"] == 1
    identify = {"userId": "u1", "traits": {"big": -BIG}, "context": {"n": BIG}}
    answer = post(stack, "/v1/identify", identify, key=acme.write_key, via=via)
    assert answer.status == 200, answer.body
    [refused] = answer.json()["rejected"]
    assert refused["field"] == "traits.big" and "38 digits" in refused["error"]
    # As userId: not a string, refused with the message.
    bad_id = {"userId": BIG, "traits": {"plan": "pro"}}
    answer = post(stack, "/v1/identify", bad_id, key=acme.write_key, via=via).json()
    assert answer["accepted"] == 0 and answer["rejected"][0]["field"] == "userId"


def test_lone_surrogates_and_deep_nesting_refuse_their_message_only(stack: Stack) -> None:
    acme = stack.account()
    deep: Any = "x"
    for _ in range(70):
        deep = {"d": deep}
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"title": "T\ud800"}},
        {"type": "track", "userId": "u\udc00", "event": "E"},
        {"type": "track", "userId": "u2", "event": "E", "context": {"userAgent": "UA\ud800"}},
        {"type": "track", "userId": "u3", "event": "E", "properties": deep},
        {"type": "identify", "userId": "u4", "traits": {"plan": "pro"}},
    ]
    answer = post(stack, "/v1/batch", {"batch": batch}, key=acme.write_key)
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["accepted"] == 1
    fields = [r["field"] for r in body["rejected"]]
    assert fields == [
        "batch[0].traits.title",
        "batch[1].userId",
        "batch[2].context.userAgent",
        "batch[3]",
    ]
    assert all("surrogate" in r["error"] for r in body["rejected"][:3])
    assert "deeper than 64" in body["rejected"][3]["error"]
    assert held(acme, "u4") == {"plan": "pro"} and held(acme, "u1") == {}


# ------------------------------------------------------------- point 2
def test_identify_past_500_attributes_says_which_traits_were_refused(stack: Stack) -> None:
    acme = stack.account()
    batch: list[dict[str, Any]] = [
        {"type": "identify", "userId": "u1", "traits": {f"m{m}t{t:03d}": t for t in range(100)}}
        for m in range(6)
    ]
    batch.append({"type": "page", "userId": "u1", "context": ctx()})
    body = post(stack, "/v1/batch", {"batch": batch}, key=acme.write_key).json()
    assert body["accepted"] == 6  # the sixth identify: not one trait taken
    assert len(body["rejected"]) == 100
    assert {r["index"] for r in body["rejected"]} == {5}
    assert "at most 500 per user" in body["rejected"][0]["error"]
    assert body["rejected"][0]["field"] == "batch[5].traits.m5t000"
    stored = held(acme, "u1")
    assert len(stored) == 500 and not any(name.startswith("m5") for name in stored)
    # An update of a trait the user holds is still taken; a new one is not.
    stack.advance(1)
    again = {"userId": "u1", "traits": {"m0t000": "changed", "new": 1}}
    body = post(stack, "/v1/identify", again, key=acme.write_key).json()
    assert body["accepted"] == 1 and [r["field"] for r in body["rejected"]] == ["traits.new"]
    assert held(acme, "u1")["m0t000"] == "changed" and "new" not in held(acme, "u1")


def test_identify_past_256_kb_keeps_exactly_what_it_reports_as_taken(stack: Stack) -> None:
    acme = stack.account()
    kb = "v" * 1000
    batch = [  # 360 traits of 1 KB, in messages under Segment's 32 KB
        {"type": "identify", "userId": "u1", "traits": {f"m{m}t{t:02d}": kb for t in range(30)}}
        for m in range(12)
    ]
    body = post(stack, "/v1/batch", {"batch": batch}, key=acme.write_key).json()
    assert body["accepted"] == 9  # the last three: not one trait taken
    refused = {r["field"].split(".traits.")[1] for r in body["rejected"]}
    assert refused and all("bytes; at most 262144 per user" in r["error"] for r in body["rejected"])
    sent = {name for message in batch for name in message["traits"]}
    assert set(held(acme, "u1")) == sent - refused
    size = limits.Usage.of(held(acme, "u1")).size
    assert limits.MAX_CUSTOM_BYTES - 1100 < size <= limits.MAX_CUSTOM_BYTES


# ------------------------------------------------------------ point 11
def test_verification_errors_name_the_messages_user_id(stack: Stack) -> None:
    acme = stack.account()
    auth = stack.auth(acme)
    secret = stack.cloud.http("POST", "/v1/account/identity/secret", headers=auth)
    assert secret.status == 201, secret.body
    on = stack.cloud.http(
        "PATCH", "/v1/account/identity", headers=auth, body={"verification": True}
    )
    assert on.status == 200, on.body
    batch = [
        {"type": "track", "userId": "u1", "event": "E", "context": ctx()},
        {"type": "identify", "userId": "u2", "traits": {"plan": "pro"}},
    ]
    body = post(stack, "/v1/batch", {"batch": batch}, key=acme.write_key).json()
    assert body["accepted"] == 0
    assert [r["field"] for r in body["rejected"]] == ["batch[0].userId", "batch[1].userId"]
    assert all("secret key" in r["error"] for r in body["rejected"])
    trusted = post(stack, "/v1/batch", {"batch": batch}, key=acme.secret_key).json()
    assert trusted["accepted"] == 2 and trusted["rejected"] == []
