"""POST /v1/events: the tracking endpoint."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.domain.events import Context
from insights.http import ok, resolver
from insights.services.auth import authenticate
from insights.services.ingest import ingest

logger = Logger()
metrics = Metrics()
app = resolver()

ANY_KEY = frozenset({"write", "secret"})


@app.post("/v1/events")
def track() -> Response:
    received_ms = clock.now_ms()
    event = app.current_event
    key = event.headers.get("x-insights-key") or (event.query_string_parameters or {}).get("key")
    account = authenticate(
        key, allowed=ANY_KEY, where="in the X-Insights-Key header or the 'key' query parameter"
    )
    logger.append_keys(account_id=account.account_id)
    http = event.request_context.http
    default_context = Context(ip=http.source_ip, user_agent=http.user_agent)
    result = ingest(
        account, event.decoded_body, received_ms=received_ms, default_context=default_context
    )
    return ok(result.as_dict())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
