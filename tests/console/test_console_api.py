"""The console's server side through the local stack's HTTP routes: the user list,
the attribute catalogue, daily stats and secret key rotation (docs/console-api.md).

ApiFunction's IAM policy (enforced by the local stack) grants no Scan on any
table: a page view that scanned would fail here with AccessDenied.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from insights.domain.console.stats import bucket_of, bucket_seconds
from tests.conftest import MINUTE, T0_MS, Stack, iso
from tests.imports.test_imports import upload

DAY = 24 * 3600
DAY_MS = DAY * 1000


def get(stack: Stack, account: Any, path: str, **query: Any) -> Any:
    response = stack.cloud.http(
        "GET", path, headers=stack.auth(account), query={k: str(v) for k, v in query.items()}
    )
    assert response.status == 200, response.body
    return response.json()


def close_sessions(stack: Stack) -> None:
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()


def visit(stack: Stack, account: Any, uuids: list[str], props: dict | None = None) -> None:
    """One session per user (two events a minute apart), closed."""
    events = [{"uuid": uuid, "user_properties": props or {}} for uuid in uuids]
    assert stack.send(account, events).status == 200
    close_sessions(stack)


def all_pages(stack: Stack, account: Any, **query: Any) -> tuple[list[dict], int]:
    users: list[dict] = []
    pages = 0
    cursor = None
    while True:
        params = dict(query)
        if cursor:
            params["cursor"] = cursor
        body = get(stack, account, "/v1/users", **params)
        pages += 1
        assert set(body) == {"users", "next_cursor"}
        users.extend(body["users"])
        cursor = body["next_cursor"]
        if cursor is None:
            return users, pages
        assert pages < 50


# ---------------------------------------------------------------- user list
def test_users_are_listed_by_uuid_prefix_in_pages_visible_only(stack: Stack) -> None:
    acme = stack.account()
    names = [f"user-{i:02d}" for i in range(23)] + ["other-1", "usER-case", "user#hash/é"]
    visit(stack, acme, names, {"plan": "free"})
    # Hidden: an imported user without a session, and one whose session is open.
    job = upload(stack, acme, "p.csv", b"uuid,plan\nuser-imported,VIP\n")
    assert job["status"] == "succeeded", job
    assert stack.send(acme, [{"uuid": "user-open"}]).status == 200

    everyone, _ = all_pages(stack, acme)
    assert [u["uuid"] for u in everyone] == sorted(names)
    # Each entry is exactly what GET /v1/users/{uuid} answers.
    for user in everyone[:3] + everyone[-2:]:
        assert user == stack.user(acme, user["uuid"]).json()

    listed, pages = all_pages(stack, acme, prefix="user-", limit=7)
    assert [u["uuid"] for u in listed] == [n for n in sorted(names) if n.startswith("user-")]
    assert pages == 4  # 23 users by 7, the last page short with no cursor after it

    first = get(stack, acme, "/v1/users", prefix="user-1", limit=100)
    assert [u["uuid"] for u in first["users"]] == [f"user-{i}" for i in range(10, 20)]
    assert first["next_cursor"] is None
    assert get(stack, acme, "/v1/users", prefix="nobody")["users"] == []
    # Case-sensitive, and prefixes with any character.
    assert [u["uuid"] for u in get(stack, acme, "/v1/users", prefix="usE")["users"]] == [
        "usER-case"
    ]
    assert [u["uuid"] for u in get(stack, acme, "/v1/users", prefix="user#")["users"]] == [
        "user#hash/é"
    ]


def test_expired_and_erased_users_leave_the_list(stack: Stack) -> None:
    acme = stack.account()
    visit(stack, acme, ["old-1", "old-2"])
    stack.advance(100 * DAY)
    visit(stack, acme, ["new-1"])
    stack.advance(90 * DAY)  # old-* are past 180 days of inactivity; TTL has not run
    assert [u["uuid"] for u in get(stack, acme, "/v1/users")["users"]] == ["new-1"]
    page = get(stack, acme, "/v1/users", limit=1)
    assert [u["uuid"] for u in page["users"]] == ["new-1"]
    stack.ttl()
    assert stack.cloud.http("DELETE", "/v1/users/new-1", headers=stack.auth(acme)).status == 204
    stack.cloud.settle()
    assert get(stack, acme, "/v1/users") == {"users": [], "next_cursor": None}


def test_bad_list_parameters_are_refused_with_the_field(stack: Stack) -> None:
    acme = stack.account()
    visit(stack, acme, ["a", "b"])
    cursor = get(stack, acme, "/v1/users", limit=1)["next_cursor"]
    assert cursor is not None
    cases = [
        ({"limit": "0"}, "limit", "invalid_limit"),
        ({"limit": "101"}, "limit", "invalid_limit"),
        ({"limit": "ten"}, "limit", "invalid_limit"),
        ({"cursor": "%%%"}, "cursor", "invalid_cursor"),
        ({"cursor": "bm90IGpzb24"}, "cursor", "invalid_cursor"),
        ({"cursor": cursor, "prefix": "b"}, "cursor", "invalid_cursor"),
        ({"prefix": "x" * 257}, "prefix", "invalid_prefix"),
    ]
    for query, field, code in cases:
        response = stack.cloud.http("GET", "/v1/users", headers=stack.auth(acme), query=query)
        assert response.status == 400, (query, response.body)
        assert response.json()["field"] == field
        assert response.json()["error"] == code
    second = get(stack, acme, "/v1/users", limit=1, cursor=cursor)
    assert [u["uuid"] for u in second["users"]] == ["b"]


def test_a_forged_cursor_naming_no_uuid_is_refused_not_a_500(stack: Stack) -> None:
    """The cursor is unsigned base64url JSON: an "a" that no uuid can be (empty, blank,
    over 256 characters, a lone surrogate) would reach DynamoDB as a key condition."""
    import base64
    import json

    acme = stack.account()
    visit(stack, acme, ["a"])
    for after in ["", " ", "u" * 257, "\ud800"]:
        raw = json.dumps({"a": after, "p": ""}).encode()
        forged = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        query = {"cursor": forged}
        response = stack.cloud.http("GET", "/v1/users", headers=stack.auth(acme), query=query)
        assert response.status == 400, (after[:8], response.body)
        assert response.json()["error"] == "invalid_cursor"
        assert response.json()["field"] == "cursor"


# -------------------------------------------------------------------- stats
def session(stack: Stack, account: Any, uuid: str, start_ms: int, seconds: int) -> None:
    """A session of `seconds` starting at start_ms, sent as it happens."""
    from insights import clock

    clock.freeze(start_ms)
    assert stack.send(account, [{"uuid": uuid}]).status == 200
    clock.freeze(start_ms + seconds * 1000)
    assert stack.send(account, [{"uuid": uuid}]).status == 200


def test_daily_stats_count_new_users_sessions_and_the_median_duration(stack: Stack) -> None:
    from insights import clock

    acme = stack.account()
    day1 = T0_MS - 3 * DAY_MS  # 2026-11-25 12:00
    session(stack, acme, "a", day1, 60)
    session(stack, acme, "b", day1 + 1000, 0)  # one event: a 0-second session
    session(stack, acme, "c", day1 + 2000, 600)
    clock.freeze(day1 + 3 * 3600_000)
    stack.sweep()
    stack.cloud.settle()
    day2 = T0_MS - 2 * DAY_MS
    session(stack, acme, "a", day2, 120)
    session(stack, acme, "d", day2 + 1000, 30)
    clock.freeze(T0_MS)
    stack.sweep()
    stack.cloud.settle()

    body = get(stack, acme, "/v1/stats")
    assert body["users"] == 4
    days = body["days"]
    assert len(days) == 30
    assert days[-1]["date"] == iso(T0_MS)[:10]  # ends today, oldest first
    assert days[0]["date"] == iso(T0_MS - 29 * DAY_MS)[:10]
    by_date = {d["date"]: d for d in days}
    first, second = by_date[iso(day1)[:10]], by_date[iso(day2)[:10]]
    assert (first["new_users"], first["sessions"]) == (3, 3)
    assert first["median_session_seconds"] == round(bucket_seconds(bucket_of(60_000)), 3)
    assert abs(first["median_session_seconds"] - 60) / 60 <= 0.0906
    assert (second["new_users"], second["sessions"]) == (1, 2)
    # Even count: the mean of the two middle durations' buckets (30 s and 120 s).
    assert second["median_session_seconds"] == round(
        (bucket_seconds(bucket_of(30_000)) + bucket_seconds(bucket_of(120_000))) / 2, 3
    )
    quiet = [d for d in days if d["date"] not in (first["date"], second["date"])]
    assert all(
        d == {"date": d["date"], "new_users": 0, "sessions": 0, "median_session_seconds": None}
        for d in quiet
    )
    assert len(get(stack, acme, "/v1/stats", days=90)["days"]) == 90
    assert len(get(stack, acme, "/v1/stats", days=180)["days"]) == 180
    for bad in ("7", "abc", "30.0", ""):
        response = stack.cloud.http(
            "GET", "/v1/stats", headers=stack.auth(acme), query={"days": bad}
        )
        if bad == "":
            assert response.status == 200
            continue
        assert response.status == 400 and response.json()["field"] == "days", response.body


def test_a_returning_user_after_expiry_is_a_new_user_again(stack: Stack) -> None:
    acme = stack.account()
    visit(stack, acme, ["u"])
    stack.advance(181 * DAY)
    visit(stack, acme, ["u"])
    body = get(stack, acme, "/v1/stats", days=180)
    assert body["users"] == 1
    assert sum(d["new_users"] for d in body["days"]) == 1  # the first one is 181 days ago
    assert sum(d["sessions"] for d in body["days"]) == 1


# ---------------------------------------------------------------- catalogue
def catalogue(stack: Stack, account: Any) -> dict[str, dict]:
    found = get(stack, account, "/v1/attributes")["attributes"]
    assert [a["name"] for a in found] == sorted(a["name"] for a in found)
    return {a["name"]: a for a in found}


def test_the_catalogue_answers_in_pages_by_name_folded_and_pending_alike(
    stack: Stack,
) -> None:
    """The write key is public: browsers could send names enough to take one answer
    past Lambda's 6 MB. Pages of at most 1,000 names, in order, none twice or lost,
    whether a name's counts are folded into its item yet or only pending."""
    from insights import clock
    from insights.services.console import aggregates as console_aggregates

    acme = stack.account()
    visit(stack, acme, ["u1"], {"b": 1, "d": 2, "f": 3})
    stack.cloud.settle()
    stack.advance(61 * MINUTE)  # a roll-up folds what is an hour old
    assert console_aggregates.roll_up(acme.account_id, clock.now_ms(), force=True) > 0
    visit(stack, acme, ["u2"], {"a": 1, "c": 2, "d": 3, "g": 4})  # pending only, and d both
    names, cursor, pages = [], None, 0
    while True:
        page = get(stack, acme, "/v1/attributes", limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["attributes"]) <= 2
        names += [a["name"] for a in page["attributes"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["a", "b", "c", "d", "f", "g"] and pages == 3
    assert {a["name"]: a["users"] for a in catalogue(stack, acme).values()}["d"] == 2
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"cursor": "nope"}):
        response = stack.cloud.http("GET", "/v1/attributes", headers=stack.auth(acme), query=bad)
        assert response.status == 400, response.body
        assert response.json()["field"] == next(iter(bad))


def test_the_attribute_catalogue_counts_holders_sources_types_and_examples(
    stack: Stack,
) -> None:
    acme = stack.account()
    visit(stack, acme, ["u1", "u2", "u3"], {"plan": "free", "seats": 3})
    visit(stack, acme, [f"v{i}" for i in range(7)], {"plan": "VIP"})
    for i in range(6):
        visit(stack, acme, [f"w{i}"], {"plan": f"p{i}", "ok": True})
    job = upload(
        stack,
        acme,
        "more.csv",
        b"uuid,seats,renews\nu1,5,2027-01-01\nhidden,9,2027-02-02\n",
        mapping={"types": {"seats": "number", "renews": "date"}},
    )
    assert job["status"] == "succeeded", job
    stack.cloud.settle()
    found = catalogue(stack, acme)
    assert set(found) == {"plan", "seats", "ok", "renews"}
    plan = found["plan"]
    assert plan["users"] == 16 and plan["sources"] == ["event"] and plan["types"] == ["string"]
    assert 1 <= len(plan["examples"]) <= 5
    assert set(plan["examples"]) <= {"free", "VIP"} | {f"p{i}" for i in range(6)}
    # u1's seats now come from the import; the hidden user is not counted.
    assert found["seats"]["users"] == 3
    assert found["seats"]["sources"] == ["csv", "event"]
    assert found["seats"]["types"] == ["number"]
    assert set(found["seats"]["examples"]) <= {3, 5}
    assert found["renews"] == {
        "name": "renews",
        "sources": ["csv"],
        "types": ["date"],
        "users": 1,
        "examples": ["2027-01-01T00:00:00.000Z"],
    }
    assert found["ok"]["types"] == ["boolean"] and found["ok"]["examples"] == [True]


def test_erasure_and_retention_leave_the_catalogue_and_stats_consistent(stack: Stack) -> None:
    acme = stack.account()
    visit(stack, acme, ["keep"], {"plan": "free"})
    visit(stack, acme, ["erase-me"], {"plan": "secret-plan", "email": "x@example.com"})
    stack.advance(100 * DAY)
    visit(stack, acme, ["keep"])
    found = catalogue(stack, acme)
    assert found["plan"]["users"] == 2 and found["email"]["users"] == 1
    assert "secret-plan" in found["plan"]["examples"]
    assert get(stack, acme, "/v1/stats")["users"] == 2

    erased = stack.cloud.http("DELETE", "/v1/users/erase-me", headers=stack.auth(acme))
    assert erased.status == 204
    stack.cloud.settle()
    found = catalogue(stack, acme)
    assert "email" not in found  # nobody holds it any more
    assert found["plan"]["users"] == 1
    assert found["plan"]["examples"] == ["free"]  # the erased user's value is gone
    assert get(stack, acme, "/v1/stats")["users"] == 1

    stack.advance(181 * DAY)  # "keep" expires
    stack.ttl()
    assert catalogue(stack, acme) == {}
    body = get(stack, acme, "/v1/stats", days=180)
    assert body["users"] == 0
    # Past days keep what happened: sessions and new users are history.
    assert sum(d["sessions"] for d in body["days"]) == 0  # all older than 180 days now


# ------------------------------------------------------------------ tenants
def test_accounts_see_only_their_own_users_catalogue_and_stats(stack: Stack) -> None:
    acme, globex = stack.account("Acme"), stack.account("Globex")
    visit(stack, acme, ["shared-id", "acme-only"], {"acme_attr": "a"})
    visit(stack, globex, ["shared-id"], {"globex_attr": "g"})
    assert [u["uuid"] for u in get(stack, globex, "/v1/users")["users"]] == ["shared-id"]
    assert get(stack, globex, "/v1/users")["users"][0]["custom"].keys() == {"globex_attr"}
    assert set(catalogue(stack, globex)) == {"globex_attr"}
    assert get(stack, globex, "/v1/stats")["users"] == 1
    assert get(stack, acme, "/v1/stats")["users"] == 2
    # A cursor of one account used by another only positions within the caller's own.
    cursor = get(stack, acme, "/v1/users", limit=1)["next_cursor"]
    other = get(stack, globex, "/v1/users", cursor=cursor)
    assert [u["uuid"] for u in other["users"]] == ["shared-id"]


def test_the_console_routes_need_the_secret_key(stack: Stack) -> None:
    acme = stack.account()
    for method, path in [
        ("GET", "/v1/users"),
        ("GET", "/v1/attributes"),
        ("GET", "/v1/stats"),
        ("POST", "/v1/account/secret-key"),
    ]:
        assert stack.cloud.http(method, path).status == 401
        wrong = stack.cloud.http(
            method, path, headers={"Authorization": f"Bearer {acme.write_key}"}
        )
        assert wrong.status == 403, wrong.body


# ------------------------------------------------------------- key rotation
def test_rotating_the_secret_key_refuses_the_old_one_at_once(stack: Stack) -> None:
    acme = stack.account()
    old = stack.auth(acme)
    assert stack.cloud.http("GET", "/v1/account", headers=old).status == 200  # cached now
    rotated = stack.cloud.http("POST", "/v1/account/secret-key", headers=old)
    assert rotated.status == 200, rotated.body
    new_key = rotated.json()["secret_key"]
    assert set(rotated.json()) == {"secret_key"}
    assert new_key.startswith("sk_") and new_key != acme.secret_key
    refused = stack.cloud.http("GET", "/v1/account", headers=old)
    assert refused.status == 401 and refused.json()["error"] == "unknown_key"
    again = stack.cloud.http("POST", "/v1/account/secret-key", headers=old)
    assert again.status == 401
    new = {"Authorization": f"Bearer {new_key}"}
    account = stack.cloud.http("GET", "/v1/account", headers=new)
    assert account.status == 200 and account.json()["account_id"] == acme.account_id
    # The write key is unchanged and still sends events.
    assert stack.send(acme, [{"uuid": "u"}]).json()["accepted"] == 1
    # The new secret key rotates again; the first new one then stops too.
    newer = stack.cloud.http("POST", "/v1/account/secret-key", headers=new)
    assert newer.status == 200
    assert stack.cloud.http("GET", "/v1/account", headers=new).status == 401
    latest = {"Authorization": f"Bearer {newer.json()['secret_key']}"}
    assert stack.cloud.http("GET", f"/v1/users/{quote('u')}", headers=latest).status == 404
