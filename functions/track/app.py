"""The tracking endpoint: the function URL, and POST /v1/events on the API.

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
from insights.domain.accounts import KEY_PREFIX
from insights.domain.events import Context, RequestError
from insights.sdk.routes import ROUTES as SDK_ROUTES
from insights.services.auth import AuthError, authenticate
from insights.services.ingest import ingest

logger = Logger()
metrics = Metrics()

ANY_KEY = frozenset({"write", "secret"})
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
    key = headers.get("x-insights-key") or (event.get("queryStringParameters") or {}).get("key")
    try:
        account = authenticate(key, allowed=ANY_KEY, where=KEY_WHERE)
        logger.append_keys(account_id=account.account_id)
        default_context = Context(ip=http.get("sourceIp"), user_agent=http.get("userAgent"))
        body = event.get("body")
        if body is not None and event.get("isBase64Encoded"):
            body = base64.b64decode(body)
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


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    http = (event.get("requestContext") or {}).get("http") or {}
    route = SDK_ROUTES.get((http.get("method"), event.get("rawPath") or http.get("path")))
    if route is not None:  # the SDK's script and its segments lookup (insights/sdk)
        return route(event)
    return track(event)
