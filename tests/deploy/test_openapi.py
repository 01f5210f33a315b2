"""docs/openapi.yaml: valid OpenAPI 3.1, every route of the template, and the real answers.

The fuzzer (schemathesis) runs over the same file in tests/e2e/test_openapi_fuzz.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from insights import clock
from insights.local.gateway import HttpResponse
from insights.local.template import Template
from tests.conftest import MINUTE, Stack
from tests.deploy import openapi_check
from tests.deploy.openapi_check import SPEC_PATH, check, operations, spec
from tests.idp.scim_helpers import CORE as SCIM_CORE
from tests.idp.scim_helpers import PATCH_OP as SCIM_PATCH
from tests.salesforce.salesforce_fake import App, FakeSalesforce


def test_the_description_is_valid_openapi_3_1() -> None:
    assert spec()["openapi"].startswith("3.1")
    validate(spec())


def _route_of(method: str, path: str, routes: set[tuple[str, str]]) -> tuple[str, str] | None:
    """The template route that serves a described operation.

    An exact (method, path) route, or a greedy proxy route (``ANY
    /scim/v2/{proxy+}``) whose prefix the path is under: API Gateway sends
    those on and the function routes them (functions/scim serves the SCIM
    paths the description lists).
    """
    if (method, path) in routes:
        return method, path
    for route_method, template in routes:
        prefix, proxy, _ = template.partition("{proxy+}")
        if proxy and route_method in ("ANY", method) and path.startswith(prefix):
            return route_method, template
    return None


def test_every_route_of_the_api_is_described_and_nothing_more() -> None:
    template = Template.load(openapi_check.ROOT / "template.yaml")
    routes = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for function in template.functions()
        for event in function.events.values()
        if event.get("Type") == "HttpApi"
    }
    served = {(m, p): _route_of(m, p, routes) for m, p in operations()}
    assert not {op for op, route in served.items() if route is None}  # nothing more
    assert routes == set(served.values())  # every route, a proxy by the paths under it


def test_every_operation_describes_its_errors() -> None:
    for method, path in operations():
        operation = spec()["paths"][path][method.lower()]
        responses, security = operation["responses"], operation.get("security")
        if security == []:
            continue  # public
        assert "401" in responses, (method, path)
        if any("secretKey" in scheme for scheme in security):
            assert "403" in responses, (method, path)  # a write key where the secret key goes
        assert any(r.startswith("2") for r in responses), (method, path)


def saml_answers_match_the_description(call: Checked) -> None:
    from tests.idp.saml_helpers import AUDIENCE, RECIPIENT, TestIdp

    idp = TestIdp()
    config = {"metadata_xml": idp.metadata(), "audience": AUDIENCE, "recipient": RECIPIENT}
    call("PUT", "/v1/idp/saml/config", {**config, "attributes": {"department": "department"}})
    call("PUT", "/v1/idp/saml/config", {**config, "certificate": idp.cert_pem})
    call("GET", "/v1/idp/saml/config")
    response = idp.response()
    call("POST", "/v1/idp/saml/response", {"saml_response": response})
    call("POST", "/v1/idp/saml/response", {"saml_response": response})  # replayed: 401


class Checked:
    """Requests to the local stack whose every answer is checked against the description."""

    def __init__(self, stack: Stack, account: Any) -> None:
        self.stack = stack
        self.account = account
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: str | None = "secret",
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        sent = dict(headers or {})
        if auth == "secret":
            sent.setdefault("Authorization", f"Bearer {self.account.secret_key}")
        elif auth == "write":
            sent.setdefault("X-Insights-Key", self.account.write_key)
        elif auth is not None:  # a SCIM token
            sent.setdefault("Authorization", f"Bearer {auth}")
        response = self.stack.cloud.http(method, path, headers=sent, body=body)
        assert response.status < 500, response.body
        check(method, path, response.status, response.headers, response.body)
        self.seen.add((method, openapi_check.template_of(path), response.status))
        return response


def test_the_stack_serves_its_description(stack: Stack) -> None:
    response = stack.cloud.http("GET", "/v1/openapi.yaml")
    assert response.status == 200
    assert response.headers["content-type"] == "application/yaml"
    assert yaml.safe_load(response.body) == spec()
    assert response.body == SPEC_PATH.read_text()


def counted_in_steps(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts and previews that answer in parts (a budget of one small round), on an
    account of their own with enough users that a round of one item a stream is not all."""
    from insights.domain.core.profile import Profile
    from insights.services.segments import counts
    from insights.storage.core import store
    from insights.storage.core.store import PutProfile

    big = stack.account("Big")
    call = Checked(stack, big)
    now = clock.now_ms()
    for i in range(40):
        seen = now - i * MINUTE
        profile = Profile(big.account.account_id, f"u{i}", now, seen, seen, 1, 1000)
        store.commit([PutProfile(profile, None)])
    stack.cloud.settle()
    rules = {"attribute": "first_seen", "op": "within_last", "value": "7d"}
    segment = call("POST", "/v1/segments", {"name": "new", "rules": rules}).json()["id"]
    with monkeypatch.context() as patched:
        patched.setattr(counts, "COUNT_BUDGET_S", 0.0)
        patched.setattr(counts, "COUNT_ROUND_ITEMS", 1)
        answer = call("GET", f"/v1/segments/{segment}/count").json()
        assert answer["complete"] is False
        while not answer["complete"]:
            answer = call(
                "GET", f"/v1/segments/{segment}/count?cursor={answer['next_cursor']}"
            ).json()
        assert answer["count"] == 40
        call("GET", f"/v1/segments/{segment}/count?cursor=forged")
        body = {"rules": rules, "limit": 5}
        answer = call("POST", "/v1/segments/preview", body).json()
        assert answer["complete"] is False and len(answer["users"]) == 5
        answer = call(
            "POST", "/v1/segments/preview", {**body, "cursor": answer["next_cursor"]}
        ).json()
        call("POST", "/v1/segments/preview", {**body, "cursor": 3})
    assert {s for _, _, s in call.seen} == {200, 201, 400}


def test_real_answers_match_the_description(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    acme = stack.account()
    call = Checked(stack, acme)
    # events: accepted, rejected per event, whole-request errors, keys
    sent = call(
        "POST",
        "/v1/events",
        {
            "context": {"ip": "81.2.69.160", "user_agent": "Mozilla/5.0 Firefox/128.0"},
            "events": [
                {"uuid": "u1", "user_properties": {"plan": "VIP", "seats": 3}}
                | {"properties": {"button": "buy"}},
                {"uuid": "u2", "user_properties": {"plan": "free"}},
                {"uuid": "u3", "properties": {"n": 1e300}},
            ],
        },
        auth="write",
    )
    assert sent.json()["accepted"] == 2 and len(sent.json()["rejected"]) == 1
    call("POST", "/v1/events", "{", auth="write")
    call("POST", "/v1/events", {"events": [{"uuid": "u"}]}, auth=None)
    call("POST", f"/v1/events?key={acme.secret_key}", {"events": [{"uuid": "u"}]}, auth=None)
    call("POST", "/v1/events", {"events": [{"uuid": "u"}] * 501}, auth="write")
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()
    # account
    call("GET", "/v1/account")
    call("GET", "/v1/account", auth="write")
    call("GET", "/v1/account", auth=None)
    call("PATCH", "/v1/account", {"backfill_days": 30})
    call("PATCH", "/v1/account", {"backfill_days": 9999})
    # users
    assert call("GET", "/v1/users/u1").json()["custom"]["plan"]["value"] == "VIP"
    call("GET", "/v1/users/nobody")
    call("GET", "/v1/users/" + "x" * 300)
    call("GET", "/v1/users/u1/segments")
    # console (docs/console-api.md)
    assert [u["uuid"] for u in call("GET", "/v1/users?prefix=u&limit=1").json()["users"]] == ["u1"]
    call("GET", "/v1/users?limit=0")
    assert call("GET", "/v1/attributes").json()["attributes"][0]["name"] == "plan"
    assert call("GET", "/v1/stats?days=90").json()["users"] == 2
    call("GET", "/v1/stats?days=7")
    # segments
    rules = {"attribute": "custom.plan", "op": "equals", "value": "VIP"}
    vip = {"name": "VIP", "rules": rules, "targeting": True}
    segment = call("POST", "/v1/segments", vip).json()["id"]
    call("POST", "/v1/segments", {"name": "bad", "rules": {"attribute": "nope", "op": "x"}})
    call("GET", "/v1/segments")
    call("GET", f"/v1/segments/{segment}")
    call("GET", "/v1/segments/seg_nope")
    call("PUT", f"/v1/segments/{segment}", {**vip, "name": "VIP!", "description": None})
    call("PUT", "/v1/segments/seg_nope", {"name": "x", "rules": rules})
    call("POST", "/v1/segments/preview", {"rules": rules, "limit": 5})
    call("POST", "/v1/segments/preview", {"rules": {}})
    listed = call("GET", f"/v1/segments/{segment}/users?limit=1")
    assert listed.json()["users"][0]["uuid"] == "u1"
    call("GET", f"/v1/segments/{segment}/users?cursor=forged")
    call("GET", f"/v1/segments/{segment}/users?limit=0")
    call("GET", f"/v1/segments/{segment}/count")
    call("GET", "/v1/segments/seg_nope/count")
    counted_in_steps(stack, monkeypatch)
    assert call("GET", "/v1/users/u1/segments").json()["segments"] == [segment]
    identity_and_sdk(call, segment)  # u1 is in the targeting segment now
    # imports
    started = call("POST", "/v1/imports", {"filename": "crm.csv", "mapping": {"uuid": "id"}})
    call("POST", "/v1/imports", {"filename": "../x.exe"})
    import_id = started.json()["id"]
    form = started.json()["upload"]
    data = b"id,plan\nu1,gold\n,empty\n"
    stack.cloud.post_object(form["url"], form["fields"], data, "crm.csv")
    stack.cloud.settle()
    job = call("GET", f"/v1/imports/{import_id}").json()
    assert job["status"] == "partially_succeeded" and job["error_report"] is not None
    call("GET", "/v1/imports?limit=1")
    call("GET", "/v1/imports?limit=x")
    call("GET", "/v1/imports/imp_nope")
    call("POST", f"/v1/imports/{import_id}/cancel")
    pending = call("POST", "/v1/imports", {"filename": "later.jsonl"}).json()["id"]
    assert call("POST", f"/v1/imports/{pending}/cancel").json()["status"] == "cancelled"
    call("POST", "/v1/imports/imp_nope/cancel")
    # exports
    export_id = call("POST", "/v1/exports").json()["id"]
    stack.cloud.settle()
    assert call("GET", f"/v1/exports/{export_id}").json()["status"] == "succeeded"
    call("GET", "/v1/exports/exp_nope")
    segment_api(call)
    scim_and_its_management(call)
    oidc(call)
    team(call)
    salesforce(call, monkeypatch)
    # saml (tests/idp/test_saml.py covers the refusals one by one)
    saml_answers_match_the_description(call)
    # the rest of the deletes last
    call("DELETE", f"/v1/segments/{segment}")
    call("DELETE", f"/v1/segments/{segment}")
    call("DELETE", "/v1/users/u2")
    call("GET", "/v1/openapi.yaml", auth=None)
    # the console's static files (docs/console.md): the page, one asset, an old version
    page = call("GET", "/", auth=None).body
    call("GET", re.findall(r'src="(/console/[^"]+)"', page)[0], auth=None)
    call("GET", "/console/0000/app.mjs", auth=None)
    # last: the account's secret key changes
    call("POST", "/v1/account/secret-key")
    call("POST", "/v1/account/secret-key")
    described = {(m, p) for m, p in operations()}
    exercised = {(m, p) for m, p, _ in call.seen}
    assert exercised == described, described - exercised
    statuses = {s for _, _, s in call.seen}
    assert {200, 201, 202, 204, 304, 400, 401, 403, 404, 409, 412, 413, 422} <= statuses
    assert json.dumps(sorted(call.seen))  # a record of what was checked


def identity_and_sdk(call: Checked, targeting_segment: str) -> None:
    call("GET", "/v1/account/identity")
    call("GET", "/v1/account/identity", auth="write")
    assert call("PATCH", "/v1/account/identity", {"verification": True}).status == 409
    secret = call("POST", "/v1/account/identity/secret").json()["identity_secret"]
    call("PATCH", "/v1/account/identity", {"verification": "yes"})
    assert call("PATCH", "/v1/account/identity", {"verification": True}).json()["verification"]
    call("PATCH", "/v1/account/identity", {"verification": False})
    script = call("GET", "/v1/sdk/insights.js", auth=None)
    assert "insights" in script.body
    etag = {"If-None-Match": script.headers["etag"]}
    assert call("GET", "/v1/sdk/insights.js", auth=None, headers=etag).status == 304
    head = call("HEAD", "/v1/sdk/insights.js", auth=None)
    assert (head.status, head.body, head.headers["etag"]) == (200, "", etag["If-None-Match"])
    assert call("HEAD", "/v1/sdk/insights.js", auth=None, headers=etag).status == 304
    user_hash = hmac.new(secret.encode(), b"u1", hashlib.sha256).hexdigest()
    found = call("GET", f"/v1/sdk/segments?uuid=u1&user_hash={user_hash}", auth="write")
    assert found.json()["segments"] == [targeting_segment]
    assert call("GET", "/v1/sdk/segments?uuid=u1", auth="write").status == 403
    call("GET", "/v1/sdk/segments", auth="write")
    call("GET", "/v1/sdk/segments?uuid=u1", auth=None)
    secret_in_url = f"/v1/sdk/segments?uuid=u1&key={call.account.secret_key}"
    assert call("GET", secret_in_url, auth=None).json()["error"] == "secret_key_in_url"


def segment_api(call: Checked) -> None:
    from insights.domain.segment_api import ROUTES

    basic = {
        "Authorization": "Basic " + base64.b64encode(f"{call.account.write_key}:".encode()).decode()
    }
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"tier": "gold", "tags": ["a"]}},
        {"type": "track", "userId": "u1"},
        {"type": "alias", "userId": "u1", "previousId": "anon-1"},
    ]
    taken = call("POST", "/v1/batch", {"batch": batch}, auth=None, headers=basic).json()
    assert (taken["accepted"], len(taken["rejected"]), len(taken["ignored"])) == (1, 2, 1)
    call("POST", "/v1/batch", {"batch": []}, auth=None, headers=basic)
    call("POST", "/v1/track", {"userId": "u1", "event": "Upgraded"}, auth=None)
    key = call.account.write_key
    for path, kind in ROUTES.items():  # every route, the key in the body as analytics.js sends it
        message = {"type": kind or "page", "userId": "u1", "event": "Viewed"}
        body = (
            {"batch": [message], "writeKey": key} if kind is None else {**message, "writeKey": key}
        )
        assert call("POST", path, body, auth=None).json()["success"] is True


def scim_and_its_management(call: Checked) -> None:
    from urllib.parse import quote

    made = call("POST", "/v1/idp/scim/tokens", {"name": "Okta"}).json()
    call("POST", "/v1/idp/scim/tokens", {"name": ""})
    assert [t["id"] for t in call("GET", "/v1/idp/scim/tokens").json()["tokens"]] == [made["id"]]
    assert call("GET", "/v1/idp/scim/config").json()["default"] is True
    call("PUT", "/v1/idp/scim/config", {"uuid": "shoeSize"})
    call("PUT", "/v1/idp/scim/config", {"uuid": "userName", "attributes": {"title": "job"}})
    token = made["token"]
    for path in ("ServiceProviderConfig", "ResourceTypes", "ResourceTypes/User", "Schemas"):
        call("GET", f"/scim/v2/{path}", auth=token)
    call("GET", "/scim/v2/ResourceTypes/Group", auth=token)
    call("GET", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", auth=token)
    call("GET", "/scim/v2/Schemas/urn:nope", auth=token)
    call("GET", "/scim/v2/Users")  # the secret key is no SCIM token: 401
    ada = {"schemas": [SCIM_CORE], "userName": "ada@example.com", "title": "Engineer"}
    user = call("POST", "/scim/v2/Users", ada, auth=token).json()
    call("POST", "/scim/v2/Users", ada, auth=token)  # userName taken: 409
    call("POST", "/scim/v2/Users", {"userName": "x", "shoeSize": 44}, auth=token)
    call("POST", "/scim/v2/Users", {"userName": "x" * 300_000}, auth=token)  # 413
    listed = call(
        "GET", "/scim/v2/Users?filter=" + quote('userName eq "ada@example.com"'), auth=token
    )
    assert listed.json()["totalResults"] == 1
    call("GET", "/scim/v2/Users?filter=" + quote("(("), auth=token)
    one = f"/scim/v2/Users/{user['id']}"
    call("GET", one + "?attributes=title", auth=token)
    call("GET", "/scim/v2/Users/nobody", auth=token)
    call("PUT", one, {**ada, "title": "CTO"}, auth=token)
    call("PUT", "/scim/v2/Users/nobody", ada, auth=token)
    patch = {
        "schemas": [SCIM_PATCH],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    stale = {"If-Match": user["meta"]["version"]}
    assert call("PATCH", one, patch, auth=token, headers=stale).status == 412
    assert call("PATCH", one, patch, auth=token).json()["active"] is False
    call("DELETE", one, auth=token, headers=stale)
    call("DELETE", one, auth=token)
    call("DELETE", one, auth=token)
    call("DELETE", f"/v1/idp/scim/tokens/{made['id']}")
    call("DELETE", f"/v1/idp/scim/tokens/{made['id']}")
    call("GET", "/scim/v2/ServiceProviderConfig", auth=token)  # revoked: 401


def oidc(call: Checked) -> None:
    call("GET", "/v1/idp/oidc/config")
    assert call("GET", "/v1/idp/oidc/status").json() == {"configured": False}
    call("POST", "/v1/idp/oidc/token", {"id_token": "x"}, auth="write")  # no issuer yet: 409
    call("PUT", "/v1/idp/oidc/config", {"issuer": "http://idp.example.com", "audience": "app"})
    issuer = {"issuer": "https://idp.example.com", "audience": "app", "claims": {"dept": "dept"}}
    assert call("PUT", "/v1/idp/oidc/config", issuer).json()["audience"] == ["app"]
    call("GET", "/v1/idp/oidc/config")
    assert call("GET", "/v1/idp/oidc/status").json()["config"]["audience"] == ["app"]
    call("POST", "/v1/idp/oidc/token", {"id_token": "not-a-jwt"}, auth="write")
    call("POST", "/v1/idp/oidc/token", {"token": "x"}, auth="write")
    call("POST", "/v1/idp/oidc/token", {"id_token": "x"}, auth=None)


def team(call: Checked) -> None:
    """The console's sign-in and team routes (tests/team/ signs in through a real provider)."""
    account = call.account.account_id
    assert call("GET", "/v1/team/me").json()["via"] == "secret_key"
    assert call("GET", "/v1/team/me", auth=None).json() == {"signed_in": False, "reason": None}
    ended = {"cookie": "insights_session=acc_x." + "A" * 43, "X-Insights-Console": "1"}
    assert call("GET", "/v1/team/me", auth=None, headers=ended).json()["reason"] == "session_ended"
    call("GET", "/v1/team/me", auth="write")
    assert call("GET", "/v1/team/provider").json() == {"configured": False}
    assert call("GET", f"/v1/team/signin?account={account}", auth=None).status == 302
    call("PUT", "/v1/team/provider", {"issuer": "http://idp.example.com"})
    provider = {
        "issuer": "https://idp.example.com",
        "client_id": "app",
        "client_secret": "s3cr3t",
        "redirect_uri": "https://api.example.com/v1/team/callback",
        "allowed_domains": ["acme.com"],
        "default_role": "viewer",
    }
    assert call("PUT", "/v1/team/provider", provider).json()["provider"]["has_client_secret"]
    call("GET", "/v1/team/provider")
    call("GET", "/v1/team/callback?state=x&code=y", auth=None)
    call("PUT", "/v1/team/members/ann%40acme.com", {"role": "editor"})
    call("PUT", "/v1/team/members/nobody", {"role": "editor"})
    assert call("GET", "/v1/team/members").json()["members"][0]["email"] == "ann@acme.com"
    call("DELETE", "/v1/team/members/ann%40acme.com")
    call("DELETE", "/v1/team/members/ann%40acme.com")
    call("DELETE", "/v1/team/members/nobody")
    assert call("POST", "/v1/team/signout").json() == {"signed_out": False}
    call("POST", "/v1/team/signout", auth=None)
    call("POST", "/v1/team/signout", auth="write")
    assert call("GET", "/v1/audit?limit=2").json()["next_cursor"] is not None
    call("GET", "/v1/audit?limit=0")
    call("GET", "/v1/audit", auth=None)
    call("GET", "/v1/audit", auth="write")
    call("DELETE", "/v1/team/provider")
    call("DELETE", "/v1/team/provider")


def salesforce(call: Checked, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSalesforce(start_ms=clock.now_ms()).start()
    try:
        fake.add_object("Contact")
        fake.apps["key-acme"] = App("key-acme", consumer_secret="secret-acme")
        monkeypatch.setenv("SALESFORCE_ENDPOINT_URL", fake.url)
        path = "/v1/integrations/salesforce"
        connection = {
            "login_host": "https://acme.my.salesforce.com",
            "credentials": {
                "flow": "client_credentials",
                "consumer_key": "key-acme",
                "consumer_secret": "secret-acme",
            },
            "object": "Contact",
            "uuid_field": "External_Id__c",
            "fields": ["Title", "Plan__c"],
        }
        call("GET", path)
        assert call("GET", path + "/status").json() == {"configured": False}
        call("POST", path + "/test")
        call("PUT", path, {**connection, "object": "Not an API name"})
        assert call("PUT", path, connection).status == 201
        assert call("POST", path + "/test").json()["ok"] is True
        wrong = {**connection["credentials"], "consumer_secret": "wrong"}
        tested = call("POST", path + "/test", {**connection, "credentials": wrong})
        assert tested.json()["problems"][0]["code"] == "bad_credentials"
        call("POST", path + "/sync", {"full": "yes"})
        assert call("POST", path + "/sync", {"full": True}).status == 202
        assert call("POST", path + "/sync").status == 409  # running
        call("GET", path)
        assert call("GET", path + "/status").json()["connection"]["object"] == "Contact"
        assert call("PUT", path, {**connection, "credentials": None}).status == 200
        call("DELETE", path)
        call("DELETE", path)
    finally:
        fake.stop()
