"""Console sign-in through a real OIDC provider (oidc-provider-mock), in-process stack.

The flow end to end, then each hardening: state bound to the browser, one
use, nonce and PKCE, exact redirect URIs, no open redirect, no token in a
URL or a log, domains and roles, expiry and sign-out.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from tests.team.helpers import ORIGIN, REDIRECT_URI, Team, authorize, cookie_pairs


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


def test_the_state_must_be_this_browsers_and_is_good_once(team: Team) -> None:
    started = team.start()
    state = cookie_pairs(started)["insights_flow"]
    back = authorize(started.headers["location"], "ann@acme.com")
    for cookie in (None, "someone-elses-state"):  # login CSRF: another browser's callback
        refused = team.callback(back, cookie)
        assert refused.headers["location"] == "/#/signin-error/state_mismatch"
        assert "insights_session" not in cookie_pairs(refused)
    assert team.callback(back, state).headers["location"] == "/"  # not spent by the refusals
    again = team.callback(back, state)  # a replayed callback
    assert again.headers["location"] == "/#/signin-error/flow_expired"
    assert "insights_session" not in cookie_pairs(again)


def test_a_flow_lasts_ten_minutes(team: Team) -> None:
    started = team.start()
    back = authorize(started.headers["location"], "ann@acme.com")
    team.stack.advance(601)
    late = team.callback(back, cookie_pairs(started)["insights_flow"])
    assert late.headers["location"] == "/#/signin-error/flow_expired"


def test_a_code_from_another_flow_fails_on_the_nonce(team: Team) -> None:
    """Code injection: a code issued for one flow, brought back with another flow's state."""
    first, second = team.start(), team.start()
    code_of_first = authorize(first.headers["location"], "ann@acme.com")
    code = parse_qs(urlsplit(code_of_first).query)["code"][0]
    state = cookie_pairs(second)["insights_flow"]
    answer = team.callback(f"{REDIRECT_URI}?code={code}&state={state}", state)
    assert answer.headers["location"] == "/#/signin-error/nonce_mismatch"
    assert "insights_session" not in cookie_pairs(answer)


def test_pkce_the_verifier_stays_on_the_server_and_matches_the_challenge(team: Team) -> None:
    from insights.domain.team.flow import challenge, digest
    from insights.storage import team as store

    started = team.start()
    query = parse_qs(urlsplit(started.headers["location"]).query)
    state = query["state"][0]
    flow = store.take_flow(digest(state))
    assert flow is not None and flow.verifier not in started.headers["location"]
    assert query["code_challenge"] == [challenge(flow.verifier)]
    assert query["nonce"] == [flow.nonce] and query["scope"] == ["openid email profile"]


def test_redirect_uris_are_exact(team: Team) -> None:
    # Ours: only this stack's origin + /v1/team/callback, nothing appended.
    for uri in (REDIRECT_URI + "?next=https://evil.example", ORIGIN + "/v1/team/callback/x"):
        answer = team.configure(redirect_uri=uri)
        assert (answer.status, answer.json()["field"]) == (400, "redirect_uri"), uri
    # The provider's: a redirect URI it was not registered with is refused there.
    other = "http://localhost:3000/v1/team/callback"
    assert team.configure(redirect_uri=other).status == 200
    started = team.stack.cloud.http(
        "GET",
        f"/v1/team/signin?account={team.account.account_id}",
        headers={"host": "localhost:3000"},
    )
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(started.headers["location"], timeout=10)
        raise AssertionError("the provider accepted an unregistered redirect URI")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
    # Started from another origin than the registered one: said at once.
    assert team.configure().status == 200
    wrong = team.stack.cloud.http(
        "GET",
        f"/v1/team/signin?account={team.account.account_id}",
        headers={"host": "localhost:3000"},
    )
    assert wrong.headers["location"] == "/#/signin-error/wrong_origin"


def test_no_open_redirect(team: Team) -> None:
    started = team.stack.cloud.http(
        "GET",
        f"/v1/team/signin?account={team.account.account_id}&next=https://evil.example"
        "&redirect_uri=https://evil.example/cb",
        headers={"host": "127.0.0.1:3000"},
    )
    query = parse_qs(urlsplit(started.headers["location"]).query)
    assert query["redirect_uri"] == [REDIRECT_URI]
    back = authorize(started.headers["location"], "ann@acme.com")
    landed = team.callback(
        back + "&next=https://evil.example&error_description=<b>hi</b>",
        cookie_pairs(started)["insights_flow"],
    )
    assert landed.headers["location"] == "/"
    denied = team.start()
    refused = team.callback(
        authorize(denied.headers["location"], "", action="deny") + "&error_description=evil",
        cookie_pairs(denied)["insights_flow"],
    )
    assert refused.headers["location"] == "/#/signin-error/denied"
    for account in ("", "acc_nobody", "../../x"):
        unknown = team.start(account)
        assert unknown.headers["location"] == "/#/signin-error/unknown_account", account


def test_tokens_never_reach_a_url_or_a_log(team: Team) -> None:
    from insights.services.team import signin

    records: list[logging.LogRecord] = []
    catch = _Catch(records)
    logger = signin.logger._logger
    levels = (logger.level, logger.parent.level if logger.parent else 0)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(catch)
    if logger.parent:
        logger.parent.addHandler(catch)
    try:
        started = team.start()
        back = authorize(started.headers["location"], "ann@acme.com")
        answer = team.callback(back, cookie_pairs(started)["insights_flow"])
        refused = team.sign_in("mal@evil.example")
    finally:
        logger.removeHandler(catch)
        if logger.parent:
            logger.parent.removeHandler(catch)
        logger.setLevel(levels[0])
    session = cookie_pairs(answer)["insights_session"]
    code = parse_qs(urlsplit(back).query)["code"][0]
    state = cookie_pairs(started)["insights_flow"]
    token = session.split(".", 1)[1]
    for response in (started, answer, refused):
        assert token not in response.headers.get("location", "")
    assert answer.headers["location"] == "/" and answer.headers["cache-control"] == "no-store"
    logged = "\n".join(str(record.__dict__) for record in records)
    assert "console sign-in refused" in logged  # the log is captured
    for secret in (token, code, state, team.client_secret):
        assert secret not in logged


class _Catch(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_default_role_needs_allowed_domains_even_beside_role_groups(team: Team) -> None:
    """role_groups do not narrow who the default role admits: it is for everyone the
    IdP signs in whom no group names, so without allowed_domains a public issuer
    (Google's signs in every Google account) let the whole world in as viewer."""
    team.provider.user("stranger@elsewhere.example", email="stranger@elsewhere.example")
    refused = team.configure(allowed_domains=[])
    assert refused.status == 400, refused.body
    assert refused.json()["error"] == "invalid_team_provider"
    assert refused.json()["field"] == "default_role"
    answer = team.sign_in("stranger@elsewhere.example")
    assert answer.headers["location"] == "/#/signin-error/domain_not_allowed"
    # Groups alone (no default role) need no domains: only the groups' members get in.
    assert team.configure(allowed_domains=[], default_role=None).status == 200
    answer = team.sign_in("stranger@elsewhere.example")
    assert answer.headers["location"] == "/#/signin-error/no_role"


def test_a_provider_stored_with_a_default_role_and_no_domains_still_loads_but_admits_none(
    team: Team,
) -> None:
    """Stored before the rule above: it still reads (the Team page shows it, a PUT
    replaces it), and its default role lets nobody in."""
    from insights.storage import team as store

    account_id = team.account.account_id
    body, secret_name = store.get_provider(account_id) or ({}, None)
    store.put_provider(account_id, {**body, "allowed_domains": []}, secret_name, 0)
    team.provider.user("stranger@elsewhere.example", email="stranger@elsewhere.example")
    shown = team.admin("GET", "/v1/team/provider")
    assert shown.status == 200 and shown.json()["provider"]["allowed_domains"] == []
    answer = team.sign_in("stranger@elsewhere.example")
    assert answer.headers["location"] == "/#/signin-error/no_role"
    assert team.configure().status == 200  # replaced with domains: the default role works
    assert team.call(team.session("vi@acme.com"), "GET", "/v1/team/me").json()["role"] == "viewer"


def test_an_email_the_idp_marks_unverified_as_a_string_is_not_let_in(team: Team) -> None:
    """Apple, Azure AD and others send email_verified as "false"/"true" strings: a
    string "false" must refuse the email as the boolean does, or anyone who can
    set an unverified email at such an IdP signs in as that address (its role)."""
    assert team.admin("PUT", "/v1/team/members/boss%40acme.com", {"role": "admin"}).status == 200
    for verified in ("false", "False", "FALSE", 0, "no"):
        team.provider.user("mallory", email="boss@acme.com", email_verified=verified)
        refused = team.sign_in("mallory")
        assert refused.headers["location"].endswith("/email_not_verified"), verified
    team.provider.user("boss", email="boss@acme.com", email_verified="true")
    assert team.call(team.session("boss"), "GET", "/v1/team/me").json()["role"] == "admin"


def test_a_token_listing_us_beside_the_client_it_was_issued_to_is_refused(team: Team) -> None:
    """Several audiences: the token belongs to its azp; another app of the same IdP
    must not sign in with one that merely lists the console (OIDC Core 3.1.3.7)."""
    ours = team.client_id
    team.provider.user("x", email="vi@acme.com", aud=[ours, "other-app"], azp="other-app")
    assert team.sign_in("x").headers["location"].endswith("/token_rejected")
    team.provider.user("y", email="vi@acme.com", aud=[ours, "other-app"], azp=ours)
    assert team.call(team.session("y"), "GET", "/v1/team/me").status == 200


def test_who_is_let_in(team: Team) -> None:
    refused = team.sign_in("mal@evil.example")  # in the admins' group, but not of acme.com
    assert refused.headers["location"] == "/#/signin-error/domain_not_allowed"
    team.provider.user("eve@acme.com", email="eve@acme.com", email_verified=False)
    assert team.sign_in("eve@acme.com").headers["location"].endswith("/email_not_verified")
    assert team.configure(default_role=None).status == 200
    assert team.sign_in("vi@acme.com").headers["location"] == "/#/signin-error/no_role"
    assigned = team.admin("PUT", "/v1/team/members/Vi%40Acme.com", {"role": "editor"})
    assert (
        assigned.json()["email"] == "vi@acme.com" and assigned.json()["assigned_by"] == "secret key"
    )
    session = team.session("vi@acme.com")
    assert team.call(session, "GET", "/v1/team/me").json()["role"] == "editor"
    entries = team.admin("GET", "/v1/audit").json()["entries"]
    signins = [(e["actor"], e["status"], e["detail"]) for e in entries if e["action"] == "sign_in"]
    assert sorted(signins) == sorted(
        [
            ("vi@acme.com", 200, "role from assigned"),
            ("vi@acme.com", 403, "no_role"),
            ("eve@acme.com", 403, "email_not_verified"),
            ("mal@evil.example", 403, "domain_not_allowed"),
        ]
    )  # the clock is frozen: one millisecond, no order


def test_the_provider_is_read_without_its_secret_and_can_go(team: Team) -> None:
    session = team.session("ann@acme.com")
    read = team.admin("GET", "/v1/team/provider").json()
    assert read["provider"]["has_client_secret"] is True
    assert team.client_secret not in str(read)
    assert team.configure(client_secret=None).json()["provider"]["has_client_secret"] is False
    assert team.admin("DELETE", "/v1/team/provider").status == 204
    assert team.call(session, "GET", "/v1/account").status == 401  # its sessions ended with it
    assert team.admin("DELETE", "/v1/team/provider").status == 404
    assert team.admin("GET", "/v1/team/provider").json() == {"configured": False}
    assert team.start().headers["location"] == "/#/signin-error/not_configured"
