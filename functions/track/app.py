"""The tracking endpoint: the function URL, and POST /v1/events on the API.

Also Segment's tracking API (POST /v1/batch, /v1/track, ...: services.segment_api).

The hot path, and the only route of its function (the function URL and API
Gateway both answer CORS preflights), so it reads the v2 event directly instead
of going through Powertools' event handler: that resolver's import was about
a tenth of this function's cold start and its routing a large share of the
CPU of a one-event request (benchmarks, part 2). Logger and metrics are
Powertools' as everywhere else.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.domain.core.accounts import KEY_PREFIX
from insights.domain.core.events import Context, RequestError
from insights.metrics import published
from insights.sdk.routes import ROUTES as SDK_ROUTES
from insights.services.core.auth import AuthError, authenticate
from insights.services.core.ingest import ingest

# domain.segment_api.ROUTES; tests/segment_api/test_segment_api.py keeps them in step
SEGMENT_PATHS = (
    "/v1/batch", "/v1/b", "/v1/identify", "/v1/i", "/v1/track", "/v1/t", "/v1/page", "/v1/p",
    "/v1/screen", "/v1/s", "/v1/alias", "/v1/a", "/v1/group", "/v1/g",
)  # fmt: skip

logger = Logger()
metrics = Metrics()

ANY_KEY = frozenset({"write", "secret"})
WRITE_ONLY = frozenset({"write"})
KEY_WHERE = "in the X-Insights-Key header or the 'key' query parameter"


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def track(event: dict[str, Any]) -> dict[str, Any]:
    received_ms = clock.now_ms()
    http = (event.get("requestContext") or {}).get("http") or {}
    if http.get("method", "POST") != "POST":  # the function URL passes every method
        return _answer(405, {"error": "method_not_allowed", "message": "send events with POST"})
    headers = event.get("headers") or {}
    key = headers.get("x-insights-key")
    # URLs end up in logs, histories and referrers: only the public write key
    # may travel in one (for sendBeacon); a secret key belongs in the header.
    allowed = ANY_KEY
    if not key:
        key = (event.get("queryStringParameters") or {}).get("key")
        allowed = WRITE_ONLY
    try:
        account = authenticate(key, allowed=allowed, where=KEY_WHERE)
        logger.append_keys(account_id=account.account_id)
        default_context = Context(ip=http.get("sourceIp"), user_agent=http.get("userAgent"))
        body = event.get("body")
        if body is not None and event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(body)
            except ValueError:  # binascii.Error
                raise RequestError(400, "invalid_body", "the body could not be read") from None
        result = ingest(
            account,
            body,
            received_ms=received_ms,
            default_context=default_context,
            # Secret-key senders are servers: exempt from identity verification.
            trusted=key is not None and key.startswith(KEY_PREFIX["secret"]),
        )
    except (RequestError, AuthError) as exc:
        return _answer(exc.status, {"error": exc.code, "message": exc.message})
    return _answer(200, result.as_dict())


def segment(event: dict[str, Any]) -> dict[str, Any]:
    # Imported here so that POST /v1/events cold starts load none of it.
    from insights.services.segment_api import handle

    status, body = handle(event)
    return _answer(status, body)


# Method + path -> route: Segment's API, the SDK's script and its segments
# lookup (insights/sdk). Any other request is the events endpoint, as before
# (the function URL sends every path here).
ROUTES = {("POST", path): segment for path in SEGMENT_PATHS} | SDK_ROUTES


def route(event: dict[str, Any]) -> dict[str, Any]:
    http = (event.get("requestContext") or {}).get("http") or {}
    key = (http.get("method", "POST"), event.get("rawPath") or http.get("path") or "/")
    return ROUTES.get(key, track)(event)


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return route(event)
