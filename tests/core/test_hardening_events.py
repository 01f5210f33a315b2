"""Bad input on the tracking endpoint: refused per event, never a 500, the good events kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from insights.domain.core import limits, profile
from insights.services.core import auth
from insights.storage.core import accounts as account_store
from tests.conftest import MINUTE, Stack


def close_sessions(stack: Stack) -> None:
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()


def post_raw(stack: Stack, account: Any, body: str, **query: str) -> Any:
    return stack.cloud.http(
        "POST",
        "/v1/events",
        headers={"X-Insights-Key": account.write_key, "content-type": "application/json"},
        body=body,
        query=query or None,
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1e300", "too large"),
        ("-1e300", "too large"),
        ("1e-200", "too small"),
        # Beyond a double's range: 1e400 reads as inf, 1e-400 as 0.0 (stored as 0).
        ("1e400", "finite"),
        ("1e-400", "too small"),
        ("-2.5E-999", "too small"),
        ("1" * 40, "more than 38 digits"),
        ("-" + "9" * 39, "more than 38 digits"),
        ("1" * 5000, "more than 38 digits"),
    ],
)
def test_a_number_dynamodb_cannot_keep_is_refused_and_the_other_users_are_kept(
    stack: Stack, value: str, why: str
) -> None:
    acme = stack.account()
    body = (
        '{"events": [{"uuid": "bad", "user_properties": {"n": ' + value + "}}, "
        '{"uuid": "bad", "user_properties": {"ok": 1}}, '
        '{"uuid": "good", "user_properties": {"n": 12345678901234567890123456789012345678, '
        '"f": 1.5e125, "tiny": 1e-130}}]}'
    )
    response = post_raw(stack, acme, body)
    assert response.status == 200, response.body
    answer = response.json()
    assert answer["accepted"] == 2
    [rejected] = answer["rejected"]
    assert rejected["index"] == 0 and rejected["field"] == "events[0].user_properties.n"
    assert why in rejected["error"] and "set_int_max_str_digits" not in response.body
    close_sessions(stack)
    good = stack.user(acme, "good").json()["custom"]
    assert good["n"]["value"] == 12345678901234567890123456789012345678
    assert good["f"]["value"] == 1.5e125 and good["tiny"]["value"] == 1e-130
    assert stack.user(acme, "bad").json()["custom"]["ok"]["value"] == 1
    assert "n" not in stack.user(acme, "bad").json()["custom"]
    erased = stack.cloud.http("DELETE", "/v1/users/good", headers=stack.auth(acme))
    assert erased.status == 204


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ('{"uuid": "u\\ud800"}', "events[0].uuid"),
        ('{"uuid": "x", "type": "\\udc00"}', "events[0].type"),
        ('{"uuid": "x", "properties": {"p": "a\\ud800b"}}', "events[0].properties.p"),
        ('{"uuid": "x", "properties": {"\\ud800": 1}}', "events[0].properties.<key>"),
        ('{"uuid": "x", "user_properties": {"p": "\\ud800"}}', "events[0].user_properties.p"),
    ],
)
def test_a_lone_surrogate_refuses_its_event_only(stack: Stack, event: str, field: str) -> None:
    acme = stack.account()
    # A valid pair (an emoji) beside it is fine.
    body = (
        '{"events": [' + event + ', {"uuid": "good", "user_properties": {"e": "\\ud83d\\ude00"}}]}'
    )
    response = post_raw(stack, acme, body)
    assert response.status == 200, response.body
    answer = response.json()
    assert answer["accepted"] == 1
    assert [r["field"] for r in answer["rejected"]] == [field]
    assert "surrogate" in answer["rejected"][0]["error"]
    close_sessions(stack)
    assert stack.user(acme, "good").json()["custom"]["e"]["value"] == "\U0001f600"


def test_a_lone_surrogate_in_the_user_agent_is_a_400(stack: Stack) -> None:
    acme = stack.account()
    body = '{"context": {"user_agent": "Mozilla\\ud800"}, "events": [{"uuid": "u"}]}'
    response = post_raw(stack, acme, body)
    assert response.status == 400 and response.json()["error"] == "invalid_context"


def test_deep_nesting_refuses_the_event_not_the_request(stack: Stack) -> None:
    acme = stack.account()
    deep = "[" * 5000 + "]" * 5000
    body = '{"events": [{"uuid": "a", "properties": {"p": ' + deep + '}}, {"uuid": "b"}]}'
    response = post_raw(stack, acme, body)
    # 5,000 levels is past what the JSON parser takes: the whole body is refused, clearly.
    assert response.status == 400 and "deeper" in response.json()["message"]
    shallow = "[" * 900 + "]" * 900
    body = '{"events": [{"uuid": "a", "properties": {"p": ' + shallow + '}}, {"uuid": "b"}]}'
    response = post_raw(stack, acme, body)
    assert response.status == 200, response.body
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["field"].startswith("events[0]")


@pytest.mark.parametrize(
    "body",
    [
        "caf\xe9".encode("latin-1"),
        json.dumps({"events": [{"uuid": "u"}]}).encode("utf-16"),
        __import__("gzip").compress(b'{"events": [{"uuid": "u"}]}', mtime=0),
    ],
    ids=["latin1", "utf16", "gzip"],
)
def test_a_body_that_is_not_utf8_is_a_400(stack: Stack, body: bytes) -> None:
    acme = stack.account()
    response = post_raw(stack, acme, body)  # type: ignore[arg-type]
    assert response.status == 400, response.body
    assert "UTF-8" in response.json()["message"]


def test_a_misspelt_top_level_field_is_refused(stack: Stack) -> None:
    acme = stack.account()
    response = stack.send(acme, [{"uuid": "u"}], contxt={"ip": "1.2.3.4"})
    assert response.status == 400
    assert response.json()["error"] == "unknown_field" and "contxt" in response.json()["message"]


@pytest.mark.parametrize(
    "context",
    [
        {"userAgent": "Mozilla/5.0"},
        {"ip": "81.2.69.160", "ip_address": "1.2.3.4"},
        {"locale": "en"},
    ],
    ids=["userAgent", "ip_address", "locale"],
)
def test_a_misspelt_or_unknown_context_field_is_refused_not_ignored(
    stack: Stack, context: dict[str, str]
) -> None:
    """Ignored, a misspelt userAgent left the caller's own User-Agent on the session."""
    acme = stack.account()
    response = stack.send(acme, [{"uuid": "u"}], context=context)
    assert response.status == 400, response.body
    assert response.json()["error"] == "invalid_context"
    unknown = next(name for name in context if name not in ("ip", "user_agent"))
    assert f"context.{unknown}" in response.json()["message"]
    assert "ip, user_agent" in response.json()["message"]


# ------------------------------------------------------------ per-user limits
def big_props(prefix: str, count: int, size: int = 1000) -> dict[str, str]:
    return {f"{prefix}{i:03d}": "x" * size for i in range(count)}


def test_one_oversized_user_never_affects_another(stack: Stack) -> None:
    acme = stack.account()
    events = [{"uuid": "huge", "user_properties": big_props(f"e{j}-", 30)} for j in range(15)]
    events.insert(3, {"uuid": "small", "user_properties": {"plan": "pro"}})
    events.append({"uuid": "after", "user_properties": {"plan": "free"}})
    response = stack.send(acme, events)
    assert response.status == 200, response.body
    answer = response.json()
    refused = answer["rejected"]
    assert refused and all("at most" in r["error"] for r in refused)
    assert {r["field"] for r in refused} == {f"events[{r['index']}]" for r in refused}
    assert answer["accepted"] == len(events) - len(refused)
    # Sent again (a retry): the same verdicts, nothing breaks.
    again = stack.send(acme, events).json()
    assert [r["index"] for r in again["rejected"]] == [r["index"] for r in refused]
    close_sessions(stack)
    assert stack.user(acme, "small").json()["custom"]["plan"]["value"] == "pro"
    assert stack.user(acme, "after").json()["custom"]["plan"]["value"] == "free"
    huge = stack.user(acme, "huge").json()["custom"]
    kept = sum(
        len(e["user_properties"]) for i, e in enumerate(events) if e["uuid"] == "huge"
    ) - sum(len(events[r["index"]]["user_properties"]) for r in refused)
    assert len(huge) == kept > 0


def test_a_profile_grown_across_sessions_still_closes_within_the_caps(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", 150)
    dropped: list[int] = []
    monkeypatch.setattr(profile, "report_dropped", dropped.append)
    acme = stack.account()
    for session in range(2):
        events = [{"uuid": "grower", "user_properties": big_props(f"s{session}e-", 50, 10)}]
        events += [{"uuid": "grower", "user_properties": big_props(f"s{session}f-", 50, 10)}]
        events += [{"uuid": "other", "user_properties": {"n": session}}]
        assert stack.send(acme, events).json()["accepted"] == 3
        close_sessions(stack)
    grower = stack.user(acme, "grower").json()
    assert grower["standard"]["total_sessions"] == 2  # the second close did not fail
    assert len(grower["custom"]) == 150 and dropped == [50]
    assert stack.user(acme, "other").json()["standard"]["total_sessions"] == 2


def test_limits_fit_keeps_existing_names_and_drops_new_ones_in_a_stable_order() -> None:
    from insights.domain.core.profile import CustomValue

    before = {f"a{i}": CustomValue("v", 1, "event") for i in range(3)}
    after = {**before, "a0": CustomValue("w", 2, "event")}
    after.update(
        {f"n{i:03d}": CustomValue("v", 2, "event") for i in range(limits.MAX_CUSTOM_ATTRIBUTES)}
    )
    fitted, dropped = limits.fit_custom(before, after)
    assert len(fitted) == limits.MAX_CUSTOM_ATTRIBUTES
    assert fitted["a0"].value == "w" and dropped == ["n499", "n498", "n497"]


# ------------------------------------------------------------------ keys
def test_a_secret_key_is_refused_in_the_url_and_accepted_in_the_header(stack: Stack) -> None:
    acme = stack.account()
    body = json.dumps({"events": [{"uuid": "u"}]})
    in_url = stack.cloud.http("POST", "/v1/events", body=body, query={"key": acme.secret_key})
    assert in_url.status == 403 and in_url.json()["error"] == "secret_key_in_url"
    assert acme.secret_key not in in_url.body
    write_in_url = stack.cloud.http("POST", "/v1/events", body=body, query={"key": acme.write_key})
    assert write_in_url.status == 200
    in_header = stack.cloud.http(
        "POST", "/v1/events", body=body, headers={"X-Insights-Key": acme.secret_key}
    )
    assert in_header.status == 200 and in_header.json()["accepted"] == 1
    on_function_url = stack.cloud.function_url(
        "TrackFunction", "POST", "/", body=body, query={"key": acme.secret_key}
    )
    assert on_function_url.status == 403


def test_garbage_keys_cost_at_most_one_read(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []
    real = account_store.find_key
    monkeypatch.setattr(account_store, "find_key", lambda key: lookups.append(key) or real(key))
    auth._unknown.clear()
    body = json.dumps({"events": [{"uuid": "u"}]})
    for key in ["nonsense", "wk_short", "x" * 10_000]:
        response = stack.cloud.http(
            "POST", "/v1/events", body=body, headers={"X-Insights-Key": key}
        )
        assert response.status == 401
    assert lookups == []  # not the shape of a key: no read at all
    shaped = "wk_" + "A" * 32
    for _ in range(5):
        response = stack.cloud.http(
            "POST", "/v1/events", body=body, headers={"X-Insights-Key": shaped}
        )
        assert response.status == 401 and response.json()["error"] == "unknown_key"
    assert lookups == [shaped]  # then cached as unknown


def test_the_user_agent_is_truncated_before_parsing_and_caching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from insights.domain.core.events import Context
    from insights.services.core import enrich

    seen: list[str | None] = []
    monkeypatch.setattr(enrich, "parse_browser", lambda ua: seen.append(ua) or enrich.Browser())
    chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
    enrich.enrich(Context(None, chrome + "x" * 500_000))
    enrich.enrich(Context(None, chrome))
    assert [len(ua or "") for ua in seen] == [limits.MAX_USER_AGENT_CHARS, len(chrome)]
    assert enrich.parse_browser.__name__  # the real one, for the next assertion
    monkeypatch.undo()
    assert enrich.parse_browser((chrome + "x" * 500_000)[:512]).name == "Chrome"


def test_a_user_dynamodb_refuses_fails_alone_the_others_are_stored(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The backstop behind the limits: with them lifted, a session item over
    # DynamoDB's 400 KB is refused for that user only.
    monkeypatch.setattr(limits, "MAX_SESSION_PROPERTIES", 10_000)
    monkeypatch.setattr(limits, "MAX_SESSION_PROPERTY_BYTES", 10**9)
    acme = stack.account()
    events = [{"uuid": "huge", "user_properties": big_props(f"e{j}-", 30)} for j in range(15)]
    events += [{"uuid": "small", "user_properties": {"plan": "pro"}}]
    response = stack.send(acme, events)
    assert response.status == 200, response.body
    answer = response.json()
    assert answer["accepted"] == 1
    assert {r["index"] for r in answer["rejected"]} == set(range(15))
    assert all("could not be stored" in r["error"] for r in answer["rejected"])
    close_sessions(stack)
    assert stack.user(acme, "small").json()["custom"]["plan"]["value"] == "pro"


def test_the_local_server_logs_no_query_string(capsys: pytest.CaptureFixture[str]) -> None:
    from insights.local.server import LocalStack, ServeOptions

    handler_class = LocalStack(ServeOptions(quiet=False))._handler()
    handler = handler_class.__new__(handler_class)
    handler.command, handler.path = "POST", "/v1/events?key=sk_secret"
    handler.requestline = "POST /v1/events?key=sk_secret HTTP/1.1"
    handler.log_request(200)
    handler.log_error("code %d, message %s", 400, "Bad request syntax ('GET /?key=sk_x')")
    logged = capsys.readouterr().err
    assert "POST /v1/events -> 200" in logged
    assert "sk_" not in logged and "key=" not in logged
