"""Console sessions: CSRF defences, expiry, sign-out, roles changed, https cookies."""

from __future__ import annotations

from tests.team.helpers import HOST, ORIGIN, Team, authorize, cookie_pairs


def test_a_cookie_alone_is_not_enough(team: Team) -> None:
    session = team.session("ann@acme.com")
    bare = team.stack.cloud.http(
        "PATCH", "/v1/account", headers={"cookie": f"insights_session={session}"}, body={}
    )
    assert (bare.status, bare.json()["error"]) == (403, "console_header_missing")
    foreign = team.call(
        session, "PATCH", "/v1/account", {"backfill_days": 30}, {"origin": "https://evil.example"}
    )
    assert (foreign.status, foreign.json()["error"]) == (403, "cross_origin")
    own = team.call(session, "PATCH", "/v1/account", {"backfill_days": 30}, {"origin": ORIGIN})
    assert own.status == 200
    forged = team.call("acc_x." + "A" * 43, "GET", "/v1/account")
    assert (forged.status, forged.json()["error"]) == (401, "session_ended")


def test_a_session_expires(team: Team) -> None:
    session = team.session("ed@acme.com")  # the provider gives 15 minutes
    assert team.call(session, "GET", "/v1/segments").status == 200
    team.stack.advance(15 * 60 + 1)
    expired = team.call(session, "GET", "/v1/segments")
    assert (expired.status, expired.json()["error"]) == (401, "session_expired")
    me = team.call(session, "GET", "/v1/team/me")
    assert me.json() == {"signed_in": False, "reason": "session_expired"}
    assert cookie_pairs(me)["insights_session"] == ""  # cleared


def test_an_expired_session_still_says_expired_after_ttl_sweeps(team: Team) -> None:
    # DynamoDB's TTL deletes whenever it gets to it; the tab's message must not
    # depend on whether it has yet (it said "ended" when the sweep came first).
    session = team.session("ed@acme.com")
    team.stack.advance(15 * 60 + 1)
    team.stack.ttl()
    expired = team.call(session, "GET", "/v1/segments")
    assert (expired.status, expired.json()["error"]) == (401, "session_expired")
    team.stack.advance(86_400)
    team.stack.ttl()
    gone = team.call(session, "GET", "/v1/segments")
    assert (gone.status, gone.json()["error"]) == (401, "session_ended")


def test_sign_out_ends_the_session(team: Team) -> None:
    session = team.session("vi@acme.com")
    out = team.call(session, "POST", "/v1/team/signout")
    assert out.json() == {"signed_out": True}
    assert cookie_pairs(out)["insights_session"] == ""
    after = team.call(session, "GET", "/v1/users")
    assert (after.status, after.json()["error"]) == (401, "session_ended")
    assert team.stack.cloud.http("GET", "/v1/team/me").json() == {
        "signed_in": False,
        "reason": None,
    }
    key = team.stack.cloud.http("GET", "/v1/team/me", headers=team.stack.auth(team.account))
    assert key.json()["via"] == "secret_key" and key.json()["role"] == "admin"


def test_a_role_changed_or_taken_away_ends_the_persons_sessions(team: Team) -> None:
    session = team.session("ed@acme.com")
    other = team.session("ann@acme.com")
    assigned = team.call(other, "PUT", "/v1/team/members/ed%40acme.com", {"role": "viewer"})
    assert assigned.json()["assigned_by"] == "ann@acme.com"
    assert team.call(session, "GET", "/v1/segments").status == 401
    demoted = team.session("ed@acme.com")
    assert team.call(demoted, "GET", "/v1/team/me").json()["role"] == "viewer"
    assert team.call(demoted, "POST", "/v1/segments", {}).status == 403
    listed = team.call(other, "GET", "/v1/team/members").json()["members"]
    assert [(m["email"], m["role"]) for m in listed] == [("ed@acme.com", "viewer")]
    assert team.call(other, "DELETE", "/v1/team/members/ed%40acme.com").status == 204
    assert team.call(demoted, "GET", "/v1/segments").status == 401
    assert team.call(other, "DELETE", "/v1/team/members/ed%40acme.com").status == 404
    bad = team.call(other, "PUT", "/v1/team/members/ed%40acme.com", {"role": "owner"})
    assert (bad.status, bad.json()["field"]) == (400, "role")
    # %FF and %FE would both read as U+FFFD: one member under two paths.
    assert (
        team.call(other, "PUT", "/v1/team/members/%FF%40acme.com", {"role": "viewer"}).json()[
            "field"
        ]
        == "email"
    )
    assert team.call(other, "DELETE", "/v1/team/members/%FE%40acme.com").status == 400


def test_an_https_console_uses_a_host_only_secure_cookie(team: Team) -> None:
    redirect_uri = f"https://{HOST}/v1/team/callback"
    client_id, secret = team.provider.register(redirect_uri)
    team.client_id, team.client_secret = client_id, secret
    assert team.configure(redirect_uri=redirect_uri).status == 200
    https = {"host": HOST, "x-forwarded-proto": "https"}
    started = team.stack.cloud.http(
        "GET", f"/v1/team/signin?account={team.account.account_id}", headers=https
    )
    assert "Secure" in started.cookies[0]
    back = authorize(started.headers["location"], "ann@acme.com")
    state = cookie_pairs(started)["insights_flow"]
    path = back.removeprefix(f"https://{HOST}")
    answer = team.stack.cloud.http(
        "GET", path, headers={**https, "cookie": f"insights_flow={state}"}
    )
    cookie = next(c for c in answer.cookies if "insights_session=" in c)
    assert cookie.startswith("__Host-insights_session=") and "; Secure; SameSite=Strict" in cookie
    value = cookie_pairs(answer)["__Host-insights_session"]
    sent = {"X-Insights-Console": "1", "origin": f"https://{HOST}"}
    good = team.stack.cloud.http(
        "GET", "/v1/account", headers={**sent, "cookie": f"__Host-insights_session={value}"}
    )
    assert good.status == 200
    # The same value under the name any sibling host could set: refused.
    tossed = team.stack.cloud.http(
        "GET", "/v1/account", headers={**sent, "cookie": f"insights_session={value}"}
    )
    assert (tossed.status, tossed.json()["error"]) == (401, "invalid_session")


def test_a_provider_change_of_who_gets_in_ends_every_session(team: Team) -> None:
    """A session keeps the role it began with, so a provider whose rules change (a
    default role or a group mapping taken away, another issuer, other domains)
    left everyone admitted under the old rules signed in for up to 12 hours: the
    way an admin closes a door found open did not close it."""
    viewer = team.session("vi@acme.com")  # the default role let them in
    editor = team.session("ed@acme.com")  # a group mapping
    assert team.configure(session_minutes=30).status == 200  # not about who gets in
    assert team.call(viewer, "GET", "/v1/users").status == 200
    assert team.configure(session_minutes=30, default_role=None).status == 200
    for session in (viewer, editor):
        ended = team.call(session, "GET", "/v1/users")
        assert (ended.status, ended.json()["error"]) == (401, "session_ended")
    assert team.sign_in("vi@acme.com").headers["location"] == "/#/signin-error/no_role"
    assert team.call(team.session("ed@acme.com"), "GET", "/v1/team/me").json()["role"] == "editor"
