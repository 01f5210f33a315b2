"""The SDK's routes on the tracking function: the script itself, and a verified
user's targeting segments.

Served by the stack so the SDK's version always matches the API it talks to.
Both answer HTTP API v2 events from the function URL or API Gateway.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("insights.js")
JS_TYPE = "text/javascript; charset=utf-8"  # RFC 9239
# Short enough that a new deployment reaches browsers within minutes; the ETag
# turns the revalidation into a 304 without a body.
SCRIPT_CACHE = "public, max-age=300, stale-while-revalidate=86400"
SEGMENTS_CACHE = "private, max-age=10"


@cache
def script() -> tuple[str, str, str]:
    """(source, etag, version) read once per container."""
    source = SCRIPT.read_text(encoding="utf-8")
    etag = '"' + hashlib.sha256(source.encode()).hexdigest()[:20] + '"'
    marker = 'VERSION = "'
    start = source.index(marker) + len(marker)
    return source, etag, source[start : source.index('"', start)]


def _result(status: int, headers: dict[str, str], body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}


def _json(status: int, body: dict[str, Any], cache_control: str = "no-store") -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Cache-Control": cache_control}
    return _result(status, headers, json.dumps(body))


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match (RFC 9110, 13.1.2): `*`, or a list of entity tags compared
    weakly, so `W/"x"` matches `"x"` (a CDN that compresses the script marks its
    tag weak, and a browser sends back what it was given)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def serve_script(event: dict[str, Any]) -> dict[str, Any]:
    """GET or HEAD /v1/sdk/insights.js (HEAD: the same headers, no body)."""
    source, etag, version = script()
    headers = {
        "Content-Type": JS_TYPE,
        "Cache-Control": SCRIPT_CACHE,
        "ETag": etag,
        "X-Insights-Sdk-Version": version,
    }
    sent = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if etag_matches(sent.get("if-none-match"), etag):
        return _result(304, headers, "")
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method")
    return _result(200, headers, "" if method == "HEAD" else source)


def serve_segments(event: dict[str, Any]) -> dict[str, Any]:
    """GET /v1/sdk/segments?uuid=&user_hash=: the verified user's targeting segments."""
    from insights import clock
    from insights.domain.core.accounts import KEY_PREFIX
    from insights.domain.core.events import uuid_problem
    from insights.domain.core.identity import UNVERIFIED
    from insights.services.core import identity
    from insights.services.core.auth import AuthError, authenticate
    from insights.services.segments import queries as segments

    query = event.get("queryStringParameters") or {}
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    key = headers.get("x-insights-key")
    allowed = frozenset({"write", "secret"})
    if not key:
        # URLs end up in logs, histories and referrers: only the public
        # write key may travel in one (as on the events endpoint).
        key = query.get("key")
        allowed = frozenset({"write"})
    try:
        account = authenticate(
            key,
            allowed=allowed,
            where="in the X-Insights-Key header or the 'key' query parameter",
        )
    except AuthError as exc:
        return _json(exc.status, {"error": exc.code, "message": exc.message})
    uuid = query.get("uuid") or ""
    if not uuid.strip():
        message = "the 'uuid' query parameter is required"
        return _json(400, {"error": "invalid_uuid", "message": message})
    problem = uuid_problem(uuid)  # e.g. too long to be a key: checked before any read
    if problem is not None:
        return _json(400, {"error": "invalid_uuid", "message": problem})
    now_ms = clock.now_ms()
    trusted = bool(key) and key.startswith(KEY_PREFIX["secret"])
    if not trusted and not identity.is_verified(
        account.account_id, uuid, query.get("user_hash"), now_ms
    ):
        return _json(
            403,
            {
                "error": UNVERIFIED,
                "message": "segments are shown only to a verified user: pass user_hash = "
                "HMAC-SHA256(identity secret, uuid) from your backend",
            },
        )
    found = segments.segments_of_user(account.account_id, uuid, now_ms, targeting_only=True)
    return _json(200, {"uuid": uuid, "segments": found}, SEGMENTS_CACHE)


# method, path -> route (the tracking function's routes besides POST events)
ROUTES = {
    ("GET", "/v1/sdk/insights.js"): serve_script,
    ("HEAD", "/v1/sdk/insights.js"): serve_script,
    ("GET", "/v1/sdk/segments"): serve_segments,
}
