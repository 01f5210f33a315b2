"""OIDC sign-in claims: ``POST /v1/idp/oidc/token`` (write or secret key) and the
account's issuer registration ``GET/PUT /v1/idp/oidc/config`` (secret key).

A function of its own: joserfc and cryptography ship with it
(requirements.txt beside this file), not in the core layer every other
function loads.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.domain.core.attributes import refused_attributes
from insights.domain.idp.oidc import OidcConfigError
from insights.http import Response, bearer_account, error, json_body, ok, resolver
from insights.metrics import published
from insights.services.core.auth import authenticate
from insights.services.idp import oidc

logger = Logger()
metrics = Metrics()
app = resolver()
ANY_KEY = frozenset({"write", "secret"})


@app.exception_handler(OidcConfigError)
def _config_error(exc: OidcConfigError) -> Response:
    return error(400, "invalid_oidc_config", exc.message, field=exc.field)


@app.exception_handler(oidc.TokenRejected)
def _rejected(exc: oidc.TokenRejected) -> Response:
    metrics.add_metric(name="IdTokensRejected", unit=MetricUnit.Count, value=1)
    code = "id_token_rejected" if exc.status == 401 else "id_token_not_used"
    return error(exc.status, code, exc.message)


@app.post("/v1/idp/oidc/token")
def sign_in() -> Response:
    key = app.current_event.headers.get("x-insights-key")
    account = authenticate(key, allowed=ANY_KEY, where="in the X-Insights-Key header")
    body = json_body(app)
    if not isinstance(body, dict) or "id_token" not in body:
        return error(400, "invalid_request", 'send {"id_token": "<the ID token>"}')
    identity, written, refused = oidc.sign_in(account, body["id_token"])
    metrics.add_metric(name="IdTokensVerified", unit=MetricUnit.Count, value=1)
    return ok(
        {
            "identity": identity.as_dict(),
            "attributes": written,
            "refused": refused_attributes(refused),
        }
    )


@app.get("/v1/idp/oidc/config")
def get_config() -> Response:
    account = bearer_account(app)
    config = oidc.get_config(account.account_id)
    if config is None:
        return error(404, "oidc_not_configured", "this account has registered no OIDC issuer")
    return ok(config.as_dict())


@app.get("/v1/idp/oidc/status")
def get_status() -> Response:
    # 200 either way: no issuer registered is a normal state, not an error to log
    config = oidc.get_config(bearer_account(app).account_id)
    if config is None:
        return ok({"configured": False})
    return ok({"configured": True, "config": config.as_dict()})


@app.put("/v1/idp/oidc/config")
def put_config() -> Response:
    account = bearer_account(app)
    return ok(oidc.put_config(account.account_id, json_body(app)).as_dict())


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
