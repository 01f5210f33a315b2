"""SAML sign-in attributes: ``POST /v1/idp/saml/response`` (secret key) and the account's
IdP registration ``GET/PUT /v1/idp/saml/config`` (secret key).

A function of its own: signxml, lxml and cryptography ship with it
(requirements.txt beside this file), not in the core layer every other
function loads.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.domain.core.attributes import refused_attributes
from insights.domain.core.events import MAX_BODY_BYTES, RequestError
from insights.domain.idp.saml.config import SamlConfigError
from insights.domain.idp.saml.response import ResponseRejected
from insights.http import SECRET_ONLY, Response, bearer_account, error, json_body, ok, resolver
from insights.metrics import published
from insights.services.core.auth import authenticate
from insights.services.idp import saml
from insights.services.team import sessions

logger = Logger()
metrics = Metrics()
app = resolver()
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 50
SEND = (
    'send {"saml_response": "<base64 SAMLResponse>"} as JSON, or the form field SAMLResponse '
    f"as {FORM}"
)


@app.exception_handler(SamlConfigError)
def _config_error(exc: SamlConfigError) -> Response:
    return error(400, "invalid_saml_config", exc.message, field=exc.field)


@app.exception_handler(ResponseRejected)
def _rejected(exc: ResponseRejected) -> Response:
    metrics.add_metric(name="SamlResponsesRejected", unit=MetricUnit.Count, value=1)
    code = exc.code or {401: "saml_response_rejected", 400: "invalid_saml_response"}.get(
        exc.status, "saml_response_not_used"
    )
    return error(exc.status, code, exc.message)


def _server_key() -> str:
    """The secret key from Authorization: Bearer, else from X-Insights-Key."""
    headers = app.current_event.headers
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-insights-key") or ""


def _saml_response() -> Any:
    raw = app.current_event.body_bytes or b""
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError(
            413, "body_too_large", f"body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}"
        )
    content_type = app.current_event.headers.get("content-type") or ""
    if content_type.split(";")[0].strip().lower() == FORM:
        text = app.current_event.decoded_body or ""
        try:
            fields = dict(parse_qsl(text, max_num_fields=MAX_FORM_FIELDS))
        except ValueError:
            raise RequestError(
                400, "invalid_request", f"the form has more than {MAX_FORM_FIELDS} fields"
            ) from None
        value = fields.get("SAMLResponse", fields.get("saml_response"))
        if value is None:
            raise RequestError(400, "invalid_request", SEND)
        # Base64 never holds a space: one here is a '+' the sender did not percent-encode.
        return value.replace(" ", "+")
    body = json_body(app)
    if not isinstance(body, dict) or "saml_response" not in body:
        raise RequestError(400, "invalid_request", SEND)
    return body["saml_response"]


@app.post("/v1/idp/saml/response")
def sign_in() -> Response:
    key = _server_key()
    if not key and sessions.cookie_value(app.current_event.raw_event, app.current_event.headers):
        bearer_account(app)  # a console session: refused by the role table (secret key only)
    account = authenticate(
        key,
        allowed=SECRET_ONLY,
        where="in the X-Insights-Key header or as 'Authorization: Bearer <secret key>'",
    )
    identity, written, refused = saml.sign_in(account, _saml_response())
    metrics.add_metric(name="SamlResponsesVerified", unit=MetricUnit.Count, value=1)
    return ok(
        {
            "identity": identity.as_dict(),
            "attributes": written,
            "refused": refused_attributes(refused),
        }
    )


@app.get("/v1/idp/saml/config")
def get_config() -> Response:
    account = bearer_account(app)
    config = saml.get_config(account.account_id)
    if config is None:
        return error(404, "saml_not_configured", "this account has registered no SAML IdP")
    return ok(config.describe())


@app.put("/v1/idp/saml/config")
def put_config() -> Response:
    account = bearer_account(app)
    return ok(saml.put_config(account.account_id, json_body(app)).describe())


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
