"""Segment's HTTP Tracking API on the local stack: contract, mapping, limits, retries."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from insights.domain.core.timefmt import format_time
from insights.domain.segment_api import ROUTES, SKEW_TOLERANCE_MS
from insights.local.gateway import HttpResponse
from insights.storage.core import store
from insights.storage.core.records import user_pk
from tests.conftest import CHROME, LONDON_IP, MINUTE, T0_MS, Stack

ROOT = Path(__file__).resolve().parents[2]
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def post(
    stack: Stack,
    path: str,
    body: Any,
    *,
    key: str | None = None,
    via: str = "url",
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    sent = {**(basic(key) if key else {}), **(headers or {})}
    if via == "api":
        return stack.cloud.http("POST", path, headers=sent, body=body)
    return stack.cloud.function_url("TrackFunction", "POST", path, headers=sent, body=body)


def at(ms: int) -> str:
    text = format_time(ms)
    assert text is not None
    return text


def ctx(ip: str = LONDON_IP, user_agent: str = CHROME) -> dict[str, Any]:
    return {"ip": ip, "userAgent": user_agent, "library": {"name": "test", "version": "0"}}


def close_sessions(stack: Stack) -> None:
    stack.advance(31 * MINUTE)
    stack.sweep()


def custom(stack: Stack, account: Any, uuid: str) -> dict[str, Any]:
    response = stack.user(account, uuid)
    assert response.status == 200, response.body
    return response.json()["custom"]


# ------------------------------------------------------------------ routes
def test_routes_are_the_same_in_the_handler_the_domain_and_the_template() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("track_app", ROOT / "functions/track/app.py")
    assert spec and spec.loader
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert set(app.SEGMENT_PATHS) == set(ROUTES)
    assert {path for (_, path), route in app.ROUTES.items() if route is app.segment} == set(ROUTES)

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    track = template["Resources"]["TrackFunction"]["Properties"]
    api_paths = {
        e["Properties"]["Path"]
        for e in track["Events"].values()
        if e["Type"] == "HttpApi" and e["Properties"]["Method"] == "POST"
    }
    assert api_paths == set(ROUTES) | {"/v1/events"}
    # Browsers send Basic auth with a preflight: the function URL must allow it.
    assert "authorization" in track["FunctionUrlConfig"]["Cors"]["AllowHeaders"]


def test_cors_preflight_allows_basic_auth_on_the_function_url(stack: Stack) -> None:
    answer = stack.cloud.function_url("TrackFunction", "OPTIONS", "/v1/batch")
    assert answer.status == 204
    assert "authorization" in answer.headers["access-control-allow-headers"]


# ------------------------------------------------------------ message types
def test_identify_traits_become_attributes_hidden_until_the_first_session_closes(
    stack: Stack,
) -> None:
    acme = stack.account()
    identify = {
        "userId": "u1",
        "traits": {
            "name": "Ada",
            "plan": "pro",
            "seats": 12,
            "beta": True,
            "address": {"city": "London", "country": "UK"},
        },
        "timestamp": at(T0_MS),
        "context": ctx(),
    }
    answer = post(stack, "/v1/identify", identify, key=acme.write_key)
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "success": True,
        "accepted": 1,
        "late": 0,
        "rejected": [],
        "ignored": [],
    }
    # identify is not an event: no session is opened, the user stays hidden.
    assert stack.cloud.items("SessionsTable") == []
    close_sessions(stack)
    assert stack.user(acme, "u1").status == 404
    track = {"userId": "u1", "event": "Opened", "context": ctx()}
    assert post(stack, "/v1/track", track, key=acme.write_key).json()["accepted"] == 1
    close_sessions(stack)
    attributes = custom(stack, acme, "u1")
    assert {k: v["value"] for k, v in attributes.items()} == {
        "name": "Ada",
        "plan": "pro",
        "seats": 12,
        "beta": True,
        "address.city": "London",
        "address.country": "UK",
    }
    assert {v["source"] for v in attributes.values()} == {"identify"}
    assert attributes["plan"]["updated_at"] == at(T0_MS)


def test_most_recent_identify_wins_by_message_time_not_arrival(stack: Stack) -> None:
    acme = stack.account()
    newer = {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}
    older = {"type": "identify", "userId": "u1", "traits": {"plan": "free"}}
    batch = [
        {**newer, "timestamp": at(T0_MS - 1000)},
        {**older, "timestamp": at(T0_MS - 5000)},
        {"type": "page", "userId": "u1", "timestamp": at(T0_MS - 6000)},
    ]
    assert post(stack, "/v1/batch", {"batch": batch}, key=acme.write_key).json()["accepted"] == 3
    older_later = {**older, "timestamp": at(T0_MS - 9000)}
    post(stack, "/v1/batch", {"batch": [older_later]}, key=acme.write_key)
    close_sessions(stack)
    assert custom(stack, acme, "u1")["plan"]["value"] == "pro"


@pytest.mark.parametrize("kind", ["track", "page", "screen"])
def test_track_page_and_screen_are_interactive_events(stack: Stack, kind: str) -> None:
    acme = stack.account()
    first = {"userId": "u1", "event": "Clicked", "name": "Home", "context": ctx()}
    answer = post(stack, f"/v1/{kind}", {**first, "timestamp": at(T0_MS)}, key=acme.write_key)
    assert answer.status == 200 and answer.json()["accepted"] == 1, answer.body
    stack.advance(5 * MINUTE)
    later = {**first, "timestamp": at(T0_MS + 5 * 60_000)}
    assert post(stack, f"/v1/{kind}", later, key=acme.write_key).json()["accepted"] == 1
    close_sessions(stack)
    standard = stack.standard(acme, "u1")
    assert standard["total_sessions"] == 1
    assert standard["total_session_duration"] == 300.0
    assert standard["country"] == "United Kingdom" and standard["browser_name"] == "Chrome"


def test_event_properties_are_attributes_only_when_the_account_opts_in(stack: Stack) -> None:
    acme = stack.account(event_properties_as_attributes=["plan", "score"])
    props = {"plan": "team", "score": 7, "revenue": 30, "path": "/pricing", "tags": ["a"]}
    batch = [
        {"type": "track", "userId": "u1", "event": "Upgraded", "properties": props},
        {"type": "page", "userId": "u2", "properties": props},
    ]
    answer = post(stack, "/v1/batch", {"batch": batch}, key=acme.write_key)
    assert answer.json()["accepted"] == 2 and answer.json()["rejected"] == []
    close_sessions(stack)
    for uuid in ("u1", "u2"):
        attributes = custom(stack, acme, uuid)
        assert {k: v["value"] for k, v in attributes.items()} == {"plan": "team", "score": 7}
        assert attributes["plan"]["source"] == "event"
    other = stack.account("Other")
    post(stack, "/v1/track", {**batch[0], "userId": "u3"}, key=other.write_key)
    close_sessions(stack)
    assert custom(stack, other, "u3") == {}


def test_an_opted_in_property_with_a_bad_value_is_refused_alone(stack: Stack) -> None:
    acme = stack.account(event_properties_as_attributes=["plan"])
    message = {"userId": "u1", "event": "Upgraded", "properties": {"plan": {"id": 1}}}
    body = post(stack, "/v1/track", message, key=acme.write_key).json()
    assert body["accepted"] == 1
    [refused] = body["rejected"]
    assert refused["field"] == "properties.plan" and "the event counted" in refused["error"]
    close_sessions(stack)
    assert stack.standard(acme, "u1")["total_sessions"] == 1


def test_event_properties_as_attributes_setting_is_validated(stack: Stack) -> None:
    acme = stack.account()
    for bad in ("plan", ["plan", "plan"], [""], ["x" * 129], [1], ["p"] * 101):
        answer = stack.patch_account(acme, {"event_properties_as_attributes": bad})
        assert answer.status == 400, bad
        assert answer.json()["field"] == "event_properties_as_attributes"
    ok = stack.patch_account(acme, {"event_properties_as_attributes": ["plan"]})
    assert ok.json()["settings"]["event_properties_as_attributes"] == ["plan"]


def test_anonymous_only_alias_and_group_are_accepted_and_ignored(stack: Stack) -> None:
    acme = stack.account()
    batch = [
        {"type": "track", "anonymousId": "anon-1", "event": "Viewed"},
        {"type": "identify", "anonymousId": "anon-1", "traits": {"plan": "pro"}},
        {"type": "alias", "userId": "u1", "previousId": "anon-1"},
        {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
    ]
    answer = post(stack, "/v1/batch", {"batch": batch}, key=acme.write_key)
    assert answer.status == 200
    body = answer.json()
    assert body["success"] is True and body["accepted"] == 0 and body["rejected"] == []
    ignored = {i["index"]: i for i in body["ignored"]}
    assert sorted(ignored) == [0, 1, 2, 3]
    assert "anonymous" in ignored[0]["reason"] and "anonymous" in ignored[1]["reason"]
    assert ignored[2]["type"] == "alias" and ignored[3]["type"] == "group"
    assert stack.cloud.items("SessionsTable") == [] and stack.cloud.items("UsersTable") == []
    for path, kind in (("/v1/alias", "alias"), ("/v1/g", "group")):
        single = post(stack, path, {"userId": "u1"}, key=acme.write_key).json()
        assert single["ignored"][0]["type"] == kind


# -------------------------------------------------------------------- auth
def test_basic_auth_write_key_in_the_body_and_bad_keys(stack: Stack) -> None:
    acme = stack.account()
    message = {"userId": "u1", "event": "Opened"}
    assert post(stack, "/v1/track", message, key=acme.write_key).status == 200
    in_body = post(stack, "/v1/track", {**message, "writeKey": acme.write_key})
    assert in_body.status == 200 and in_body.json()["accepted"] == 1
    batch_key = {"batch": [{**message, "type": "track"}], "writeKey": acme.write_key}
    assert post(stack, "/v1/batch", batch_key).status == 200
    # analytics.js sends text/plain to spare the preflight.
    plain = post(stack, "/v1/t", json.dumps({**message, "writeKey": acme.write_key}))
    assert plain.status == 200 and plain.json()["accepted"] == 1
    cases = [
        ({}, message, "missing_key"),
        (basic("wk_not_a_key"), message, "unknown_key"),
        ({"Authorization": "Basic !!!"}, message, "invalid_authorization"),
        ({"Authorization": f"Bearer {acme.write_key}"}, message, "invalid_authorization"),
        (basic(""), message, "missing_key"),
        ({}, {**message, "writeKey": "wk_nope"}, "unknown_key"),
        (basic(acme.write_key), {**message, "writeKey": "wk_other"}, "conflicting_keys"),
    ]
    for headers, body, code in cases:
        answer = post(stack, "/v1/track", body, headers=headers)
        assert answer.status == 401, (headers, answer.body)
        assert answer.json() == {
            "success": False,
            "code": code,
            "message": answer.json()["message"],
        }
    assert stack.cloud.items("SessionsTable")[0]["pk"] == user_pk(acme.account_id, "u1")


def test_function_url_and_api_answer_the_same(stack: Stack) -> None:
    acme = stack.account()
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "A"}, {"type": "x"}]}
    by_url = post(stack, "/v1/batch", batch, key=acme.write_key)
    by_api = post(stack, "/v1/batch", batch, key=acme.write_key, via="api")
    assert (by_url.status, by_url.json()) == (by_api.status, by_api.json())
    assert post(stack, "/v1/b", batch, key=acme.write_key, via="api").json() == by_api.json()
    # The events endpoint is untouched on both doors.
    events = {"events": [{"uuid": "u1"}]}
    headers = {"X-Insights-Key": acme.write_key}
    for answer in (
        stack.cloud.function_url("TrackFunction", "POST", "/", headers=headers, body=events),
        stack.cloud.http("POST", "/v1/events", headers=headers, body=events),
    ):
        assert answer.json() == {"accepted": 1, "late": 0, "rejected": []}


# ------------------------------------------------------------------ limits
def test_oversize_requests_get_segments_400_and_an_oversize_message_only_its_own_verdict(
    stack: Stack,
) -> None:
    acme = stack.account()
    padding = "x" * 1000
    big_message = {"type": "track", "userId": "u1", "event": "Big"}
    big_message["properties"] = {f"p{i}": padding for i in range(33)}
    too_big_batch = {"batch": [big_message] * 16}  # ~540 KB
    answer = post(stack, "/v1/batch", too_big_batch, key=acme.write_key)
    assert answer.status == 400 and answer.json()["code"] == "payload_too_large"
    single = post(stack, "/v1/track", big_message, key=acme.write_key)
    assert single.status == 400 and single.json()["code"] == "payload_too_large"
    mixed = {"batch": [big_message, {"type": "track", "userId": "u2", "event": "Small"}]}
    body = post(stack, "/v1/batch", mixed, key=acme.write_key).json()
    assert body["accepted"] == 1
    [refused] = body["rejected"]
    assert refused["index"] == 0 and refused["field"] == "batch[0]"
    assert "32 KB" in refused["error"]
    # At most 500 messages a request (the /v1/events cap): one more is a 400, which
    # Segment's libraries do not retry.
    many = {"batch": [{"type": "page", "userId": f"u{i}"} for i in range(500)]}
    assert post(stack, "/v1/batch", many, key=acme.write_key).json()["accepted"] == 500
    many["batch"].append({"type": "page", "userId": "u500"})
    over = post(stack, "/v1/batch", many, key=acme.write_key)
    assert over.status == 400 and over.json()["code"] == "too_many_messages"
    assert "at most 500" in over.json()["message"]


def test_malformed_requests_are_400_in_segments_shape(stack: Stack) -> None:
    acme = stack.account()
    for body, code in [
        ("{not json", "invalid_json"),
        ("[]", "invalid_body"),
        ({"batch": []}, "invalid_batch"),
        ({"batch": {"a": 1}}, "invalid_batch"),
        ({"batch": [{"type": "page", "userId": "u"}], "sentAt": "yesterday"}, "invalid_sent_at"),
    ]:
        answer = post(stack, "/v1/batch", body, key=acme.write_key)
        assert answer.status == 400, body
        assert answer.json()["success"] is False and answer.json()["code"] == code


def test_a_batch_mixing_good_and_bad_messages_applies_the_good_ones(stack: Stack) -> None:
    acme = stack.account()
    good_track = {"type": "track", "userId": "u1", "event": "A", "context": ctx()}
    batch = [
        good_track,  # 0
        {"type": "track", "event": "A"},  # 1: no user at all
        {"type": "track", "userId": "u3"},  # 2: no event name
        {"type": "teleport", "userId": "u4"},  # 3
        {"type": "page", "userId": "u5", "timestamp": "last tuesday"},  # 4
        {"type": "page", "userId": "u6", "timestamp": at(T0_MS + 2 * 3_600_000)},  # 5
        {"type": "page", "userId": "u7", "context": {"ip": "not-an-ip"}},  # 6
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro", "tags": ["a", "b"]}},  # 7
        "not a message",  # 8
        {"type": "identify", "userId": " ", "traits": {"plan": "x"}},  # 9
        {"type": "page", "userId": "u11", "anonymousId": "a11"},  # 10
    ]
    answer = post(stack, "/v1/batch", {"batch": batch, "sentAt": at(T0_MS)}, key=acme.write_key)
    assert answer.status == 200
    body = answer.json()
    fields = {(r["index"], r["field"]) for r in body["rejected"]}
    assert fields == {
        (1, "batch[1].userId"),
        (2, "batch[2].event"),
        (3, "batch[3].type"),
        (4, "batch[4].timestamp"),
        (5, "batch[5].timestamp"),
        (6, "batch[6].context.ip"),
        (7, "batch[7].traits.tags"),
        (8, "batch[8]"),
        (9, "batch[9].userId"),
    }
    # 0, 7 (its plan trait applied) and 10 are taken.
    assert body["accepted"] == 3 and body["ignored"] == []
    close_sessions(stack)
    assert {k: v["value"] for k, v in custom(stack, acme, "u1").items()} == {"plan": "pro"}
    assert stack.standard(acme, "u11")["total_sessions"] == 1
    for uuid in ("u3", "u4", "u5", "u6", "u7"):
        assert stack.user(acme, uuid).status == 404


def test_rejections_are_counted_in_the_events_rejected_metric(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from insights.services import segment_api
    from insights.services.core import ingest

    recorded: list[tuple[str, float]] = []

    class Recorder:
        def add_metric(self, *, name: str, unit: Any, value: float) -> None:
            recorded.append((name, value))

    monkeypatch.setattr(segment_api, "metrics", Recorder())
    monkeypatch.setattr(ingest, "metrics", Recorder())
    acme = stack.account()
    batch = [
        {"type": "track", "userId": "u1", "event": "A"},
        {"type": "track", "userId": "u2"},
        {"type": "nope"},
        {"type": "alias", "userId": "u1"},
    ]
    post(stack, "/v1/batch", {"batch": batch}, key=acme.write_key)
    assert sum(v for n, v in recorded if n == "EventsRejected") == 2
    assert sum(v for n, v in recorded if n == "SegmentMessagesIgnored") == 1
    assert sum(v for n, v in recorded if n == "EventsAccepted") == 1


# -------------------------------------------------------------------- time
def test_device_clock_skew_is_corrected_with_sent_at(stack: Stack) -> None:
    acme = stack.account()
    behind = 2 * 3_600_000  # the phone's clock is two hours slow
    batch = [
        {"type": "screen", "userId": "u1", "timestamp": at(T0_MS - behind - 60_000)},
        {"type": "screen", "userId": "u1", "timestamp": at(T0_MS - behind)},
    ]
    body = {"batch": batch, "sentAt": at(T0_MS - behind)}
    assert post(stack, "/v1/batch", body, key=acme.write_key).json()["accepted"] == 2
    close_sessions(stack)
    standard = stack.standard(acme, "u1")
    assert standard["first_seen"] == at(T0_MS - 60_000)
    assert standard["last_seen"] == at(T0_MS)


def test_per_message_sent_at_original_timestamp_and_a_forwarded_timestamp(stack: Stack) -> None:
    acme = stack.account()
    slow = 10 * MINUTE * 1000
    # analytics.js stamps each message; originalTimestamp is the device's time.
    own = {
        "userId": "u1",
        "originalTimestamp": at(T0_MS - slow - 5000),
        "sentAt": at(T0_MS - slow),
    }
    post(stack, "/v1/p", own, key=acme.write_key)
    # A forwarded message carries Segment's corrected timestamp next to the original.
    forwarded = {
        "userId": "u2",
        "timestamp": at(T0_MS - 7000),
        "originalTimestamp": at(T0_MS - 3_600_000),
        "sentAt": at(T0_MS - 3_600_000),
    }
    post(stack, "/v1/page", forwarded, key=acme.write_key)
    # Within the tolerance the device's own time is kept as sent.
    close_enough = {"userId": "u3", "timestamp": at(T0_MS - 9000), "sentAt": at(T0_MS + 30_000)}
    post(stack, "/v1/page", close_enough, key=acme.write_key)
    close_sessions(stack)
    assert stack.standard(acme, "u1")["last_seen"] == at(T0_MS - 5000)
    assert stack.standard(acme, "u2")["last_seen"] == at(T0_MS - 7000)
    assert stack.standard(acme, "u3")["last_seen"] == at(T0_MS - 9000)
    assert SKEW_TOLERANCE_MS > 30_000


def test_context_ip_user_agent_and_client_hints_map_to_location_and_browser(
    stack: Stack,
) -> None:
    acme = stack.account()
    hints = {
        "brands": [
            {"brand": "Not_A Brand", "version": "8"},
            {"brand": "Chromium", "version": "120"},
            {"brand": "Microsoft Edge", "version": "120"},
        ],
        "mobile": False,
        "platform": "Windows",
    }
    batch = [
        {"type": "page", "userId": "u1", "context": {"ip": LONDON_IP, "userAgent": FIREFOX}},
        {"type": "page", "userId": "u2", "context": {"userAgentData": hints}},
    ]
    sent = stack.cloud.function_url(
        "TrackFunction",
        "POST",
        "/v1/batch",
        headers={**basic(acme.write_key), "User-Agent": "analytics-python/2.4.0"},
        body={"batch": batch},
        source_ip="89.160.20.112",
    )
    assert sent.json()["accepted"] == 2
    close_sessions(stack)
    first = stack.standard(acme, "u1")
    assert (first["country"], first["browser_name"]) == ("United Kingdom", "Firefox")
    second = stack.standard(acme, "u2")  # the caller's address when the message has none
    assert second["country"] == "Sweden"
    assert (second["browser_name"], second["browser_version"]) == ("Edge", "120.0")


# ----------------------------------------------------------------- retries
def test_a_retried_batch_with_the_same_message_ids_changes_nothing(stack: Stack) -> None:
    acme = stack.account()
    batch = [
        {
            "type": "identify",
            "messageId": "m1",
            "userId": "u1",
            "traits": {"plan": "pro"},
            "timestamp": at(T0_MS - 2000),
        },
        {
            "type": "track",
            "messageId": "m2",
            "userId": "u1",
            "event": "A",
            "timestamp": at(T0_MS - 1500),
        },
        {"type": "page", "messageId": "m3", "userId": "u1", "timestamp": at(T0_MS - 1000)},
    ]
    first = post(stack, "/v1/batch", {"batch": batch, "sentAt": at(T0_MS)}, key=acme.write_key)
    pk = user_pk(acme.account_id, "u1")
    session, profile = store.get_session(pk), store.get_profile(pk)
    assert session is not None and profile is not None
    # The SDK retries 20 s later (its own backoff), stamping a fresh sentAt.
    stack.advance(20)
    again = post(
        stack, "/v1/batch", {"batch": batch, "sentAt": at(T0_MS + 20_000)}, key=acme.write_key
    )
    assert again.json() == first.json()
    assert store.get_session(pk) == session  # same item, same version: nothing written
    assert store.get_profile(pk) == profile
    # And a verbatim resend (the same sentAt) is the same again.
    stack.advance(20)
    post(stack, "/v1/batch", {"batch": batch, "sentAt": at(T0_MS)}, key=acme.write_key)
    assert store.get_session(pk) == session and store.get_profile(pk) == profile
    close_sessions(stack)
    standard = stack.standard(acme, "u1")
    assert standard["total_sessions"] == 1 and standard["total_session_duration"] == 0.5


# ----------------------------------------------------------- other details
def test_gzip_bodies_are_read_and_bombs_refused(stack: Stack) -> None:
    acme = stack.account()
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "A"}]}
    zipped = gzip.compress(json.dumps(batch).encode())
    headers = {**basic(acme.write_key), "Content-Encoding": "gzip"}
    answer = post(stack, "/v1/batch", zipped, headers=headers)
    assert answer.status == 200 and answer.json()["accepted"] == 1
    bomb = gzip.compress(b'{"batch": ["' + b"x" * 5_000_000 + b'"]}')
    answer = post(stack, "/v1/batch", bomb, headers=headers)
    assert answer.status == 400 and answer.json()["code"] == "payload_too_large"
    answer = post(stack, "/v1/batch", b"\x1f\x8bnot gzip", headers=headers)
    assert answer.status == 400 and answer.json()["code"] == "invalid_gzip"


def test_accounts_without_user_records_accept_and_say_so(stack: Stack) -> None:
    acme = stack.account(unique_user_ids=False)
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
        {"type": "track", "userId": "u1", "event": "A"},
    ]
    body = post(stack, "/v1/batch", {"batch": batch}, key=acme.write_key).json()
    assert body["success"] is True and body["accepted"] == 2
    assert body["user_records"] is False and "unique_user_ids" in body["note"]
    assert stack.cloud.items("UsersTable") == [] and stack.cloud.items("SessionsTable") == []


def test_numeric_user_ids_are_their_decimal_text(stack: Stack) -> None:
    acme = stack.account()
    post(stack, "/v1/page", {"userId": 42}, key=acme.write_key)
    close_sessions(stack)
    assert stack.standard(acme, "42")["total_sessions"] == 1


# -------------------------------------------------------------------- cost
def test_a_segment_batch_costs_what_the_same_events_cost_on_v1_events(stack: Stack) -> None:
    """Same DynamoDB requests and units, request by request, lazy close included."""
    from benchmarks.meter import Meter, Usage
    from insights import clock

    acme = stack.account(event_properties_as_attributes=["plan"])
    stack.send(acme, [{"uuid": "warm-up"}])  # the write key's lookup is cached for good
    offsets_s = [0, 60, 120, 40 * 60, 41 * 60]  # the fourth request closes the first session

    def native(ms: int) -> HttpResponse:
        events = [
            {"uuid": "n", "timestamp": at(ms - lag), "properties": {"plan": "pro"}}
            for lag in (2000, 1000)
        ]
        return stack.send(acme, events, sent_at=at(ms))

    def segment(ms: int) -> HttpResponse:
        batch = [
            {"type": kind, "userId": "s", "event": "A", "timestamp": at(ms - lag)}
            | {"properties": {"plan": "pro"}, "context": ctx()}
            for kind, lag in (("track", 2000), ("page", 1000))
        ]
        return post(stack, "/v1/batch", {"batch": batch, "sentAt": at(ms)}, key=acme.write_key)

    def metered(send: Any) -> Usage:
        # Both runs start with the account's cache expired (30 s, on the stack's clock).
        stack.advance(31)
        start = clock.now_ms()
        with Meter(stack.cloud).installed() as meter:
            for offset in offsets_s:
                stack.advance((start + offset * 1000 - clock.now_ms()) / 1000)
                assert send(clock.now_ms()).json()["accepted"] == 2
        stack.advance(3600)
        return meter.usage

    by_events, by_segment = metered(native), metered(segment)

    def track_calls(usage: Usage) -> dict[tuple[str, str], int]:
        return {(t, op): n for (f, t, op), n in usage.requests.items() if f == "TrackFunction"}

    assert track_calls(by_segment) == track_calls(by_events)
    assert by_segment.wru == by_events.wru and by_segment.rru == by_events.rru
    assert by_events.write_requests("TrackFunction") == len(offsets_s)
