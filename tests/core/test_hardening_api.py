"""Bad input on the management routes: a clear 400 (or 404), never a 500."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from tests.conftest import MINUTE, Stack

BODY_ROUTES = [
    ("PATCH", "/v1/account"),
    ("POST", "/v1/segments"),
    ("PUT", "/v1/segments/seg_missing"),
    ("POST", "/v1/segments/preview"),
    ("POST", "/v1/imports"),
]


def call(stack: Stack, account: Any, method: str, path: str, body: Any = None) -> Any:
    headers = {**stack.auth(account), "content-type": "application/json"}
    return stack.cloud.http(method, path, headers=headers, body=body)


def no_internals(text: str) -> None:
    for leak in ("Traceback", "set_int_max_str_digits", "codec", "Expecting value: line"):
        assert leak not in text, text


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        '{"a": ' + "[" * 200 + "]" * 200 + "}",
        "caf\xe9".encode("latin-1"),
        '{"name": "x"}'.encode("utf-16"),
        gzip.compress(b'{"name": "x"}', mtime=0),
        '{"name": "a\\ud800"}',
        '{"n": ' + "1" * 5000 + "}",
    ],
    ids=["deep", "deep-inside", "latin1", "utf16", "gzip", "surrogate", "5000-digits"],
)
def test_every_body_route_answers_bad_bodies_with_a_400(
    stack: Stack, method: str, path: str, body: str | bytes
) -> None:
    acme = stack.account()
    response = call(stack, acme, method, path, body)
    assert response.status == 400, (response.status, response.body)
    answer = response.json()
    assert answer["error"] and answer["message"]
    no_internals(response.body)


def rules(op: str, value: Any, attribute: str = "last_seen") -> dict[str, Any]:
    return {"name": "s", "rules": {"attribute": attribute, "op": op, "value": value}}


@pytest.mark.parametrize(
    "body",
    [
        rules("within_last", "\u00b2d"),
        rules("within_last", "\u0661d"),
        rules("within_last", "9" * 5000 + "d"),
        rules("after", "\u00b2d"),
        rules("after", "9999-12-31T23:59:59-14:00"),
        rules("equals", "a\ud800", "custom.plan"),
        {"name": "a\ud800", "rules": {"attribute": "country", "op": "is_set"}},
    ],
    ids=[
        "superscript",
        "arabic-digit",
        "5000-digits",
        "after-superscript",
        "year-10000",
        "s1",
        "s2",
    ],
)
def test_bad_rule_values_are_400s(stack: Stack, body: dict[str, Any]) -> None:
    acme = stack.account()
    text = json.dumps(body)  # ensure_ascii: a lone surrogate travels as its \\u escape
    response = call(stack, acme, "POST", "/v1/segments", text)
    assert response.status == 400, response.body
    no_internals(response.body)
    assert call(stack, acme, "GET", "/v1/segments").json()["segments"] == []


def test_a_far_but_valid_date_saves_and_counts(stack: Stack) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "u"}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()
    for value in ("9999-12-30T00:00:00Z", "0001-01-02T00:00:00Z"):
        for op in ("after", "before"):
            created = call(stack, acme, "POST", "/v1/segments", rules(op, value))
            assert created.status == 201, created.body
            segment = created.json()["id"]
            count = call(stack, acme, "GET", f"/v1/segments/{segment}/count")
            assert count.status == 200, count.body
            # The user's last_seen lies after year 1 and before year 9999.
            assert count.json()["count"] == int((op == "after") == value.startswith("0001"))
            users = call(stack, acme, "GET", f"/v1/segments/{segment}/users")
            assert users.status == 200, users.body


@pytest.mark.parametrize("limit", ["%C2%B2", "1" * 5000, "-1", "0", "1.5", "%EF%BC%91", ""])
def test_odd_limits_are_400s(stack: Stack, limit: str) -> None:
    acme = stack.account()
    segment = call(
        stack,
        acme,
        "POST",
        "/v1/segments",
        rules("is_set", None) | {"rules": {"attribute": "country", "op": "is_set"}},
    ).json()["id"]
    for path in (f"/v1/imports?limit={limit}", f"/v1/segments/{segment}/users?limit={limit}"):
        response = call(stack, acme, "GET", path)
        if limit == "":
            assert response.status == 200, response.body  # the default
            continue
        assert response.status == 400, (path, response.body)
        assert response.json()["error"] == "invalid_limit"


def test_a_long_uuid_in_the_path_is_refused_before_anything_is_read_or_erased(
    stack: Stack,
) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "kept", "user_properties": {"plan": "pro"}}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()
    long = "u" * 3000
    for method, path in [
        ("DELETE", f"/v1/users/{long}"),
        ("GET", f"/v1/users/{long}"),
        ("GET", f"/v1/users/{long}/segments"),
        ("DELETE", "/v1/users/%20"),
    ]:
        response = call(stack, acme, method, path)
        assert response.status == 400, (method, response.body)
        assert response.json()["error"] == "invalid_uuid"
    assert stack.user(acme, "kept").json()["custom"]["plan"]["value"] == "pro"


def test_a_uuid_path_that_is_not_percent_encoded_utf8_is_refused_not_read_as_another_user(
    stack: Stack,
) -> None:
    """%FF (or an encoded surrogate) is no UTF-8: decoded leniently it became U+FFFD,
    so GET read, and DELETE erased, the user whose uuid is "\ufffd"."""
    acme = stack.account()
    stack.send(acme, [{"uuid": "\ufffd", "user_properties": {"plan": "pro"}}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()
    for raw in ("%FF", "%ED%A0%80", "a%C3"):
        for method, path in [
            ("GET", f"/v1/users/{raw}"),
            ("GET", f"/v1/users/{raw}/segments"),
            ("DELETE", f"/v1/users/{raw}"),
        ]:
            response = call(stack, acme, method, path)
            assert response.status == 400, (method, path, response.body)
            assert response.json()["error"] == "invalid_uuid"
            assert "UTF-8" in response.json()["message"]
    assert stack.user(acme, "\ufffd").json()["custom"]["plan"]["value"] == "pro"
    # The same user, rightly encoded, is read as before.
    assert call(stack, acme, "GET", "/v1/users/%EF%BF%BD").status == 200


def test_import_ids_that_cannot_exist_are_404s_without_a_read(stack: Stack) -> None:
    acme = stack.account()
    for import_id in ("x" * 3000, "imp_zz", "imp_%00"):
        for method, path in [
            ("GET", f"/v1/imports/{import_id}"),
            ("POST", f"/v1/imports/{import_id}/cancel"),
        ]:
            response = call(stack, acme, method, path)
            assert response.status == 404, response.body
    response = call(stack, acme, "GET", "/v1/imports?after=" + "x" * 3000)
    assert response.status == 400 and response.json()["error"] == "invalid_after"
