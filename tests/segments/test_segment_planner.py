"""The planner (which index, which range) and the index entries (what changes costs a write)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from insights.domain.core.profile import RETENTION_MS, CustomValue, Profile
from insights.domain.core.timefmt import DAY_MS
from insights.domain.segments import indexing, planner
from insights.domain.segments.cursor import CursorError, sign, verify
from insights.domain.segments.planner import plan
from insights.domain.segments.rules import parse_rules

NOW = 1_795_000_000_000


def c(attribute: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"attribute": attribute, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node


def planned(rule: dict[str, Any]):
    return plan(parse_rules(rule), "acc_1", NOW)


def test_range_on_first_seen_over_every_shard() -> None:
    p = planned(c("first_seen", "within_last", "7d"))
    assert (p.path, p.index, p.conditions) == ("index", "first_seen", ("rules",))
    assert len(p.queries) == indexing.SHARDS
    assert {q.index for q in p.queries} == {"by_first_seen"}
    assert {q.hash_key for q in p.queries} == {f"acc_1#{s}" for s in range(indexing.SHARDS)}
    assert {(q.low, q.high) for q in p.queries} == {(NOW - 7 * DAY_MS, NOW)}


def test_ranges_on_one_attribute_intersect_and_last_seen_stops_at_retention() -> None:
    p = planned(
        {
            "all": [
                c("last_seen", "not_within_last", "30d"),
                c("total_sessions", "gte", 2),
                c("last_seen", "within_last", "60d"),
            ]
        }
    )
    # total_sessions >= 2 narrows the read too: returning users' bucket only
    assert p.index == "last_seen"
    assert p.conditions == ("rules.all[0]", "rules.all[1]", "rules.all[2]")
    assert {q.hash_key for q in p.queries} == {f"acc_1#{s}#2+" for s in range(indexing.SHARDS)}
    assert (p.queries[0].low, p.queries[0].high) == (NOW - 60 * DAY_MS, NOW - 30 * DAY_MS - 1)
    wide = planned(c("last_seen", "before", "7d"))
    assert (wide.queries[0].low, wide.queries[0].high) == (
        NOW - RETENTION_MS,
        NOW - 7 * DAY_MS - 1,
    )


def test_contradictory_ranges_read_nothing() -> None:
    p = planned({"all": [c("first_seen", "after", "1d"), c("first_seen", "before", "2d")]})
    assert p.path == "index" and p.queries == () and p.describe()["empty"] is True


def test_the_most_selective_condition_wins() -> None:
    vip = c("custom.plan", "changed_within", "7d", to="VIP")
    p = planned({"all": [c("first_seen", "within_last", "7d"), c("country", "equals", "X"), vip]})
    assert p.index == "custom.plan (value)" and p.conditions == ("rules.all[2]",)
    assert all(q.index == "by_value" and q.low == NOW - 7 * DAY_MS for q in p.queries)
    assert all(q.sk == "idx#custom.plan" for q in p.queries)
    p = planned({"all": [c("country", "in", ["A", "B"]), c("custom.role", "equals", "admin")]})
    assert p.index == "custom.role (value)"
    p = planned({"all": [c("country", "in", ["A", "a", "B"]), c("total_sessions", "gt", 1)]})
    # ignore-case tokens: "A" and "a" share entries, so two values over every shard
    assert p.index == "country (value)" and len(p.queries) == 2 * indexing.SHARDS
    p = planned({"all": [c("custom.plan", "changed_within", "1d"), c("custom.x", "is_set")]})
    assert p.index == "custom.plan (change time)"
    assert {q.index for q in p.queries} == {"by_change"}


def test_conditions_under_any_or_not_cannot_narrow_the_read() -> None:
    for rule in (
        {"not": c("country", "equals", "X")},
        {"any": [c("first_seen", "within_last", "7d"), c("country", "equals", "X")]},
        {"all": [{"not": c("custom.plan", "equals", "VIP")}, c("total_sessions", "gt", 1)]},
        c("browser_version", "equals", "120"),
        c("custom.plan", "in", [str(i) for i in range(11)]),
    ):
        p = planned(rule)
        assert p.path == "scan", rule
        # the scan reads this account's visible users only, through the last_seen index
        assert {q.index for q in p.queries} == {"by_last_seen"}
        assert all(q.hash_key.startswith("acc_1#") for q in p.queries)
        assert all(q.low == NOW - RETENTION_MS for q in p.queries)


def test_nested_all_groups_still_narrow() -> None:
    p = planned(
        {"all": [{"all": [c("custom.plan", "equals", "VIP")]}, {"not": c("city", "is_set")}]}
    )
    assert p.path == "index" and p.conditions == ("rules.all[0].all[0]",)


# ------------------------------------------------------------------ entries
def user(**overrides: Any) -> Profile:
    base: dict[str, Any] = {
        "account_id": "acc_1",
        "uuid": "u#1",
        "created_at": NOW,
        "first_seen": NOW,
        "last_seen": NOW,
        "total_sessions": 1,
        "country": "Sweden",
        "browser_name": "Firefox",
        "browser_version": "120",
        "custom": {"plan": CustomValue("VIP", NOW, "event")},
    }
    base.update(overrides)
    return Profile(**base)


V, C = indexing.BY_VALUE, indexing.BY_CHANGE
EVERY_NEED = {name: frozenset({V}) for name in ("country", "region", "city", "browser_name")} | {
    f"custom.{name}": frozenset({V, C}) for name in ("plan", "role")
}


def test_entries_of_a_profile() -> None:
    found = indexing.entries(user(), EVERY_NEED)
    assert set(found) == {"idx#country", "idx#browser_name", "idx#custom.plan"}
    plan_entry = found["idx#custom.plan"]
    shard = indexing.shard_of("acc_1#u#1")
    assert plan_entry.ix_value == f"acc_1#{shard}#11:custom.plan#s:vip"
    assert plan_entry.ix_attr == f"acc_1#{shard}#11:custom.plan" and plan_entry.ix_changed == NOW
    assert indexing.entries(user(total_sessions=0), EVERY_NEED) == {}


def test_entries_hold_only_the_indexes_segments_need() -> None:
    assert indexing.entries(user(), {}) == {}
    (only,) = indexing.entries(user(), {"custom.plan": frozenset({C})}).values()
    assert only.sk == "idx#custom.plan" and only.ix_value is None and only.ix_attr
    (only,) = indexing.entries(user(), {"country": frozenset({V})}).values()
    assert only.sk == "idx#country" and only.ix_value and only.ix_attr is None


def test_the_needs_of_rules_are_what_the_planner_could_read() -> None:
    rules = [
        parse_rules(
            {
                "all": [
                    {"attribute": "custom.plan", "op": "equals", "value": "VIP"},
                    {"attribute": "country", "op": "in", "value": ["Sweden", "Norway"]},
                    {"attribute": "first_seen", "op": "within_last", "value": "7d"},
                    # not narrowing: inside `any` and `not`, nothing to index
                    {"any": [{"attribute": "custom.role", "op": "equals", "value": "x"}]},
                    {"not": {"attribute": "city", "op": "equals", "value": "Oslo"}},
                ]
            }
        ),
        parse_rules({"attribute": "custom.plan", "op": "changed_within", "value": "7d"}),
        parse_rules({"attribute": "custom.seats", "op": "is_set"}),
        parse_rules({"attribute": "browser_version", "op": "equals", "value": "120"}),
    ]
    assert planner.index_needs(rules, NOW) == {
        "custom.plan": frozenset({V, C}),
        "country": frozenset({V}),
        "custom.seats": frozenset({C}),
    }


def test_a_plan_reads_an_entry_index_only_once_it_is_ready() -> None:
    rule = parse_rules({"attribute": "custom.plan", "op": "equals", "value": "VIP"})
    assert planner.plan(rule, "acc_1", NOW, {}).path == "scan"
    assert planner.plan(rule, "acc_1", NOW, {"custom.plan": frozenset({C})}).path == "scan"
    ready = planner.plan(rule, "acc_1", NOW, {"custom.plan": frozenset({V})})
    assert ready.path == "index" and ready.entry_index == ["custom.plan", V]


def test_only_what_changed_is_written() -> None:
    before = user()
    # a new session: last_seen, counters, browser version and a resent plan move
    after = replace(
        before,
        last_seen=NOW + DAY_MS,
        total_sessions=2,
        browser_version="121",
        custom={"plan": CustomValue("VIP", NOW + DAY_MS, "event", NOW)},
    )
    assert not indexing.changes(before, after, EVERY_NEED)
    moved = replace(after, country="Norway", custom={"role": CustomValue("admin", NOW, "event")})
    diff = indexing.changes(after, moved, EVERY_NEED)
    assert diff.pk == "acc_1#u#1"
    assert {e.sk for e in diff.puts} == {"idx#country", "idx#custom.role"}
    assert diff.deletes == ("idx#custom.plan",)
    gone = indexing.changes(moved, None, EVERY_NEED)
    assert not gone.puts and set(gone.deletes) == set(indexing.entries(moved, EVERY_NEED))


def test_value_tokens_are_typed_and_bounded() -> None:
    assert indexing.value_token(1) == indexing.value_token(1.0) == "n:1"
    assert indexing.value_token(True) == "b:1" != indexing.value_token(1)
    assert indexing.value_token("1") == "s:1"
    assert indexing.value_token("VIP") == indexing.value_token("vip")
    assert len(indexing.value_token("x" * 1000) or "") < 100
    assert indexing.value_token(None) is None


def test_cursors_are_signed() -> None:
    key = b"k" * 32
    token = sign({"p": [1, None]}, key)
    assert verify(token, key) == {"p": [1, None]}
    body, mac = token.split(".")
    forged = sign({"p": [2, None]}, key).split(".")[0] + "." + mac
    for bad in (token + "x", body, "", "a.b", forged):
        with pytest.raises(CursorError):
            verify(bad, key)
    with pytest.raises(CursorError):
        verify(token, b"j" * 32)  # another account's key


def test_long_cursors_are_deflated_and_signed_over_what_is_sent() -> None:
    import base64
    import hashlib
    import hmac
    import json
    import zlib

    from insights.domain.segments import cursor

    key = b"k" * 32
    positions = {"a": "acc_1", "p": [["acc_1#" + "u" * 36, 1_794_913_600_000]] * 40}
    token = sign(positions, key)
    plain = json.dumps(positions, separators=(",", ":"), sort_keys=True).encode()
    assert len(token) < len(plain) / 3
    assert verify(token, key) == positions
    # A cursor signed before deflating (plain JSON) still verifies.
    mac = hmac.new(key, plain, hashlib.sha256).digest()[:16]
    old = f"{cursor._b64(plain)}.{cursor._b64(mac)}"
    assert verify(old, key) == positions
    # Flipping a byte of the deflated body breaks its MAC.
    body, mac_part = token.split(".")
    raw = bytearray(cursor._unb64(body))
    raw[10] ^= 1
    with pytest.raises(CursorError):
        verify(f"{cursor._b64(bytes(raw))}.{mac_part}", key)
    # A signed body that inflates past MAX_BODY is refused, not inflated.
    bomb = zlib.compress(b"{" + b" " * (cursor.MAX_BODY * 2) + b"}")
    mac = hmac.new(key, bomb, hashlib.sha256).digest()[:16]
    with pytest.raises(CursorError):
        verify(f"{base64.urlsafe_b64encode(bomb).rstrip(b'=').decode()}.{cursor._b64(mac)}", key)


@pytest.mark.parametrize(
    ("sessions", "buckets"),
    [
        ([c("total_sessions", "equals", 1)], {"1"}),
        ([c("total_sessions", "lte", 1)], {"1"}),
        ([c("total_sessions", "lt", 2)], {"1"}),
        ([c("total_sessions", "gte", 2)], {"2+"}),
        ([c("total_sessions", "gt", 1)], {"2+"}),
        ([c("total_sessions", "equals", 5)], {"2+"}),
        ([c("total_sessions", "between", [1, 3])], {"1", "2+"}),
        ([c("total_sessions", "not_equals", 1)], {"1", "2+"}),  # no narrowing
        ([], {"1", "2+"}),
        ([c("total_sessions", "gt", 2), c("total_sessions", "lt", 3)], set()),
    ],
)
def test_total_sessions_picks_the_last_seen_buckets(
    sessions: list[dict[str, Any]], buckets: set[str]
) -> None:
    p = planned({"all": [c("last_seen", "not_within_last", "7d"), *sessions]})
    assert {q.hash_key.rsplit("#", 1)[1] for q in p.queries} == buckets
    assert len(p.queries) == indexing.SHARDS * len(buckets)
    assert p.describe().get("empty", False) is (not buckets)


def test_the_scan_reads_both_buckets_unless_total_sessions_pins_one() -> None:
    p = planned({"not": c("country", "equals", "X")})
    assert p.path == "scan" and len(p.queries) == 2 * indexing.SHARDS
    p = planned({"all": [{"not": c("country", "equals", "X")}, c("total_sessions", "equals", 1)]})
    assert p.path == "scan" and {q.hash_key[-2:] for q in p.queries} == {"#1"}


@pytest.mark.parametrize(
    ("rule", "reads"),
    [
        # every field the rules read is in the index item the plan reads
        (c("first_seen", "within_last", "7d"), "index"),
        (c("custom.plan", "changed_within", "7d", to="VIP"), "index"),
        (c("country", "in", ["GB", "FR"]), "index"),
        (
            {"all": [c("last_seen", "within_last", "7d"), c("avg_time_between_sessions", "gt", 1)]},
            "index",
        ),
        ({"not": c("city", "contains", "on")}, "index"),  # the scan reads by_last_seen
        # a field the index item does not carry: profiles are read
        ({"all": [c("first_seen", "within_last", "7d"), c("country", "equals", "GB")]}, "x"),
        ({"all": [c("custom.plan", "equals", "VIP"), c("total_sessions", "gt", 1)]}, "x"),
        ({"all": [c("last_seen", "within_last", "7d"), c("custom.plan", "is_set")]}, "x"),
    ],
)
def test_reads_says_whether_the_index_decides(rule: dict[str, Any], reads: str) -> None:
    expected = "index" if reads == "index" else "index+profiles"
    assert planned(rule).describe()["reads"] == expected
