"""The console's sign-in through the account's OIDC provider (domain/team/flow.py says how).

Discovery and ID-token verification are the OIDC family's own
(``services/idp/oidc.py``: cached discovery, JWKS with rotation, asymmetric
algorithms only, iss/aud/exp/iat); this module adds what a relying party
does around them: the flow's state, nonce and PKCE verifier, the code
exchange (``post_token``, the one call to the token endpoint) and admission.
Nothing here logs a code, a token, a state or a verifier.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools import Logger

from insights import clock, outbound
from insights.domain.idp.oidc import OidcConfigError, check_url
from insights.domain.team import flow
from insights.domain.team.provider import Provider, Refused, admit, email_of
from insights.services.idp import oidc
from insights.services.team import admin, audit, sessions
from insights.storage import team as store
from insights.storage.core import accounts as account_store

logger = Logger(child=True)

TOKEN_TIMEOUT_SECONDS = 5.0
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Redirect:
    """Where the browser goes next, and the cookies it gets on the way."""

    location: str
    cookies: list[str]


class SignInFailed(Exception):
    def __init__(self, code: str, reason: str = "", email: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.reason = reason  # for the operator's log: never a token
        self.email = email


def start(account_id: str | None, request_origin: str) -> Redirect:
    """The redirect to the IdP's authorization endpoint, with the flow's cookie."""
    try:
        if not account_id or not _ACCOUNT_ID.match(account_id):
            raise SignInFailed("unknown_account")
        if account_store.get_account(account_id) is None:
            raise SignInFailed("unknown_account")
        loaded = admin.load(account_id)
        if loaded is None:
            raise SignInFailed("not_configured")
        provider = loaded[0]
        if provider.origin != request_origin:
            # The flow cookie would be set for one host and the IdP would send
            # the browser back to the other: say so now rather than at the callback.
            raise SignInFailed("wrong_origin", f"{request_origin} is not {provider.origin}")
        endpoints = _endpoints(provider)
        started = flow.Flow.new()
        store.put_flow(
            flow.digest(started.state),
            store.StoredFlow(
                account_id,
                started.nonce,
                started.verifier,
                provider.redirect_uri,
                clock.now_ms() + flow.FLOW_SECONDS * 1000,
            ),
        )
    except SignInFailed as failed:
        why = {"code": failed.code, "why": failed.reason}
        logger.info("console sign-in not started", extra=why)
        return Redirect(flow.signin_error(failed.code), [])
    location = flow.authorization_url(
        endpoints["authorization_endpoint"],
        provider.client_id,
        provider.redirect_uri,
        provider.scopes,
        started,
    )
    return Redirect(location, [flow.flow_cookie(started.state, provider.secure)])


def _endpoints(provider: Provider) -> dict[str, str]:
    try:
        document = oidc.discovery(provider.oidc())
    except oidc.TokenRejected as exc:
        raise SignInFailed("idp_error", exc.message) from None
    if not flow.supports_s256(document):
        raise SignInFailed("pkce_unsupported", "the IdP does not list S256")
    found = {}
    for name in ("authorization_endpoint", "token_endpoint"):
        try:
            found[name] = check_url(document.get(name), name)
        except OidcConfigError as exc:
            raise SignInFailed("idp_error", f"discovery {name}: {exc.message}") from None
    return found


def finish(
    query: dict[str, str], cookies: dict[str, str], *, secure_request: bool, ip: str | None
) -> Redirect:
    """The callback: the code exchanged, the ID token verified, the person admitted, a session."""
    clear = [flow.clear_flow_cookie(secure_request)]
    state = query.get("state")
    if query.get("error") and not state:
        # Some IdPs drop the state from an error; an error signs no one in, so say it.
        code = "denied" if query["error"] == "access_denied" else "idp_error"
        return Redirect(flow.signin_error(code), clear)
    if not flow.same(state, cookies.get(flow.FLOW_COOKIE)):
        # Not this browser's flow (or none): nothing is taken or spent.
        return Redirect(flow.signin_error("state_mismatch"), clear)
    stored = store.take_flow(flow.digest(str(state)))
    if stored is None or stored.ends_ms <= clock.now_ms():
        return Redirect(flow.signin_error("flow_expired"), clear)
    account_id = stored.account_id
    try:
        person, provider = _admit(stored, query)
    except SignInFailed as failed:
        logger.info("console sign-in refused", extra={"code": failed.code, "why": failed.reason})
        audit.record(
            account_id,
            actor=failed.email or "unknown",
            via="sign_in",
            role=None,
            action="sign_in",
            path=None,
            status=403,
            ip=ip,
            detail=failed.code,
        )
        return Redirect(flow.signin_error(failed.code), clear)
    token = flow.random_token()
    now = clock.now_ms()
    session = store.StoredSession(
        account_id,
        flow.digest(token),
        person.email,
        person.name,
        person.role,
        provider.origin,
        now,
        now + provider.session_minutes * 60_000,
    )
    sessions.start(session)
    audit.record(
        account_id,
        actor=person.email,
        via="sign_in",
        role=person.role,
        action="sign_in",
        path=None,
        status=200,
        ip=ip,
        detail=f"role from {person.role_from}",
    )
    cookie = flow.session_cookie(
        flow.session_value(account_id, token), provider.session_minutes * 60, provider.secure
    )
    return Redirect(flow.SIGNED_IN, [cookie, *clear])


def _admit(stored: store.StoredFlow, query: dict[str, str]) -> tuple[Any, Provider]:
    loaded = admin.load(stored.account_id)
    if loaded is None:
        raise SignInFailed("not_configured")
    provider, secret_name = loaded
    if provider.redirect_uri != stored.redirect_uri:
        raise SignInFailed("flow_expired", "the provider changed during the sign-in")
    if query.get("error"):
        code = "denied" if query["error"] == "access_denied" else "idp_error"
        raise SignInFailed(code, f"the IdP answered error={query['error'][:64]!r}")
    code = query.get("code")
    if not code or len(code) > 4096:
        raise SignInFailed("idp_error", "the callback has no code")
    endpoints = _endpoints(provider)
    form = flow.token_form(code, provider.redirect_uri, provider.client_id, stored.verifier)
    secret = admin.client_secret(secret_name)
    authorization = flow.basic_auth(provider.client_id, secret) if secret else None
    answer = post_token(endpoints["token_endpoint"], form, authorization)
    try:
        claims = oidc.verify_id_token(provider.oidc(), answer.get("id_token"))
    except oidc.TokenRejected as exc:
        raise SignInFailed("token_rejected", exc.message) from None
    if not flow.same(claims.get("nonce"), stored.nonce):
        raise SignInFailed("nonce_mismatch", "the ID token's nonce is not this flow's")
    try:
        email = email_of(claims, provider)
        member = store.get_member(stored.account_id, email)
        return admit(claims, provider, member.role if member else None), provider
    except Refused as refused:
        raise SignInFailed(refused.code, refused.message, refused.email) from None


def post_token(url: str, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
    """The token endpoint's answer to the code exchange: the one POST of the sign-in,
    through the service's one outbound fetcher (insights/outbound.py) like the
    discovery document and the JWKS. The failure names the OAuth error code
    for the operator's log, never the body; the browser gets `idp_error`.
    """
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    try:
        answer = outbound.fetch(
            url,
            method="POST",
            headers=headers,
            body=urlencode(form).encode(),
            timeout=TOKEN_TIMEOUT_SECONDS,
            max_bytes=MAX_TOKEN_RESPONSE_BYTES,
        )
    except outbound.OutboundFailed as exc:
        raise SignInFailed("idp_error", f"token endpoint: {exc.reason}") from None
    if answer.status != 200:
        error = _oauth_error(answer.body)
        raise SignInFailed("idp_error", f"token endpoint HTTP {answer.status} {error}")
    try:
        body = json.loads(answer.body)
    except ValueError:
        raise SignInFailed("idp_error", "the token endpoint did not answer JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
        raise SignInFailed("idp_error", "the token endpoint gave no id_token (is openid a scope?)")
    return body


def _oauth_error(body: bytes) -> str:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    return error[:64] if isinstance(error, str) else ""
