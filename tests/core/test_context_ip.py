"""context.ip on every door (/v1/events, the function URL the SDK posts to, Segment's API):
parsed and normalized before any lookup, so the geo cache is keyed by addresses (issue 24.6).

The issue's request put a 500 KB IPv6 scope id in context.ip; each one was a
new key of the geo-lookup cache (8,192 of them: far past TrackFunction's
memory). Now a scope id is dropped, and what is not an address is refused.
"""

from __future__ import annotations

import base64
from typing import Any

from insights.services.core import enrich
from tests.conftest import CHROME, LONDON_IP, Stack

HUGE_SCOPE = "fe80::1%" + "s" * 500_000
LONG_SCOPE = "fe80::1%" + "s" * 20_000  # within a Segment message's 32 KB


def geo_keys() -> int:
    return enrich.geo()._lookup.cache_info().currsize  # entries of the geo-lookup cache


def events(stack: Stack, account: Any, ip: str, uuid: str = "x", *, url: bool = False) -> Any:
    body = {"context": {"ip": ip, "user_agent": CHROME}, "events": [{"uuid": uuid}]}
    headers = {"X-Insights-Key": account.write_key}
    if url:  # the browser SDK's door: TrackFunction's function URL
        return stack.cloud.function_url("TrackFunction", "POST", "/", headers=headers, body=body)
    return stack.cloud.http("POST", "/v1/events", headers=headers, body=body)


def segment(stack: Stack, account: Any, batch: list[dict[str, Any]]) -> Any:
    auth = "Basic " + base64.b64encode(f"{account.write_key}:".encode()).decode()
    return stack.cloud.function_url(
        "TrackFunction", "POST", "/v1/batch", headers={"Authorization": auth}, body={"batch": batch}
    )


def test_the_issues_request_is_refused_and_keys_nothing(stack: Stack) -> None:
    account = stack.account()
    before = geo_keys()
    for url in (False, True):
        response = events(stack, account, HUGE_SCOPE, url=url)
        assert response.status == 400, response.body
        assert response.json()["error"] == "invalid_context"
        assert response.json()["message"] == (
            "context.ip is longer than 64 characters: not an IPv4 or IPv6 address"
        )
    for bad in ("1.2.3.4%eth0", "not-an-ip", "::1::"):
        response = events(stack, account, bad)
        assert response.status == 400 and "context.ip" in response.json()["message"], bad
    assert geo_keys() == before


def test_scope_ids_are_dropped_so_one_address_is_one_key(stack: Stack) -> None:
    account = stack.account()
    assert events(stack, account, LONDON_IP).status == 200
    before = geo_keys()
    for n in range(60):
        response = events(stack, account, f"fe80::1%eth{n}", uuid=f"u-{n}", url=n % 2 == 0)
        assert response.status == 200, response.body
        assert response.json()["accepted"] == 1
    for text in ("2001:DB8::0001", "2001:db8:0:0:0:0:0:1", "2001:db8::1%en0"):
        assert events(stack, account, text).status == 200
    assert geo_keys() - before == 2  # fe80::1 and 2001:db8::1


def test_the_segment_door_refuses_the_message_and_keeps_the_others(stack: Stack) -> None:
    account = stack.account()
    before = geo_keys()
    message = {"type": "track", "event": "Viewed", "userId": "u-1"}
    response = segment(
        stack,
        account,
        [
            {**message, "messageId": "m-1", "context": {"ip": LONG_SCOPE}},
            {**message, "messageId": "m-2", "context": {"ip": "fe80::1%wlan0"}},
            {**message, "messageId": "m-3", "context": {"ip": "fe80::0001%en1"}},
        ],
    )
    assert response.status == 200, response.body
    body = response.json()
    assert body["accepted"] == 2
    [refused] = body["rejected"]
    assert (refused["index"], refused["field"]) == (0, "batch[0].context.ip")
    assert "longer than 64 characters" in refused["error"]
    assert geo_keys() - before <= 1


def test_every_in_memory_cache_is_bounded_by_normalized_keys(stack: Stack) -> None:
    """The audit of issue 24.6, as checks: what each warm-container cache is keyed by."""
    from insights.domain.core.limits import MAX_USER_AGENT_CHARS
    from insights.services.core import auth

    account = stack.account()
    # The geo cache normalizes long or scoped texts itself, whoever calls it.
    before = geo_keys()
    for n in range(20):
        enrich.enrich(enrich.Context(ip=f"fe80::1%{'s' * 10_000}{n}", user_agent=None))
    assert geo_keys() - before <= 1
    # User-Agents are cut before the cache: a 100 KB one is one bounded key.
    enrich.parse_browser.cache_clear()
    for n in range(5):
        enrich.enrich(enrich.Context(ip=None, user_agent=CHROME + "x" * 100_000 + str(n)))
    assert enrich.parse_browser.cache_info().currsize == 1
    assert enrich.parse_browser.cache_info().maxsize == 4096
    assert MAX_USER_AGENT_CHARS == 512
    # Keys: only well-formed keys reach the caches, stored as their SHA-256 digests.
    for n in range(50):
        headers = {"X-Insights-Key": "wk_" + "x" * 10_000 + str(n)}
        response = stack.cloud.http("POST", "/v1/events", headers=headers, body={"events": []})
        assert response.status == 401
    assert all(len(digest) == 64 for digest in [*auth._cache, *auth._unknown])
    assert len(auth._unknown) == 0
    assert events(stack, account, LONDON_IP).status == 200
    assert len(auth._cache) <= auth._MAX_CACHED
