"""Relative bounds in `between` (and gt/gte/lt/lte) on timestamps: "signed up the week
before last" as ["14d", "7d"], answered the same by the evaluator and the index."""

from __future__ import annotations

from typing import Any

import pytest

from insights.domain.core.profile import Profile
from insights.domain.core.timefmt import DAY_MS
from insights.domain.segments.evaluate import is_member
from insights.domain.segments.rules import Relative, RuleError, parse_rules
from tests.conftest import MINUTE, Stack
from tests.segments.segments_helpers import count, create, listed

NOW = 1_795_000_000_000
DAY = 86_400


def rule(op: str, value: Any, attribute: str = "first_seen") -> dict[str, Any]:
    return {"attribute": attribute, "op": op, "value": value}


def test_relative_bounds_parse_to_times_before_the_query() -> None:
    parsed = parse_rules(rule("between", ["14d", "7d"]))
    assert parsed.value == (Relative(14 * DAY_MS), Relative(7 * DAY_MS))
    assert parse_rules(rule("gte", "1w")).value == Relative(7 * DAY_MS)
    assert parse_rules(rule("between", ["2026-11-01T00:00:00Z", "7d"])).value[1] == Relative(
        7 * DAY_MS
    )


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        (["7d", "14d"], "rules.value", "earlier time"),  # the low bound is the older time
        (["2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z"], "rules.value", "low"),
        (["14d", "soon"], "rules.value[1]", "duration like '7d'"),
    ],
)
def test_bad_bounds_are_refused_with_the_path(value: Any, path: str, message: str) -> None:
    with pytest.raises(RuleError) as refused:
        parse_rules(rule("between", value), "rules")
    assert refused.value.path == path and message in refused.value.message


def test_numbers_still_take_numbers_only() -> None:
    with pytest.raises(RuleError):
        parse_rules(rule("between", ["14d", "7d"], attribute="total_sessions"))


@pytest.mark.parametrize(
    ("days_ago", "member"),
    [(15, False), (14, True), (10, True), (7, True), (6, False)],
)
def test_the_evaluator_resolves_bounds_at_the_query(days_ago: int, member: bool) -> None:
    first = NOW - days_ago * DAY_MS
    profile = Profile(
        account_id="acc",
        uuid="u",
        created_at=first,
        first_seen=first,
        last_seen=first,
        total_sessions=1,
        total_duration_ms=0,
    )
    assert is_member(parse_rules(rule("between", ["14d", "7d"])), profile, NOW) is member
    later = is_member(parse_rules(rule("gt", "7d")), profile, NOW)
    assert later is (days_ago < 7)


def test_signed_up_the_week_before_last_through_the_api_uses_the_index(stack: Stack) -> None:
    acme = stack.account()
    # Sign-ups 20, 10 and 3 days before the query (each followed by the days until the next).
    for uuid, days_until_next in (("old", 10), ("week-before-last", 7), ("this-week", 3)):
        assert stack.send(acme, [{"uuid": uuid}]).status == 200
        stack.advance(31 * MINUTE)
        stack.sweep()
        stack.advance(days_until_next * DAY - 31 * MINUTE)
    stack.cloud.settle()
    segment = create(stack, acme, rule("between", ["14d", "7d"]))
    assert listed(stack, acme, segment) == ["week-before-last"]
    counted = count(stack, acme, segment)
    assert counted["count"] == 1
    assert counted["plan"]["path"] == "index" and counted["plan"]["index"] == "first_seen"
