"""Who is calling: the secret key (a machine, acting as admin) or a console session.

A session is a random token in an HttpOnly cookie (``<account>.<token>``),
stored as its SHA-256 in TeamTable with the person, the role and its end.
A cookie-authenticated request must also carry ``X-Insights-Console: 1``
(a page on another origin cannot add a header without a CORS preflight,
which the API refuses) and, when the browser sends an ``Origin``, come from
the console's own origin; the cookie itself is ``SameSite=Strict``.

Sessions are cached per container for CACHE_SECONDS like keys, on the same
clock, and their account comes from the keys' account cache
(``services/core/auth.py``); a session's end is checked on every request. A
session ended elsewhere (sign-out, a role changed or taken away) can live on
for up to CACHE_SECONDS in a container that read it just before: the same
known limit as a rotated key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from insights import clock
from insights.domain.team import flow
from insights.domain.team.audit import SECRET_KEY_ACTOR
from insights.services.core import auth
from insights.services.core.auth import AuthError
from insights.storage import team as store
from insights.storage.core.accounts import Account

CACHE_SECONDS = 30.0
_MAX_CACHED = 1024
# token digest -> (expires, session); the account comes from the key cache's
_cache: dict[str, tuple[float, store.StoredSession]] = {}


@dataclass(frozen=True)
class Caller:
    account: Account
    actor: str  # the person's email, or "secret key"
    via: str  # "session" | "secret_key"
    role: str
    name: str | None = None
    ends_ms: int | None = None
    session: store.StoredSession | None = None

    def public(self) -> dict[str, Any]:
        from insights.domain.core.timefmt import format_time

        return {
            "signed_in": True,
            "via": self.via,
            "email": None if self.via == "secret_key" else self.actor,
            "name": self.name,
            "role": self.role,
            "account_id": self.account.account_id,
            "account_name": self.account.name,
            "expires_at": format_time(self.ends_ms),
        }


def by_secret_key(account: Account) -> Caller:
    return Caller(account, SECRET_KEY_ACTOR, "secret_key", "admin")


def cookie_value(event: dict[str, Any], headers: dict[str, str]) -> tuple[str, str] | None:
    """(cookie name, value) of the session cookie, if the request carries one."""
    raw = list(event.get("cookies") or [])  # HTTP API v2 moves Cookie headers here
    if headers.get("cookie"):
        raw.append(headers["cookie"])
    cookies = flow.parse_cookies(raw)
    for name in (flow.SECURE_SESSION_COOKIE, flow.SESSION_COOKIE):
        if cookies.get(name):
            return name, cookies[name]
    return None


def by_cookie(name: str, value: str, headers: dict[str, str], *, csrf: bool = True) -> Caller:
    """The session a cookie names; AuthError (401 ended/expired, 403 cross-site) otherwise."""
    parts = flow.split_session_value(value)
    if parts is None:
        raise AuthError("invalid_session", "the console session cookie is not valid: sign in")
    account_id, token = parts
    digest = flow.digest(token)
    now = clock.now_ms() / 1000  # the clock of record, as the key cache (services/core/auth.py)
    cached = _cache.get(digest)
    if cached is not None and cached[0] > now and cached[1].account_id == account_id:
        session = cached[1]
    else:
        found = store.get_session(account_id, digest)
        if found is None:
            raise AuthError("session_ended", "this console session has ended: sign in again")
        session = found
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[digest] = (now + CACHE_SECONDS, session)
    try:
        account = auth.account(account_id)  # cached with the keys' accounts
    except AuthError:
        raise AuthError("session_ended", "this console session's account is gone") from None
    if session.ends_ms <= clock.now_ms():
        _cache.pop(digest, None)
        raise AuthError("session_expired", "your console session has expired: sign in again")
    if name == flow.SESSION_COOKIE and session.origin.startswith("https://"):
        # An https console only sets the __Host- cookie, which no sibling host can set.
        raise AuthError("invalid_session", "the console session cookie is not valid: sign in")
    if csrf:
        check_same_origin(session, headers)
    return Caller(
        account,
        session.email,
        "session",
        session.role,
        name=session.name,
        ends_ms=session.ends_ms,
        session=session,
    )


def check_same_origin(session: store.StoredSession, headers: dict[str, str]) -> None:
    if headers.get(flow.CONSOLE_HEADER) != "1":
        raise AuthError(
            "console_header_missing",
            "a request signed in with the console's cookie must send X-Insights-Console: 1",
            status=403,
        )
    origin = headers.get("origin")
    if origin is not None and origin != session.origin:
        raise AuthError(
            "cross_origin", "this request comes from another origin than the console", status=403
        )


def start(session: store.StoredSession) -> None:
    store.put_session(session)


def end(caller: Caller) -> None:
    if caller.session is not None:
        store.delete_session(caller.account.account_id, caller.session.token_digest)
        _cache.pop(caller.session.token_digest, None)


def end_all_of(account_id: str, email: str | None) -> int:
    """End every session of a person (their role changed or was taken away), or
    (email None) of everyone (the provider is gone)."""
    ended = store.sessions_of(account_id, email)
    for session in ended:
        store.delete_session(account_id, session.token_digest)
        _cache.pop(session.token_digest, None)
    return len(ended)
