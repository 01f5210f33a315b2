"""The team (docs/console.md, "Team"): console sign-in through the account's OIDC
provider, who is signed in, sign-out, the provider and members, the audit log.

``GET /v1/team/signin`` and ``GET /v1/team/callback`` are browser redirects:
every outcome is a 302 to the IdP, to the console, or to the console's
sign-in error page with a fixed code. The rest answer JSON like the API.
joserfc ships with this function (requirements.txt), as with OidcFunction.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.domain.idp.oidc import LOOPBACK, OidcConfigError
from insights.domain.team import flow
from insights.domain.team.audit import AuditQueryError, parse_page
from insights.domain.team.provider import ProviderError
from insights.http import Response, caller, error, json_body, ok, path_text, resolver
from insights.metrics import published
from insights.services.core.auth import AuthError, authenticate
from insights.services.team import admin, audit, sessions, signin

logger = Logger()
metrics = Metrics()
app = resolver()
SECRET_ONLY = frozenset({"secret"})


@app.exception_handler(OidcConfigError)
def _config_error(exc: OidcConfigError) -> Response:
    return error(400, "invalid_team_provider", exc.message, field=exc.field)


def _redirect(target: signin.Redirect) -> Response:
    headers = {"Location": target.location, "Cache-Control": "no-store"}
    headers["Referrer-Policy"] = "no-referrer"
    return Response(302, None, None, headers, target.cookies)


def _origin() -> str:
    """The origin the browser used (API Gateway adds X-Forwarded-Proto; locally it is http)."""
    headers = app.current_event.headers
    host = headers.get("host") or ""
    local = urlsplit(f"//{host}").hostname in LOOPBACK
    proto = headers.get("x-forwarded-proto") or ("http" if local else "https")
    return f"{proto}://{host}"


@app.get("/v1/team/signin")
def start_sign_in() -> Response:
    account = app.current_event.get_query_string_value("account")
    return _redirect(signin.start(account, _origin()))


@app.get("/v1/team/callback")
def callback() -> Response:
    request = app.current_event
    cookies = flow.parse_cookies(
        [*(request.raw_event.get("cookies") or []), request.headers.get("cookie") or ""]
    )
    target = signin.finish(
        request.query_string_parameters or {},
        cookies,
        secure_request=_origin().startswith("https://"),
        ip=request.source_ip,
    )
    signed_in = target.location == flow.SIGNED_IN
    metrics.add_metric(
        name="ConsoleSignIns" if signed_in else "ConsoleSignInsRefused",
        unit=MetricUnit.Count,
        value=1,
    )
    return _redirect(target)


@app.get("/v1/team/me")
def me() -> Response:
    """Who this request signs in as; 200 either way (the console asks before anyone signs in)."""
    request = app.current_event
    header = request.headers.get("authorization") or ""
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        where = "as 'Authorization: Bearer <secret key>'"
        account = authenticate(key.strip(), allowed=SECRET_ONLY, where=where)
        return ok(sessions.by_secret_key(account).public())
    cookie = sessions.cookie_value(request.raw_event, request.headers)
    if cookie is None:
        return ok({"signed_in": False, "reason": None})
    try:
        return ok(sessions.by_cookie(*cookie, request.headers).public())
    except AuthError as refused:
        if refused.status == 403:
            raise
        answer = ok({"signed_in": False, "reason": refused.code})
        answer.cookies = flow.clear_session_cookies()
        return answer


@app.post("/v1/team/signout")
def sign_out() -> Response:
    who = caller(app)
    sessions.end(who)
    answer = ok({"signed_out": who.via == "session"})
    answer.cookies = flow.clear_session_cookies()
    return answer


@app.get("/v1/team/provider")
def get_provider() -> Response:
    loaded = admin.load(caller(app).account.account_id)
    if loaded is None:
        return ok({"configured": False})
    return ok({"configured": True, "provider": loaded[0].as_dict()})


@app.put("/v1/team/provider")
def put_provider() -> Response:
    who = caller(app)
    provider = admin.put_provider(who.account.account_id, json_body(app))
    return ok({"configured": True, "provider": provider.as_dict()})


@app.delete("/v1/team/provider")
def delete_provider() -> Response:
    if not admin.delete_provider(caller(app).account.account_id):
        return error(404, "team_provider_not_configured", "no sign-in provider is configured")
    return Response(204)


@app.get("/v1/team/members")
def list_members() -> Response:
    return ok({"members": admin.members(caller(app).account.account_id)})


def _path_email(raw: str) -> str:
    email = path_text(raw)
    if email is None:
        raise ProviderError("email", "the email in the path is not percent-encoded UTF-8")
    return email


@app.put("/v1/team/members/<email>")
def assign(email: str) -> Response:
    who = caller(app)
    return ok(admin.assign(who.account.account_id, _path_email(email), json_body(app), who.actor))


@app.delete("/v1/team/members/<email>")
def unassign(email: str) -> Response:
    if not admin.unassign(caller(app).account.account_id, _path_email(email)):
        return error(404, "member_not_found", "no role is assigned to this email")
    return Response(204)


@app.get("/v1/audit")
def read_audit() -> Response:
    account_id = caller(app).account.account_id
    request = app.current_event
    try:
        limit, before = parse_page(
            request.get_query_string_value("limit"), request.get_query_string_value("cursor")
        )
    except AuditQueryError as exc:
        return error(400, "invalid_query", exc.message, field=exc.field)
    return ok(audit.page(account_id, limit, before))


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
