"""POST /v1/events over the template's HTTP routes: auth, limits, verdicts."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Stack


def post(
    stack: Stack, body: str | bytes, headers: dict[str, str] | None = None, path: str = "/v1/events"
):
    return stack.cloud.http("POST", path, headers=headers or {}, body=body)


def test_accepts_events_and_reports_each_rejection(stack: Stack) -> None:
    acme = stack.account()
    response = stack.send(acme, [{"uuid": "u1"}, {"uuid": ""}, {"uuid": "u2", "interactive": 3}])
    assert response.status == 200
    assert response.json() == {
        "accepted": 1,
        "late": 0,
        "rejected": [
            {
                "index": 1,
                "field": "events[1].uuid",
                "error": "uuid is required and must be a non-empty string",
            },
            {
                "index": 2,
                "field": "events[2].interactive",
                "error": "interactive must be true or false",
            },
        ],
    }


def test_key_in_query_parameter_works_for_sendbeacon(stack: Stack) -> None:
    acme = stack.account()
    response = post(
        stack, json.dumps({"events": [{"uuid": "u"}]}), path=f"/v1/events?key={acme.write_key}"
    )
    assert response.status == 200 and response.json()["accepted"] == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "missing_key"), ({"X-Insights-Key": "wk_nope"}, "unknown_key")],
)
def test_missing_or_unknown_key_is_401(stack: Stack, headers: dict[str, str], code: str) -> None:
    response = post(stack, json.dumps({"events": [{"uuid": "u"}]}), headers)
    assert response.status == 401
    assert response.json()["error"] == code and response.json()["message"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{oops", 400, "invalid_json"),
        ('{"events": []}', 400, "no_events"),
        ("", 400, "empty_body"),
        (json.dumps({"events": [{"uuid": "u"}] * 501}), 413, "too_many_events"),
        (
            json.dumps({"events": [{"uuid": "u", "properties": {"p": "x" * 600_000}}]}),
            413,
            "body_too_large",
        ),
    ],
)
def test_whole_request_problems(stack: Stack, body: str, status: int, code: str) -> None:
    acme = stack.account()
    response = post(stack, body, {"X-Insights-Key": acme.write_key})
    assert response.status == status
    assert response.json()["error"] == code


def test_secret_key_is_refused_on_nothing_but_write_key_is_refused_on_management(
    stack: Stack,
) -> None:
    acme = stack.account()
    denied = stack.cloud.http(
        "GET", "/v1/account", headers={"Authorization": f"Bearer {acme.write_key}"}
    )
    assert denied.status == 403 and denied.json()["error"] == "wrong_key"
    assert stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).status == 200


def test_account_settings_read_and_patch(stack: Stack) -> None:
    acme = stack.account()
    body = stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).json()
    assert body["settings"] == {
        "unique_user_ids": True,
        "session_timeout_minutes": 30,
        "backfill_days": 7,
        "event_properties_as_attributes": [],
        "protected_attributes": ["idp.*"],
    }
    patched = stack.patch_account(acme, {"session_timeout_minutes": 45, "backfill_days": 365})
    assert patched.status == 200
    assert patched.json()["settings"]["session_timeout_minutes"] == 45
    for bad, field in [
        ({"session_timeout_minutes": 0}, "session_timeout_minutes"),
        ({"session_timeout_minutes": 241}, "session_timeout_minutes"),
        ({"backfill_days": 366}, "backfill_days"),
        ({"unique_user_ids": "no"}, "unique_user_ids"),
        ({"colour": "red"}, "colour"),
        ({"protected_attributes": ["id*p"]}, "protected_attributes"),
        ({"protected_attributes": ["plan", "plan"]}, "protected_attributes"),
        ({"protected_attributes": "plan"}, "protected_attributes"),
    ]:
        response = stack.patch_account(acme, bad)
        assert response.status == 400 and response.json()["field"] == field
    again = stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).json()
    assert again["settings"]["session_timeout_minutes"] == 45


def test_cors_preflight_is_answered(stack: Stack) -> None:
    response = stack.cloud.http("OPTIONS", "/v1/events")
    assert response.status == 204
    assert "x-insights-key" in response.headers["access-control-allow-headers"]


def test_a_crashing_handler_answers_500_and_reports_the_request(stack: Stack, monkeypatch) -> None:
    import sys

    acme = stack.account()
    reports: list[str] = []
    monkeypatch.setattr(stack.cloud, "_on_error", reports.append)
    module = sys.modules[stack.cloud.handler("TrackFunction").__module__]

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "ingest", explode)
    response = stack.send(acme, [{"uuid": "u"}])
    assert response.status == 500
    assert len(reports) == 1
    assert "TrackFunction failed on POST /v1/events" in reports[0] and "boom" in reports[0]
    monkeypatch.undo()
    assert stack.send(acme, [{"uuid": "u"}]).status == 200  # the stack keeps serving


def test_the_function_url_tracks_like_the_api_route(stack: Stack) -> None:
    acme = stack.account()
    body = {"context": {"ip": "81.2.69.160"}, "events": [{"uuid": "u1"}, {"uuid": ""}]}
    headers = {"X-Insights-Key": acme.write_key}
    by_url = stack.cloud.function_url("TrackFunction", "POST", "/", headers=headers, body=body)
    by_api = stack.cloud.http("POST", "/v1/events", headers=headers, body=body)
    assert by_url.status == by_api.status == 200
    assert by_url.json() == by_api.json()
    assert by_url.headers["access-control-allow-origin"] == "*"
    unauthenticated = stack.cloud.function_url("TrackFunction", "POST", "/", body=body)
    assert unauthenticated.status == 401


def test_the_function_url_answers_preflights_and_refuses_other_methods(stack: Stack) -> None:
    preflight = stack.cloud.function_url("TrackFunction", "OPTIONS", "/")
    assert preflight.status == 204
    assert "x-insights-key" in preflight.headers["access-control-allow-headers"]
    response = stack.cloud.function_url("TrackFunction", "GET", "/?key=wk_whatever")
    assert response.status == 405 and response.json()["error"] == "method_not_allowed"
    with pytest.raises(KeyError, match="FunctionUrlConfig"):
        stack.cloud.function_url("ApiFunction", "GET", "/")
