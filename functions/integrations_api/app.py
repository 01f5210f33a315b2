"""Integrations API (secret key): the Salesforce connection, its test and its syncs.

Only `POST .../test` talks to Salesforce, and it loads simple-salesforce
when first called; reading or saving a connection does not.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.domain.salesforce.connection import ConfigError
from insights.http import Response, bearer_account, error, json_body, ok, resolver
from insights.metrics import published
from insights.services.salesforce import connection as salesforce
from insights.services.salesforce.connection import Refused

logger = Logger()
metrics = Metrics()
app = resolver()
PATH = "/v1/integrations/salesforce"


@app.exception_handler(ConfigError)
def _config_error(exc: ConfigError) -> Response:
    return error(400, "invalid_integration", str(exc), field=exc.field)


@app.exception_handler(Refused)
def _refused(exc: Refused) -> Response:
    return error(exc.status, exc.code, exc.message, **exc.details)


def _optional_body() -> Any:
    return json_body(app) if (app.current_event.decoded_body or "").strip() else None


@app.put(PATH)
def connect() -> Response:
    view, created = salesforce.connect(bearer_account(app), json_body(app))
    return ok(view, status=201 if created else 200)


@app.get(PATH)
def read() -> Response:
    return ok(salesforce.read(bearer_account(app)))


@app.get(PATH + "/status")
def status() -> Response:
    # 200 either way: "not connected" is a normal state, not an error to log
    return ok(salesforce.status(bearer_account(app)))


@app.delete(PATH)
def disconnect() -> Response:
    salesforce.disconnect(bearer_account(app))
    return Response(204)


@app.post(PATH + "/test")
def test() -> Response:
    account = bearer_account(app)
    answer = salesforce.test(account, _optional_body())
    if answer["ok"]:
        return ok(answer)
    first = answer["problems"][0]
    return error(422, first["code"], first["message"], **answer)


@app.post(PATH + "/sync")
def sync() -> Response:
    account = bearer_account(app)
    body = _optional_body() or {}
    if (
        not isinstance(body, dict)
        or set(body) - {"full"}
        or not isinstance(body.get("full", False), bool)
    ):
        return error(400, "invalid_sync", 'send nothing, or {"full": true} to read everything')
    return ok(salesforce.request_sync(account, full=bool(body.get("full"))), status=202)


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
