"""HTTP plumbing shared by the API handlers: errors, keys and JSON responses."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver

from insights.domain.accounts import KeyKind
from insights.domain.events import RequestError
from insights.services.auth import AuthError, authenticate
from insights.storage.accounts import Account

SECRET_ONLY: frozenset[KeyKind] = frozenset({"secret"})


def resolver() -> APIGatewayHttpResolver:
    """An HTTP API resolver that answers auth and request errors as JSON."""
    app = APIGatewayHttpResolver()

    @app.exception_handler(AuthError)
    def _auth_error(exc: AuthError) -> Response:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestError)
    def _request_error(exc: RequestError) -> Response:
        return error(exc.status, exc.code, exc.message)

    return app


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"error": code, "message": message, **extra}
    return Response(status, content_types.APPLICATION_JSON, json.dumps(body))


def ok(body: Any, status: int = 200) -> Response:
    return Response(status, content_types.APPLICATION_JSON, json.dumps(body))


def bearer_account(app: APIGatewayHttpResolver) -> Account:
    header = app.current_event.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else ""
    return authenticate(key, allowed=SECRET_ONLY, where="as 'Authorization: Bearer <secret key>'")


def json_body(app: APIGatewayHttpResolver) -> Any:
    from insights.domain.events import decode_json

    return decode_json(app.current_event.decoded_body or "")
