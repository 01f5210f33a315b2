"""One rule for event properties, through every door (docs/event-properties.md).

A property that describes an event (`format: "pdf"`) never becomes a user
attribute by itself; user properties (`user_properties` on /v1/events,
identify traits in the SDK and on Segment's API) always do; the one account
setting `event_properties_as_attributes` keeps named event properties as
attributes on /v1/events, the SDK and Segment's track/page/screen alike.
The browser SDK's wire format is checked in real Chromium
(tests/e2e/test_browser_sdk.py) and Segment's own Python client in
tests/e2e/test_segment_sdks.py.
"""

from __future__ import annotations

import base64
from typing import Any

from insights.services.core import auth
from tests.conftest import CHROME, LONDON_IP, MINUTE, Stack


def close_sessions(stack: Stack) -> None:
    stack.advance(31 * MINUTE)
    stack.sweep()


def custom(stack: Stack, account: Any, uuid: str) -> dict[str, Any]:
    response = stack.user(account, uuid)
    assert response.status == 200, response.body
    return {name: v["value"] for name, v in response.json()["custom"].items()}


def segment_batch(stack: Stack, account: Any, batch: list[dict[str, Any]]) -> dict[str, Any]:
    basic = base64.b64encode(f"{account.write_key}:".encode()).decode()
    context = {"ip": LONDON_IP, "userAgent": CHROME}
    response = stack.cloud.function_url(
        "TrackFunction",
        "POST",
        "/v1/batch",
        headers={"Authorization": f"Basic {basic}"},
        body={"batch": [message | {"context": context} for message in batch]},
    )
    assert response.status == 200, response.body
    return dict(response.json())


def send_every_door(stack: Stack, account: Any) -> None:
    """The same facts through /v1/events (as the SDK sends them) and Segment's API."""
    sdk_like = [
        {"uuid": "events-u", "type": "identify", "interactive": False}
        | {"user_properties": {"role": "admin", "status": "VIP"}},
        {"uuid": "events-u", "type": "exported report", "properties": {"format": "pdf"}},
        {"uuid": "events-u", "type": "upgraded", "properties": {"plan": "pro"}},
    ]
    answer = stack.send(account, sdk_like).json()
    assert answer["accepted"] == 3 and answer["rejected"] == []
    answer = segment_batch(
        stack,
        account,
        [
            {"type": "identify", "userId": "segment-u", "traits": {"role": "admin"}},
            {"type": "identify", "userId": "segment-u", "traits": {"status": "VIP"}},
            {"type": "track", "userId": "segment-u", "event": "exported report"}
            | {"properties": {"format": "pdf"}},
            {"type": "track", "userId": "segment-u", "event": "upgraded"}
            | {"properties": {"plan": "pro"}},
        ],
    )
    assert answer["accepted"] == 4 and answer["rejected"] == []
    close_sessions(stack)


def test_event_properties_stay_off_the_profile_on_every_door(stack: Stack) -> None:
    acme = stack.account()
    send_every_door(stack, acme)
    for uuid in ("events-u", "segment-u"):
        assert custom(stack, acme, uuid) == {"role": "admin", "status": "VIP"}, uuid


def test_the_one_setting_keeps_named_event_properties_on_every_door(stack: Stack) -> None:
    acme = stack.account(event_properties_as_attributes=["plan"])
    send_every_door(stack, acme)
    for uuid in ("events-u", "segment-u"):
        assert custom(stack, acme, uuid) == {"role": "admin", "status": "VIP", "plan": "pro"}
    attributes = stack.user(acme, "events-u").json()["custom"]
    assert attributes["plan"]["source"] == "event"  # at session close, as user properties
    assert attributes["role"]["source"] == "event"


def test_user_properties_fold_by_event_time_and_apply_at_close(stack: Stack) -> None:
    """The open session carries the latest value of each user property (by event
    time, not arrival); nothing reaches the profile before the session closes."""
    from tests.conftest import T0_MS, iso

    acme = stack.account(event_properties_as_attributes=["plan"])
    later = {"uuid": "u", "timestamp": iso(T0_MS + 60_000), "user_properties": {"role": "owner"}}
    earlier = {"uuid": "u", "timestamp": iso(T0_MS), "user_properties": {"role": "viewer"}}
    both = {"uuid": "u", "timestamp": iso(T0_MS + 30_000)}
    # Named both ways in one event: the user property wins.
    both |= {"properties": {"plan": "free"}, "user_properties": {"plan": "team"}}
    assert stack.send(acme, [later]).json()["accepted"] == 1
    assert stack.send(acme, [earlier, both]).json()["accepted"] == 2
    assert stack.user(acme, "u").status == 404  # still open: no profile yet
    close_sessions(stack)
    assert custom(stack, acme, "u") == {"role": "owner", "plan": "team"}


def test_user_properties_are_checked_as_properties_are(stack: Stack) -> None:
    acme = stack.account()
    events = [
        {"uuid": "a", "user_properties": ["role"]},
        {"uuid": "b", "user_properties": {"tags": ["x"]}},
        {"uuid": "c", "user_properties": {"role": "admin"}, "properties": {"n": 1e300}},
        {"uuid": "d", "user_propertys": {"role": "admin"}},
        {"uuid": "ok", "user_properties": {"role": "admin"}},
    ]
    answer = stack.send(acme, events).json()
    assert answer["accepted"] == 1
    fields = {r["index"]: r["field"] for r in answer["rejected"]}
    assert fields == {
        0: "events[0].user_properties",
        1: "events[1].user_properties.tags",
        2: "events[2].properties.n",
        3: "events[3].user_propertys",
    }


def test_the_old_segment_only_setting_name_is_refused_with_its_new_name(stack: Stack) -> None:
    acme = stack.account()
    answer = stack.patch_account(acme, {"segment_event_properties": ["plan"]})
    assert answer.status == 400
    body = answer.json()
    assert body["field"] == "segment_event_properties"
    assert "event_properties_as_attributes" in body["message"]


def test_an_account_stored_with_the_segment_only_setting_keeps_its_list(stack: Stack) -> None:
    """Accounts that opted in before the setting covered every door: their item
    holds `segment_event_properties`, read as the one setting, no migration."""
    acme = stack.account()
    stack.cloud.dynamodb.update_item(
        TableName=stack.cloud.deployment.tables["AccountsTable"],
        Key={"pk": {"S": f"acct#{acme.account.account_id}"}},
        UpdateExpression="SET segment_event_properties = :names",
        ExpressionAttributeValues={":names": {"L": [{"S": "plan"}]}},
    )
    auth._cache.clear()  # as a Lambda that has not read the account yet
    settings = stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).json()["settings"]
    assert settings["event_properties_as_attributes"] == ["plan"]
    assert "segment_event_properties" not in settings
    event = {"uuid": "u", "properties": {"plan": "pro", "format": "pdf"}}
    assert stack.send(acme, [event]).json()["accepted"] == 1
    close_sessions(stack)
    assert custom(stack, acme, "u") == {"plan": "pro"}
