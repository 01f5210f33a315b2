"""The one evaluator: every operator on every type, boundaries, unset attributes, `not`."""

from __future__ import annotations

from typing import Any

import pytest

from insights.domain.core.profile import RETENTION_MS, CustomValue, Profile
from insights.domain.core.timefmt import DAY_MS, HOUR_MS, MINUTE_MS, format_time
from insights.domain.segments.evaluate import is_member
from insights.domain.segments.rules import parse_rules

NOW = 1_795_000_000_000
FIRST = NOW - 10 * DAY_MS
LAST = NOW - 7 * DAY_MS  # exactly 7 days before the query


def profile(**overrides: Any) -> Profile:
    base: dict[str, Any] = {
        "account_id": "acc",
        "uuid": "u",
        "created_at": FIRST,
        "first_seen": FIRST,
        "last_seen": LAST,
        "total_sessions": 3,
        "total_duration_ms": 90_000,  # 90 s in all, 30 s on average
        "country": "Sweden",
        "region": None,  # unset
        "city": "Göteborg",
        "browser_name": "Firefox",
        "browser_version": "120.0",
        "custom": {
            "plan": CustomValue("VIP", NOW - HOUR_MS, "event", NOW - 3 * DAY_MS),
            "seats": CustomValue(12, NOW - DAY_MS, "import"),
            "beta": CustomValue(True, NOW - DAY_MS, "import"),
            "renews": CustomValue("2026-12-24T00:00:00Z", NOW - DAY_MS, "import"),
            "renews_ms": CustomValue(NOW + DAY_MS, NOW - DAY_MS, "import"),
            "empty": CustomValue(None, NOW - DAY_MS, "event"),
        },
    }
    base.update(overrides)
    return Profile(**base)


def check(rule: dict[str, Any], p: Profile | None = None, now: int = NOW) -> bool:
    return is_member(parse_rules(rule), profile() if p is None else p, now)


def c(attribute: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"attribute": attribute, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node


CASES: list[tuple[dict[str, Any], bool]] = [
    # ---- strings (standard)
    (c("country", "equals", "Sweden"), True),
    (c("country", "equals", "sweden"), False),
    (c("country", "equals", "sweden", ignore_case=True), True),
    (c("country", "not_equals", "Norway"), True),
    (c("country", "not_equals", "Sweden"), False),
    (c("country", "not_equals", "SWEDEN", ignore_case=True), False),
    (c("country", "in", ["Norway", "Sweden"]), True),
    (c("country", "in", ["Norway", "sweden"]), False),
    (c("country", "in", ["Norway", "sweden"], ignore_case=True), True),
    (c("country", "not_in", ["Norway", "Denmark"]), True),
    (c("country", "not_in", ["Norway", "Sweden"]), False),
    (c("city", "contains", "teb"), True),
    (c("city", "contains", "TEB"), False),
    (c("city", "contains", "TEB", ignore_case=True), True),
    (c("city", "not_contains", "Oslo"), True),
    (c("city", "not_contains", "borg"), False),
    (c("browser_name", "starts_with", "Fire"), True),
    (c("browser_name", "starts_with", "fox"), False),
    (c("browser_name", "ends_with", "fox"), True),
    (c("browser_name", "ends_with", "FOX", ignore_case=True), True),
    (c("browser_version", "starts_with", "120."), True),
    (c("country", "is_set"), True),
    (c("country", "is_not_set"), False),
    # ---- unset standard string: every operator false but is_not_set
    (c("region", "equals", "x"), False),
    (c("region", "not_equals", "x"), False),
    (c("region", "in", ["x"]), False),
    (c("region", "not_in", ["x"]), False),
    (c("region", "contains", "x"), False),
    (c("region", "not_contains", "x"), False),
    (c("region", "starts_with", "x"), False),
    (c("region", "ends_with", "x"), False),
    (c("region", "is_set"), False),
    (c("region", "is_not_set"), True),
    ({"not": c("region", "equals", "x")}, True),  # `not` over unset includes the user
    ({"not": c("region", "not_equals", "x")}, True),
    ({"not": c("region", "is_not_set")}, False),
    # ---- numbers (standard); durations in seconds
    (c("total_sessions", "equals", 3), True),
    (c("total_sessions", "equals", 3.0), True),
    (c("total_sessions", "not_equals", 3), False),
    (c("total_sessions", "in", [1, 3]), True),
    (c("total_sessions", "not_in", [1, 2]), True),
    (c("total_sessions", "gt", 3), False),
    (c("total_sessions", "gt", 2), True),
    (c("total_sessions", "gte", 3), True),
    (c("total_sessions", "lt", 3), False),
    (c("total_sessions", "lte", 3), True),
    (c("total_sessions", "between", [3, 3]), True),
    (c("total_sessions", "between", [4, 9]), False),
    (c("total_session_duration", "equals", 90), True),
    (c("avg_session_duration", "between", [29.999, 30]), True),
    (c("avg_session_duration", "gt", 30), False),
    # avg_time_between_sessions = (7 - 10 days + ...) is set with 3 sessions
    (c("avg_time_between_sessions", "is_set"), True),
    # ---- timestamps (standard), boundaries at exactly 7 days ago
    (c("last_seen", "within_last", "7d"), True),
    (c("last_seen", "within_last", "167h"), False),
    (c("last_seen", "not_within_last", "7d"), False),
    (c("last_seen", "not_within_last", "167h"), True),
    (c("last_seen", "before", "7d"), False),
    (c("last_seen", "before", "167h"), True),
    (c("last_seen", "after", "7d"), False),
    (c("last_seen", "after", "8d"), True),
    (c("last_seen", "before", format_time(LAST)), False),
    (c("last_seen", "before", LAST + 1), True),
    (c("last_seen", "after", format_time(LAST - 1)), True),
    (c("last_seen", "equals", format_time(LAST)), True),
    (c("last_seen", "equals", LAST + 1), False),
    (c("last_seen", "not_equals", LAST + 1), True),
    (c("last_seen", "in", [LAST, 5]), True),
    (c("last_seen", "not_in", [LAST]), False),
    (c("first_seen", "gt", FIRST), False),
    (c("first_seen", "gte", format_time(FIRST)), True),
    (c("first_seen", "lt", FIRST), False),
    (c("first_seen", "lte", FIRST), True),
    (c("first_seen", "between", [format_time(FIRST), format_time(FIRST)]), True),
    (c("first_seen", "between", [FIRST + 1, NOW]), False),
    (c("first_seen", "is_set"), True),
    # ---- custom strings, numbers, booleans, times
    (c("custom.plan", "equals", "VIP"), True),
    (c("custom.plan", "equals", "vip"), False),
    (c("custom.plan", "equals", "vip", ignore_case=True), True),
    (c("custom.plan", "not_equals", "free"), True),
    (c("custom.plan", "in", ["free", "VIP"]), True),
    (c("custom.plan", "not_in", ["free"]), True),
    (c("custom.plan", "contains", "I"), True),
    (c("custom.plan", "not_contains", "I"), False),
    (c("custom.plan", "starts_with", "V"), True),
    (c("custom.plan", "ends_with", "p", ignore_case=True), True),
    (c("custom.plan", "gt", 1), False),  # a string is not ordered against numbers
    (c("custom.seats", "equals", 12), True),
    (c("custom.seats", "equals", "12"), False),  # types are strict
    (c("custom.seats", "not_equals", "12"), False),  # ...and so is "different"
    (c("custom.seats", "gt", 11.5), True),
    (c("custom.seats", "between", [12, 20]), True),
    (c("custom.seats", "contains", "1"), False),
    (c("custom.beta", "equals", True), True),
    (c("custom.beta", "equals", 1), False),
    (c("custom.beta", "gt", 0), False),
    (c("custom.renews", "after", "2026-12-01T00:00:00Z"), True),
    (c("custom.renews", "before", "2026-12-01T00:00:00Z"), False),
    (c("custom.renews_ms", "after", "1d"), True),
    (c("custom.renews_ms", "within_last", "7d"), False),  # in the future
    (c("custom.plan", "within_last", "7d"), False),  # not a time
    (c("custom.plan", "is_set"), True),
    (c("custom.empty", "is_set"), False),  # sent as null: unset
    (c("custom.empty", "is_not_set"), True),
    (c("custom.missing", "is_not_set"), True),
    (c("custom.missing", "not_equals", "x"), False),
    ({"not": c("custom.missing", "equals", "x")}, True),
    # ---- changed_within: the time the value last changed (3 days ago), not last sent
    (c("custom.plan", "changed_within", "3d"), True),
    (c("custom.plan", "changed_within", "71h"), False),
    (c("custom.plan", "changed_within", "7d", to="VIP"), True),
    (c("custom.plan", "changed_within", "7d", to="vip"), False),
    (c("custom.plan", "changed_within", "7d", to="vip", ignore_case=True), True),
    (c("custom.plan", "changed_within", "7d", to="free"), False),
    (c("custom.seats", "changed_within", "1d"), True),  # never changed since: updated_at
    (c("custom.missing", "changed_within", "30d"), False),
    # ---- groups
    ({"all": [c("country", "equals", "Sweden"), c("total_sessions", "gte", 3)]}, True),
    ({"all": [c("country", "equals", "Sweden"), c("total_sessions", "gt", 3)]}, False),
    ({"any": [c("country", "equals", "Norway"), c("total_sessions", "gte", 3)]}, True),
    ({"any": [c("country", "equals", "Norway"), c("region", "is_set")]}, False),
    ({"not": {"any": [c("country", "equals", "Norway"), c("region", "is_set")]}}, True),
]


@pytest.mark.parametrize(("rule", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_operator(rule: dict[str, Any], expected: bool) -> None:
    assert check(rule) is expected


def test_every_operator_is_exercised() -> None:
    from insights.domain.segments.rules import ALL_OPS

    used = {node["op"] for node, _ in CASES if "op" in node}
    used |= {node["not"]["op"] for node, _ in CASES if "op" in node.get("not", {})}
    assert used == set(ALL_OPS)


def test_a_user_without_a_closed_session_or_expired_is_never_a_member() -> None:
    everyone = c("custom.plan", "is_set")
    assert check(everyone)
    assert not check(everyone, profile(total_sessions=0, first_seen=None, last_seen=None))
    expired_at = LAST + RETENTION_MS + 1
    assert check(everyone, now=expired_at - 1)
    assert not check(everyone, now=expired_at)
    assert not check({"not": c("country", "equals", "x")}, now=expired_at)
    assert not is_member(parse_rules(everyone), None, NOW)


def test_relative_times_are_measured_from_the_query() -> None:
    rule = c("last_seen", "within_last", "7d")
    assert check(rule, now=NOW)
    assert not check(rule, now=NOW + MINUTE_MS)
