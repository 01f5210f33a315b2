"""Protected attributes: names a write key (a browser, an app) may not set.

The write key is public, so without this any visitor could make their own
profile `idp.active: true` or `plan: "VIP"` and match a segment that gates
content on it. The account's `protected_attributes` (default `idp.*`, what
SCIM, OIDC and SAML write) are refused at the client doors, each with its
field, while the secret key's doors (imports, Salesforce, identity
providers, server-side Segment) still set them.
"""

from __future__ import annotations

from insights.domain.core.attributes import Row
from insights.domain.core.sessions import Stamped
from insights.services.core.attributes import write_attributes
from insights.storage.core.accounts import get_account
from insights.storage.core.models import AccountItem
from tests.conftest import T0_MS, Stack
from tests.core.test_event_properties import close_sessions, custom
from tests.segment_api.test_segment_api import at, ctx, post

REFUSED = "is a protected attribute"


def test_a_browser_cannot_make_itself_active_in_the_idp(stack: Stack) -> None:
    acme = stack.account()
    # The IdP says Ann left the company.
    gone = Row(0, "ann", {"idp.active": Stamped(False, T0_MS - 1)})
    assert write_attributes(get_account(acme.account_id), [gone], "idp").refused == []
    answer = stack.send(
        acme,
        [
            {"uuid": "ann", "type": "click", "user_properties": {"idp.active": True}},
            {"uuid": "ann", "type": "view", "user_properties": {"plan": "free"}},
        ],
    )
    assert answer.status == 200, answer.body
    assert answer.json()["accepted"] == 1
    [refused] = answer.json()["rejected"]
    assert refused["index"] == 0
    assert refused["field"] == "events[0].user_properties.idp.active"
    assert REFUSED in refused["error"]
    close_sessions(stack)
    assert custom(stack, acme, "ann") == {"idp.active": False, "plan": "free"}


def test_the_account_chooses_what_is_protected_prefixes_included(stack: Stack) -> None:
    acme = stack.account()
    patched = stack.patch_account(
        acme,
        {"protected_attributes": ["plan", "billing.*"], "event_properties_as_attributes": ["plan"]},
    )
    assert patched.status == 200, patched.body
    assert patched.json()["settings"]["protected_attributes"] == ["plan", "billing.*"]
    answer = stack.send(
        acme,
        [
            {"uuid": "u", "user_properties": {"billing.seats": 3}},
            {"uuid": "u", "properties": {"plan": "VIP"}},  # kept as an attribute: refused too
            {"uuid": "u", "properties": {"format": "pdf"}},  # describes the event: fine
            {"uuid": "u", "user_properties": {"idp.active": True, "billing": "yes"}},
        ],
    )
    fields = [r["field"] for r in answer.json()["rejected"]]
    assert fields == ["events[0].user_properties.billing.seats", "events[1].properties.plan"]
    assert answer.json()["accepted"] == 2
    close_sessions(stack)
    assert custom(stack, acme, "u") == {"idp.active": True, "billing": "yes"}
    # "*": clients send events only; every attribute comes from the servers' doors.
    assert stack.patch_account(acme, {"protected_attributes": ["*"]}).status == 200
    answer = stack.send(acme, [{"uuid": "u", "user_properties": {"anything": 1}}])
    assert answer.json()["accepted"] == 0
    # An empty list protects nothing.
    assert stack.patch_account(acme, {"protected_attributes": []}).status == 200
    assert (
        stack.send(acme, [{"uuid": "u", "user_properties": {"plan": "x"}}]).json()["accepted"] == 1
    )
    settings = stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).json()["settings"]
    assert settings["protected_attributes"] == []


def test_segment_traits_from_a_write_key_are_refused_alone_a_servers_are_kept(
    stack: Stack,
) -> None:
    acme = stack.account(protected_attributes=["plan"])
    identify = {
        "userId": "u1",
        "traits": {"name": "Ada", "plan": "VIP"},
        "timestamp": at(T0_MS),
        "context": ctx(),
    }
    answer = post(stack, "/v1/identify", identify, key=acme.write_key)
    assert answer.status == 200, answer.body
    assert answer.json()["accepted"] == 1
    [refused] = answer.json()["rejected"]
    assert refused["field"] == "traits.plan" and REFUSED in refused["error"]
    only = {**identify, "userId": "u2", "traits": {"plan": "VIP"}}
    answer = post(stack, "/v1/identify", only, key=acme.write_key)
    assert answer.json()["accepted"] == 0  # nothing of it was taken
    # A backend with the secret key is a server: it sets what the account protects.
    server = {**identify, "traits": {"plan": "Enterprise"}, "timestamp": at(T0_MS + 1)}
    assert post(stack, "/v1/identify", server, key=acme.secret_key).json()["accepted"] == 1
    # A kept property the account protects is refused alone; the event still counts.
    assert stack.patch_account(acme, {"event_properties_as_attributes": ["plan"]}).status == 200
    track = {"userId": "u1", "event": "Opened", "properties": {"plan": "Free"}, "context": ctx()}
    answer = post(stack, "/v1/track", track, key=acme.write_key)
    assert answer.json()["accepted"] == 1
    [refused] = answer.json()["rejected"]
    assert refused["field"] == "properties.plan" and REFUSED in refused["error"]
    close_sessions(stack)
    assert custom(stack, acme, "u1") == {"name": "Ada", "plan": "Enterprise"}
    assert stack.standard(acme, "u1")["total_sessions"] == 1


def test_an_account_from_before_the_setting_protects_the_idp_names(stack: Stack) -> None:
    acme = stack.account()
    item = AccountItem.get(f"acct#{acme.account_id}")
    item.update(actions=[AccountItem.protected_attributes.remove()])
    settings = stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).json()["settings"]
    assert settings["protected_attributes"] == ["idp.*"]
    answer = stack.send(acme, [{"uuid": "u", "user_properties": {"idp.title": "CEO"}}])
    assert answer.json()["accepted"] == 0
