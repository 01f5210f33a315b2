"""The console's sign-in, the pure part: authorization code flow with PKCE, cookies.

1. ``GET /v1/team/signin?account=...`` makes a flow: a random ``state``
   (also set in a cookie scoped to the callback path, so the callback only
   completes in the browser that started it: no login CSRF), a ``nonce``
   and a PKCE ``code_verifier``. The nonce and the verifier never leave the
   server: the flow item holds them, keyed by the state's SHA-256, for 10
   minutes and one use. The browser goes to the IdP's authorization
   endpoint with the S256 challenge only.
2. ``GET /v1/team/callback?code&state`` requires the state to equal the
   cookie's, takes the flow (deleting it), posts the code with the verifier
   to the token endpoint, verifies the ID token and its nonce, admits the
   person (``provider.admit``) and sets the session cookie.

The redirect URI is the one the account registered, exactly (the IdP checks
it too); where the browser lands afterwards is fixed (``/``, or a fixed
sign-in error page): nothing in the request names a place to go.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

FLOW_SECONDS = 600
FLOW_COOKIE = "insights_flow"
SESSION_COOKIE = "insights_session"
SECURE_SESSION_COOKIE = "__Host-insights_session"  # https: no Domain, Path=/, Secure
CONSOLE_HEADER = "x-insights-console"  # cookie-authenticated requests must send it (CSRF)
TOKEN_BYTES = 32
# Where the callback sends the browser: fixed paths, never taken from the request.
SIGNED_IN = "/"
SIGNIN_ERRORS = frozenset(
    {
        "not_configured",
        "unknown_account",
        "flow_expired",
        "state_mismatch",
        "denied",
        "idp_error",
        "token_rejected",
        "nonce_mismatch",
        "no_email",
        "email_not_verified",
        "domain_not_allowed",
        "no_role",
        "wrong_origin",
        "pkce_unsupported",
    }
)


def random_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636 4.2): BASE64URL(SHA256(ASCII(code_verifier)))."""
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str

    @classmethod
    def new(cls) -> Flow:
        return cls(random_token(), random_token(), random_token())


def authorization_url(
    endpoint: str, client_id: str, redirect_uri: str, scopes: tuple[str, ...], flow: Flow
) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
    )
    return endpoint + ("&" if urlsplit(endpoint).query else "?") + query


def token_form(code: str, redirect_uri: str, client_id: str, verifier: str) -> dict[str, str]:
    """The token request's body (RFC 6749 4.1.3 with RFC 7636's code_verifier)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }


def basic_auth(client_id: str, secret: str) -> str:
    """client_secret_basic (RFC 6749 2.3.1: each part form-encoded first)."""
    from urllib.parse import quote_plus

    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def supports_s256(discovery: dict[str, Any]) -> bool:
    """A provider that lists its PKCE methods must list S256 (absent: most do not say)."""
    methods = discovery.get("code_challenge_methods_supported")
    return methods is None or (isinstance(methods, list) and "S256" in methods)


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


# ------------------------------------------------------------------ cookies
def cookie(name: str, value: str, *, path: str, max_age: int, secure: bool, same_site: str) -> str:
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly"]
    if secure:
        parts.append("Secure")
    parts.append(f"SameSite={same_site}")
    return "; ".join(parts)


def flow_cookie(state: str, secure: bool) -> str:
    # Lax, not Strict: the callback is a top-level navigation from the IdP's site.
    return cookie(
        FLOW_COOKIE,
        state,
        path="/v1/team/callback",
        max_age=FLOW_SECONDS,
        secure=secure,
        same_site="Lax",
    )


def clear_flow_cookie(secure: bool) -> str:
    return cookie(
        FLOW_COOKIE, "", path="/v1/team/callback", max_age=0, secure=secure, same_site="Lax"
    )


def session_cookie_name(secure: bool) -> str:
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


def session_cookie(value: str, max_age: int, secure: bool) -> str:
    # Strict: no other site's page can make the browser send it at all.
    name = session_cookie_name(secure)
    return cookie(name, value, path="/", max_age=max_age, secure=secure, same_site="Strict")


def clear_session_cookies() -> list[str]:
    return [
        cookie(SECURE_SESSION_COOKIE, "", path="/", max_age=0, secure=True, same_site="Strict"),
        cookie(SESSION_COOKIE, "", path="/", max_age=0, secure=False, same_site="Strict"),
    ]


def parse_cookies(values: list[str]) -> dict[str, str]:
    """HTTP API v2's ``cookies`` (each ``name=value``), or a Cookie header split on ';'."""
    found: dict[str, str] = {}
    for value in values:
        for part in value.split(";"):
            name, sep, content = part.strip().partition("=")
            if sep and name and name not in found:
                found[name] = content
    return found


def session_value(account_id: str, token: str) -> str:
    """The cookie names the account, so a session is one read under the account's key."""
    return f"{account_id}.{token}"


def split_session_value(value: str) -> tuple[str, str] | None:
    account_id, sep, token = value.partition(".")
    if not sep or not account_id or len(token) < 40 or len(value) > 200:
        return None
    return account_id, token


def signin_error(code: str) -> str:
    """The console's page for a refused sign-in: a fixed code in the fragment, no free text."""
    return "/#/signin-error/" + (code if code in SIGNIN_ERRORS else "idp_error")


# ----------------------------------------------------------------- networks
def network(ip: str | None) -> str | None:
    """Where a request came from, without the address (invariant 8): IPv4 /24, IPv6 /48."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
