"""Segments over the local stack: index paths agree with the evaluator, paging, accounts, CRUD."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from insights import clock
from insights.domain.core.profile import RETENTION_MS, CustomValue, Profile, tombstone
from insights.domain.core.timefmt import DAY_MS, HOUR_MS, format_time
from insights.domain.segments.evaluate import is_member
from insights.domain.segments.rules import parse_rules
from insights.storage import segments as seg_store
from insights.storage.core import store
from insights.storage.core.store import PutProfile
from tests.conftest import Stack
from tests.segments.segments_helpers import count, create, pages, preview, segments_of

NOW = 1_795_000_000_000
COUNTRIES = ["Sweden", "Norway", None, "sweden", "Brazil"]
PLANS = ["free", "VIP", "vip", None]


@pytest.fixture
def frozen(stack: Stack) -> int:
    """The stack's clock held at NOW (stack.advance still moves it)."""
    clock.freeze(NOW)
    return NOW


def person(account_id: str, uuid: str, **fields: Any) -> Profile:
    base: dict[str, Any] = {
        "account_id": account_id,
        "uuid": uuid,
        "created_at": NOW - 100 * DAY_MS,
        "first_seen": NOW - 50 * DAY_MS,
        "last_seen": NOW - DAY_MS,
        "total_sessions": 2,
        "total_duration_ms": 600_000,
    }
    base.update(fields)
    return Profile(**base)


def population(account_id: str) -> list[Profile]:
    people = []
    for i in range(18):
        custom = {"seats": CustomValue(i, NOW - i * DAY_MS, "import")}
        plan = PLANS[i % 4]
        if plan is not None:
            custom["plan"] = CustomValue(plan, NOW - HOUR_MS, "event", NOW - (i % 9) * DAY_MS)
        if i % 5 == 0:
            custom["beta"] = CustomValue(i % 2 == 0, NOW - DAY_MS, "import")
        people.append(
            person(
                account_id,
                f"user-{i:02d}",
                first_seen=NOW - (i * 4 + 1) * DAY_MS,
                last_seen=NOW - (i % 12) * DAY_MS - i * HOUR_MS,
                total_sessions=1 + i % 4,
                country=COUNTRIES[i % 5],
                browser_name=["Chrome", "Firefox"][i % 2],
                city="Göteborg" if i % 3 == 0 else None,
                custom=custom,
            )
        )
    people += [
        # boundaries: exactly 7 days ago, and a millisecond more
        person(account_id, "edge-7d", first_seen=NOW - 7 * DAY_MS, last_seen=NOW - 7 * DAY_MS),
        person(
            account_id,
            "edge-7d+1ms",
            first_seen=NOW - 7 * DAY_MS - 1,
            last_seen=NOW - 7 * DAY_MS - 1,
        ),
        # never members: expired (TTL has not removed it yet), no closed session, erased
        person(
            account_id,
            "expired",
            first_seen=NOW - 200 * DAY_MS,
            last_seen=NOW - RETENTION_MS - 1,
            country="Sweden",
            custom={"plan": CustomValue("VIP", NOW - 190 * DAY_MS, "event")},
        ),
        person(
            account_id,
            "imported-only",
            first_seen=None,
            last_seen=None,
            total_sessions=0,
            created_at=NOW - DAY_MS,
            custom={"plan": CustomValue("VIP", NOW - DAY_MS, "import")},
        ),
        tombstone(account_id, "erased", NOW - DAY_MS),
    ]
    return people


def seed(stack: Stack, account: Any, size: int | None = None) -> list[Profile]:
    people = population(account.account.account_id)[:size]
    for p in people:
        store.commit([PutProfile(p, None)])
    stack.cloud.settle()
    return people


def c(attribute: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"attribute": attribute, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node


# (rules, expected plan path)
RULES: list[tuple[Any, str]] = [
    (c("first_seen", "within_last", "7d"), "index"),
    (c("first_seen", "after", "7d"), "index"),
    (c("first_seen", "before", "7d"), "index"),
    (c("first_seen", "gte", format_time(NOW - 7 * DAY_MS)), "index"),
    (c("first_seen", "gt", NOW - 7 * DAY_MS - 1), "index"),
    (c("first_seen", "lt", NOW - 7 * DAY_MS), "index"),
    (c("first_seen", "lte", NOW - 7 * DAY_MS), "index"),
    (c("first_seen", "equals", NOW - 7 * DAY_MS), "index"),
    (c("first_seen", "between", [NOW - 40 * DAY_MS, NOW - 7 * DAY_MS]), "index"),
    (c("last_seen", "within_last", "7d"), "index"),
    (c("last_seen", "not_within_last", "7d"), "index"),
    ({"all": [c("last_seen", "after", "10d"), c("last_seen", "before", "3d")]}, "index"),
    (c("country", "equals", "Sweden"), "index"),
    (c("country", "equals", "sweden", ignore_case=True), "index"),
    (c("country", "in", ["Norway", "Brazil"]), "index"),
    (c("browser_name", "equals", "Firefox"), "index"),
    (c("city", "equals", "göteborg", ignore_case=True), "index"),
    (c("custom.plan", "equals", "VIP"), "index"),
    (c("custom.plan", "in", ["vip", "free"], ignore_case=True), "index"),
    (c("custom.seats", "equals", 12), "index"),
    (c("custom.beta", "equals", True), "index"),
    (c("custom.plan", "changed_within", "3d"), "index"),
    (c("custom.plan", "changed_within", "3d", to="vip", ignore_case=True), "index"),
    (c("custom.plan", "is_set"), "index"),
    ({"all": [c("custom.plan", "equals", "VIP"), c("total_sessions", "gte", 3)]}, "index"),
    ({"all": [c("country", "equals", "Sweden"), {"not": c("custom.plan", "is_set")}]}, "index"),
    # nothing indexable: the account's users, evaluated
    ({"not": c("country", "equals", "Sweden")}, "scan"),
    ({"not": c("region", "is_set")}, "scan"),
    (c("custom.plan", "not_equals", "VIP"), "scan"),
    ({"any": [c("country", "equals", "Norway"), c("custom.seats", "gt", 30)]}, "scan"),
    (c("total_sessions", "equals", 1), "scan"),
    (c("avg_session_duration", "gt", 250), "scan"),
]


PAGED = [RULES[0][0], RULES[10][0], RULES[13][0], RULES[21][0], RULES[26][0]]


@pytest.mark.parametrize("part", range(2))
def test_every_path_agrees_with_the_evaluator_over_the_population(
    stack: Stack, frozen: int, part: int
) -> None:
    acme, rival = stack.account("Acme"), stack.account("Rival")
    people = seed(stack, acme)
    seed(stack, rival, 12)  # the same users in another account: a leak would duplicate
    nonempty = 0
    saved: dict[str, set[str]] = {}
    rules_here = RULES[part * 16 : part * 16 + 16]
    for rules, path in rules_here:
        node = parse_rules(rules)
        expected = {p.uuid for p in people if is_member(node, p, frozen)}
        nonempty += bool(expected)
        segment_id = create(stack, acme, rules)
        saved[segment_id] = expected
        # small pages, count and preview on a few (one per index kind); the
        # listing's own plan on every one
        paged = rules in PAGED
        found = pages(stack, acme, segment_id, 7 if paged else 100)
        members = [u["uuid"] for page in found for u in page["users"]]
        assert len(members) == len(set(members)), rules  # no duplicates across pages
        assert set(members) == expected, rules  # no gaps
        assert found[0]["plan"]["path"] == path, (rules, found[0]["plan"])
        if paged:
            assert count(stack, acme, segment_id)["count"] == len(expected), rules
            previewed = preview(stack, acme, rules)
            assert previewed["count"] == len(expected)
            assert {u["uuid"] for u in previewed["users"]} == expected
    assert nonempty >= len(rules_here) - 1  # the population is not trivially empty
    for p in people:
        want = {sid for sid, members in saved.items() if p.uuid in members}
        assert segments_of(stack, acme, p.uuid) == want, p.uuid


BOUNDARIES: list[tuple[str, Any, set[str]]] = [
    ("within_last", "7d", {"edge-7d"}),  # exactly 7 days ago is within the last 7 days
    ("not_within_last", "7d", {"edge-7d+1ms"}),
    ("before", "7d", {"edge-7d+1ms"}),
    ("after", "7d", set()),
    ("after", "8d", {"edge-7d", "edge-7d+1ms"}),
    ("gte", NOW - 7 * DAY_MS, {"edge-7d"}),
    ("lte", NOW - 7 * DAY_MS - 1, {"edge-7d+1ms"}),
]


def test_time_boundaries_hold_through_the_index(stack: Stack, frozen: int) -> None:
    acme = stack.account()
    edges = [p for p in population(acme.account.account_id) if p.uuid.startswith("edge-")]
    for p in edges:
        store.commit([PutProfile(p, None)])
    stack.cloud.settle()
    for op, value, members in BOUNDARIES:
        for attribute in ("first_seen", "last_seen"):
            segment_id = create(stack, acme, c(attribute, op, value))
            page = pages(stack, acme, segment_id, 100)[0]
            assert {u["uuid"] for u in page["users"]} == members, (attribute, op, value)
            assert page["plan"]["path"] == "index"


def test_pagination_is_stable_signed_and_bound_to_its_segment(stack: Stack, frozen: int) -> None:
    acme, rival = stack.account("Acme"), stack.account("Rival")
    seed(stack, acme)
    everyone = create(stack, acme, {"not": c("custom.nothing", "is_set")})  # a scan
    first = pages(stack, acme, everyone, 4)
    assert len(first) >= 5
    assert sum(len(p["users"]) for p in first) == 20  # 18 and the two edge users
    uuids = [u["uuid"] for p in first for u in p["users"]]
    assert len(set(uuids)) == len(uuids)
    # the same cursor gives the same page again, even after time moved on
    cursor = first[1]["next_cursor"]
    stack.advance(3600)
    url = f"/v1/segments/{everyone}/users?limit=4&cursor={quote(cursor)}"
    again = stack.cloud.http("GET", url, headers=stack.auth(acme)).json()
    assert again["users"] == first[2]["users"]
    # tampered, foreign or mismatched cursors are refused
    payload, mac = cursor.split(".")
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    for bad in (forged, "garbage", cursor[:-3]):
        r = stack.cloud.http(
            "GET",
            f"/v1/segments/{everyone}/users?cursor={quote(bad)}",
            headers=stack.auth(acme),
        )
        assert r.status == 400 and r.json()["error"] == "invalid_cursor", bad
    other = create(stack, acme, c("country", "is_set"))
    r = stack.cloud.http(
        "GET", f"/v1/segments/{other}/users?cursor={quote(cursor)}", headers=stack.auth(acme)
    )
    assert r.status == 400
    rivals = create(stack, rival, {"not": c("custom.nothing", "is_set")})
    r = stack.cloud.http(
        "GET", f"/v1/segments/{rivals}/users?cursor={quote(cursor)}", headers=stack.auth(rival)
    )
    assert r.status == 400  # signed with another account's key
    # replacing the segment ends listings that began before
    body = {"name": "x", "rules": c("country", "is_set")}
    assert (
        stack.cloud.http(
            "PUT", f"/v1/segments/{everyone}", headers=stack.auth(acme), body=body
        ).status
        == 200
    )
    r = stack.cloud.http("GET", url, headers=stack.auth(acme))
    assert r.status == 409 and r.json()["error"] == "cursor_stale"


def test_a_listing_with_custom_shows_members_as_the_user_api_does(
    stack: Stack, frozen: int
) -> None:
    """`custom=true`: each member with its custom attributes (a CSV of a segment for a
    campaign), read from the profile even where the index decided membership alone."""
    acme = stack.account()
    people = {p.uuid: p for p in seed(stack, acme)}
    vip = create(stack, acme, c("custom.plan", "equals", "VIP"))
    # Decided by the last_seen index, which carries every standard attribute.
    regulars = create(stack, acme, c("total_sessions", "gte", 2))
    for sid in (vip, regulars):
        plain = pages(stack, acme, sid, 100)[0]
        assert plain["users"] and all(set(u) == {"uuid", "standard"} for u in plain["users"])
        url = f"/v1/segments/{sid}/users?limit=100&custom=true"
        page = stack.cloud.http("GET", url, headers=stack.auth(acme)).json()
        assert [u["uuid"] for u in page["users"]] == [u["uuid"] for u in plain["users"]]
        for user in page["users"]:
            assert user == people[user["uuid"]].public()
        assert page["plan"]["profiles_read"] >= len(page["users"])
    assert plain["plan"]["profiles_read"] == 0  # standard attributes alone need no profile
    bad = stack.cloud.http("GET", f"/v1/segments/{vip}/users?custom=yes", headers=stack.auth(acme))
    assert (bad.status, bad.json()["error"]) == (400, "invalid_custom")


def test_segment_definitions_crud(stack: Stack) -> None:
    acme = stack.account()
    auth = stack.auth(acme)
    rules = c("country", "equals", "Sweden")
    created = stack.cloud.http(
        "POST",
        "/v1/segments",
        headers=auth,
        body={"name": "Swedes", "description": "in Sweden", "rules": rules},
    )
    assert created.status == 201
    body = created.json()
    sid = body["id"]
    assert body["name"] == "Swedes" and body["rules"] == rules and body["created_at"]
    assert stack.cloud.http("GET", f"/v1/segments/{sid}", headers=auth).json() == body
    listed_all = stack.cloud.http("GET", "/v1/segments", headers=auth).json()["segments"]
    assert [s["id"] for s in listed_all] == [sid]
    new_rules = {"all": [rules, c("total_sessions", "gt", 1)]}
    replaced = stack.cloud.http(
        "PUT", f"/v1/segments/{sid}", headers=auth, body={"name": "Swedes 2", "rules": new_rules}
    )
    assert replaced.status == 200
    assert replaced.json()["rules"] == new_rules and replaced.json()["id"] == sid
    assert stack.cloud.http("DELETE", f"/v1/segments/{sid}", headers=auth).status == 204
    for method in ("GET", "DELETE"):
        missing = stack.cloud.http(method, f"/v1/segments/{sid}", headers=auth)
        assert missing.status == 404 and missing.json()["error"] == "segment_not_found"
    for path in (f"/v1/segments/{sid}/users", f"/v1/segments/{sid}/count"):
        assert stack.cloud.http("GET", path, headers=auth).status == 404
    assert stack.cloud.http("GET", "/v1/segments", headers=auth).json() == {"segments": []}


def test_bad_requests_name_the_problem(stack: Stack) -> None:
    acme = stack.account()
    auth = stack.auth(acme)
    bad = {"name": "x", "rules": {"all": [c("country", "equals", "x"), c("plan", "is_set")]}}
    r = stack.cloud.http("POST", "/v1/segments", headers=auth, body=bad)
    assert r.status == 400 and r.json()["path"] == "rules.all[1].attribute"
    r = stack.cloud.http(
        "POST", "/v1/segments/preview", headers=auth, body={"rules": c("country", "gt", 1)}
    )
    assert r.status == 400 and r.json()["path"] == "rules.op"
    r = stack.cloud.http("POST", "/v1/segments", headers=auth, body="{nope")
    assert r.status == 400 and r.json()["error"] == "invalid_json"
    sid = create(stack, acme, c("country", "is_set"))
    r = stack.cloud.http("GET", f"/v1/segments/{sid}/users?limit=0", headers=auth)
    assert r.status == 400 and r.json()["error"] == "invalid_limit"
    write_key = {"Authorization": f"Bearer {acme.write_key}"}
    assert stack.cloud.http("GET", "/v1/segments", headers=write_key).status == 403
    assert stack.cloud.http("GET", "/v1/users/u/segments").status == 401


def test_definitions_past_the_item_limit_are_a_413_counted_in_utf8_bytes(stack: Stack) -> None:
    """An account's definitions share one DynamoDB item (400 KB of UTF-8). Counted in
    characters, 307,000 characters of "\u00e9" (614 KB) passed the check and the
    put failed: a 500."""
    acme = stack.account()
    auth = stack.auth(acme)
    kept = create(stack, acme, c("country", "is_set"), "kept")

    def wide(letter: str) -> dict[str, Any]:
        values = [f"{j:03d}" + letter * 1021 for j in range(100)]  # 100 values of 1,024
        wanted = [c(f"custom.c{i}", "in", values) for i in range(3)]
        return {"all": [c("custom.tag", "equals", "t"), *wanted]}  # tag: an entry index

    too_large = [
        ("POST", "/v1/segments"),  # a new segment
        ("PUT", f"/v1/segments/{kept}"),  # a replaced one
    ]
    for method, path in too_large:
        body = {"name": "wide", "rules": wide("\u00e9")}  # 307,200 characters, 614 KB
        r = stack.cloud.http(method, path, headers=auth, body=body)
        assert r.status == 413, r.body
        assert r.json()["error"] == "segments_too_large"
        assert "KB" in r.json()["message"], r.body
        # Refused before the index catalogue is touched: no index is built for it.
        assert seg_store.load_catalogue(acme.account.account_id).indexes == ()
    # The same characters in ASCII fit, and nothing was half-saved before.
    create(stack, acme, wide("x"), "wide", settle=False)
    listed = stack.cloud.http("GET", "/v1/segments", headers=auth).json()["segments"]
    assert [(s["name"], s["id"] == kept) for s in listed] == [("kept", True), ("wide", False)]
    assert seg_store.load_catalogue(acme.account.account_id).indexes != ()


def test_the_per_user_call_costs_one_user_read_when_warm(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from insights.services.segments import queries as service

    acme = stack.account()
    sid = create(stack, acme, c("custom.plan", "equals", "VIP"))
    reads: list[str] = []
    real_get, real_load = store.get_profile, service.seg_store.load_segments
    monkeypatch.setattr(
        store, "get_profile", lambda pk, **kw: reads.append("user") or real_get(pk, **kw)
    )
    monkeypatch.setattr(
        service.seg_store,
        "load_segments",
        lambda a, **kw: reads.append("segments") or real_load(a, **kw),
    )
    assert segments_of(stack, acme, "nobody") == set()
    reads.clear()
    for _ in range(3):
        assert segments_of(stack, acme, "nobody") == set()
    assert reads == ["user"] * 3
    # a change made through this container is seen at once, not after the cache expires
    body = {"name": "all", "rules": {"not": c("custom.plan", "equals", "VIP")}}
    replaced = stack.cloud.http("PUT", f"/v1/segments/{sid}", headers=stack.auth(acme), body=body)
    assert replaced.status == 200
    session_uuid = "someone"
    assert stack.send(acme, [{"uuid": session_uuid}]).status == 200
    stack.advance(31 * 60)
    stack.sweep()
    assert segments_of(stack, acme, session_uuid) == {sid}
