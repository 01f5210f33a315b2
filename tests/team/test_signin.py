"""Console sign-in through a real OIDC provider (oidc-provider-mock), in-process stack.

The flow end to end, then each hardening: state bound to the browser, one
use, nonce and PKCE, exact redirect URIs, no open redirect, no token in a
URL or a log, domains and roles, expiry and sign-out.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.team.helpers import CONSOLE, ORIGIN, REDIRECT_URI, Team, authorize, cookie_pairs


def test_a_person_signs_in_and_the_api_knows_who(team: Team) -> None:
    started = team.start()
    assert started.status == 302
    query = parse_qs(urlsplit(started.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["redirect_uri"] == [REDIRECT_URI]
    flow_cookie = started.cookies[0]
    assert "HttpOnly" in flow_cookie and "SameSite=Lax" in flow_cookie
    assert "Path=/v1/team/callback" in flow_cookie
    back = authorize(started.headers["location"], "ann@acme.com")
    answer = team.callback(back, cookie_pairs(started)["insights_flow"])
    assert (answer.status, answer.headers["location"]) == (302, "/")
    session_cookie = next(c for c in answer.cookies if c.startswith("insights_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    assert "Secure" not in session_cookie  # the local stack is http
    session = cookie_pairs(answer)["insights_session"]
    me = team.call(session, "GET", "/v1/team/me").json()
    assert me["via"] == "session" and me["email"] == "ann@acme.com" and me["role"] == "admin"
    assert team.call(session, "GET", "/v1/account").status == 200
