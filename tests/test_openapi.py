"""docs/openapi.yaml: valid OpenAPI 3.1, every route of the template, and the real answers.

The fuzzer (schemathesis) runs over the same file in tests/e2e/test_openapi_fuzz.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from openapi_spec_validator import validate

from insights.local.cloud import HttpResponse
from insights.local.template import Template
from tests import openapi_check
from tests.conftest import MINUTE, Stack
from tests.openapi_check import SPEC_PATH, check, operations, spec


def test_the_description_is_valid_openapi_3_1() -> None:
    assert spec()["openapi"].startswith("3.1")
    validate(spec())


# Routes the description does not hold yet, so schemathesis does not fuzz them
# either. Each is exercised by its own real clients instead: Segment's SDKs
# (tests/e2e/test_segment_sdks.py), scim2-tester and Okta/Entra request shapes
# (tests/test_scim*.py), a local OIDC issuer (tests/test_oidc.py) and a fake
# Salesforce through simple-salesforce (tests/test_salesforce.py). Describing
# them is open work: this list may only shrink.
UNDESCRIBED = {
    *(
        ("POST", f"/v1/{name}")
        for name in ["batch", "b", "identify", "i", "track", "t", "page", "p", "screen", "s"]
    ),
    *(("POST", f"/v1/{name}") for name in ["alias", "a", "group", "g"]),
    ("ANY", "/scim/v2/{proxy+}"),
    ("GET", "/v1/idp/scim/tokens"),
    ("POST", "/v1/idp/scim/tokens"),
    ("DELETE", "/v1/idp/scim/tokens/{id}"),
    ("GET", "/v1/idp/scim/config"),
    ("PUT", "/v1/idp/scim/config"),
    ("POST", "/v1/idp/oidc/token"),
    ("GET", "/v1/idp/oidc/config"),
    ("PUT", "/v1/idp/oidc/config"),
    ("GET", "/v1/integrations/salesforce"),
    ("PUT", "/v1/integrations/salesforce"),
    ("DELETE", "/v1/integrations/salesforce"),
    ("POST", "/v1/integrations/salesforce/test"),
    ("POST", "/v1/integrations/salesforce/sync"),
    # The browser SDK's script and lookup, and identity verification
    # (tests/e2e/test_browser_sdk.py drives them from a real browser).
    ("GET", "/v1/sdk/insights.js"),
    ("GET", "/v1/sdk/segments"),
    ("GET", "/v1/account/identity"),
    ("PATCH", "/v1/account/identity"),
    ("POST", "/v1/account/identity/secret"),
}


def test_every_route_of_the_api_is_described_and_nothing_more() -> None:
    template = Template.load(openapi_check.ROOT / "template.yaml")
    routes = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for function in template.functions()
        for event in function.events.values()
        if event.get("Type") == "HttpApi"
    }
    assert routes >= UNDESCRIBED  # a route gone from the template leaves the list too
    assert routes - UNDESCRIBED == operations()


def test_every_operation_describes_its_errors() -> None:
    for method, path in operations():
        responses = spec()["paths"][path][method.lower()]["responses"]
        if spec()["paths"][path][method.lower()].get("security") == []:
            continue  # public
        assert "401" in responses and "403" in responses, (method, path)


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


def test_real_answers_match_the_description(stack: Stack) -> None:
    acme = stack.account()
    call = Checked(stack, acme)
    # events: accepted, rejected per event, whole-request errors, keys
    sent = call(
        "POST",
        "/v1/events",
        {
            "context": {"ip": "81.2.69.160", "user_agent": "Mozilla/5.0 Firefox/128.0"},
            "events": [
                {"uuid": "u1", "properties": {"plan": "VIP", "seats": 3}},
                {"uuid": "u2", "properties": {"plan": "free"}},
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
    segment = call("POST", "/v1/segments", {"name": "VIP", "rules": rules}).json()["id"]
    call("POST", "/v1/segments", {"name": "bad", "rules": {"attribute": "nope", "op": "x"}})
    call("GET", "/v1/segments")
    call("GET", f"/v1/segments/{segment}")
    call("GET", "/v1/segments/seg_nope")
    call("PUT", f"/v1/segments/{segment}", {"name": "VIP!", "rules": rules, "description": None})
    call("PUT", "/v1/segments/seg_nope", {"name": "x", "rules": rules})
    call("POST", "/v1/segments/preview", {"rules": rules, "limit": 5})
    call("POST", "/v1/segments/preview", {"rules": {}})
    listed = call("GET", f"/v1/segments/{segment}/users?limit=1")
    assert listed.json()["users"][0]["uuid"] == "u1"
    call("GET", f"/v1/segments/{segment}/users?cursor=forged")
    call("GET", f"/v1/segments/{segment}/users?limit=0")
    call("GET", f"/v1/segments/{segment}/count")
    call("GET", "/v1/segments/seg_nope/count")
    assert call("GET", "/v1/users/u1/segments").json()["segments"] == [segment]
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
    assert {200, 201, 204, 400, 401, 403, 404, 409, 413} <= statuses
    assert json.dumps(sorted(call.seen))  # a record of what was checked
