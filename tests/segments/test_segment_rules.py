"""Segment rules: malformed rules of each kind are refused with the path of the bad node."""

from __future__ import annotations

from typing import Any

import pytest

from insights.domain.core.events import decode_json
from insights.domain.core.timefmt import DAY_MS, HOUR_MS, MINUTE_MS
from insights.domain.segments.definitions import parse_body
from insights.domain.segments.rules import (
    Condition,
    Group,
    Not,
    Relative,
    RuleError,
    parse_rules,
)


def cond(attribute: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"attribute": attribute, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node


OK = cond("country", "equals", "Sweden")


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = OK
    for _ in range(depth):
        node = {"all": [node]}
    return node


@pytest.mark.parametrize(
    ("rules", "path", "fragment"),
    [
        # structure
        ([OK], "rules", "must be a group"),
        ({}, "rules", "must be a group"),
        ({"all": []}, "rules.all", "non-empty list"),
        ({"any": OK}, "rules.any", "non-empty list"),
        ({"all": [OK], "any": [OK]}, "rules.any", "exactly one"),
        ({"all": [OK, "x"]}, "rules.all[1]", "must be a group"),
        ({"not": {"all": [OK, {"not": 3}]}}, "rules.not.all[1].not", "must be a group"),
        (nested(6), "rules" + ".all[0]" * 5, "nest at most 5"),
        ({"any": [OK] * 51}, "rules.any[50]", "at most 50 conditions"),
        # attributes
        ({"all": [OK, cond("plan", "equals", "VIP")]}, "rules.all[1].attribute", "unknown"),
        ({"all": [cond("Country", "equals", "x")]}, "rules.all[0].attribute", "case-sensitive"),
        ({"all": [cond("custom.", "equals", "x")]}, "rules.all[0].attribute", "1-128"),
        ({"all": [cond(7, "equals", "x")]}, "rules.all[0].attribute", "standard attribute"),
        ({"all": [OK, {"op": "is_set"}]}, "rules.all[1].attribute", "standard attribute"),
        # operators and types
        ({"all": [cond("country", "like", "x")]}, "rules.all[0].op", "unknown operator"),
        ({"all": [cond("country", "gt", 3)]}, "rules.all[0].op", "does not fit string"),
        ({"all": [cond("total_sessions", "contains", "1")]}, "rules.all[0].op", "number"),
        ({"all": [cond("first_seen", "starts_with", "2")]}, "rules.all[0].op", "timestamp"),
        ({"all": [cond("total_sessions", "within_last", "7d")]}, "rules.all[0].op", "number"),
        ({"all": [cond("country", "within_last", "7d")]}, "rules.all[0].op", "string"),
        ({"all": [cond("last_seen", "changed_within", "7d")]}, "rules.all[0].op", "timestamp"),
        # values
        ({"all": [cond("country", "equals", 3)]}, "rules.all[0].value", "must be a string"),
        ({"all": [OK, cond("total_sessions", "gt", "3")]}, "rules.all[1].value", "number"),
        ({"all": [cond("total_sessions", "gt", True)]}, "rules.all[0].value", "number"),
        ({"all": [cond("first_seen", "after", "last tuesday")]}, "rules.all[0].value", "timestamp"),
        ({"all": [cond("first_seen", "gt", "2026-01-01")]}, "rules.all[0].value", "offset"),
        ({"all": [cond("last_seen", "within_last", "7 days")]}, "rules.all[0].value", "duration"),
        ({"all": [cond("last_seen", "within_last", "0d")]}, "rules.all[0].value", "more than zero"),
        ({"all": [cond("last_seen", "within_last", 7)]}, "rules.all[0].value", "duration"),
        ({"all": [cond("country", "in", [])]}, "rules.all[0].value", "list of 1-100"),
        ({"all": [cond("country", "in", "Sweden")]}, "rules.all[0].value", "list"),
        ({"all": [cond("country", "in", ["a", 2])]}, "rules.all[0].value[1]", "string"),
        ({"all": [cond("total_sessions", "between", [5, 1])]}, "rules.all[0].value", "low"),
        ({"all": [cond("total_sessions", "between", [1])]}, "rules.all[0].value", "[low, high]"),
        ({"all": [cond("total_sessions", "between", [1, "x"])]}, "rules.all[0].value[1]", "num"),
        ({"all": [cond("city", "contains", "")]}, "rules.all[0].value", "non-empty string"),
        ({"all": [cond("custom.plan", "equals", None)]}, "rules.all[0].value", "needs a value"),
        ({"all": [cond("custom.plan", "equals", {"a": 1})]}, "rules.all[0].value", "string"),
        ({"all": [cond("custom.plan", "is_set", "x")]}, "rules.all[0].value", "takes no value"),
        ({"all": [cond("custom.plan", "changed_within", "7d", to=[1])]}, "rules.all[0].to", "str"),
        # extra fields
        ({"all": [cond("country", "equals", "x", colour=1)]}, "rules.all[0].colour", "unknown"),
        ({"all": [cond("country", "equals", "x", to="y")]}, "rules.all[0].to", "changed_within"),
        (
            {"all": [cond("total_sessions", "equals", 1, ignore_case=True)]},
            "rules.all[0].ignore_case",
            "string comparisons",
        ),
        (
            {"all": [cond("country", "equals", "x", ignore_case="yes")]},
            "rules.all[0].ignore_case",
            "true or false",
        ),
    ],
)
def test_malformed_rules_are_refused_with_the_path(rules: Any, path: str, fragment: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(rules)
    assert caught.value.path == path
    assert fragment in caught.value.message


def test_depth_five_and_fifty_conditions_are_allowed() -> None:
    assert isinstance(parse_rules(nested(5)), Group)
    assert len(parse_rules({"any": [OK] * 50}).children) == 50  # type: ignore[union-attr]


def test_values_are_normalized() -> None:
    node = parse_rules(
        {
            "all": [
                cond("first_seen", "after", "2026-11-01T00:00:00Z"),
                cond("first_seen", "before", "12h"),
                cond("last_seen", "within_last", "30m"),
                cond("total_sessions", "between", [1, 3]),
                {"not": cond("custom.plan", "changed_within", "7d", to="VIP", ignore_case=True)},
                cond("country", "in", ["Sweden", "Norway"]),
            ]
        }
    )
    assert isinstance(node, Group)
    after, before, within, between, negated, within_list = node.children
    assert isinstance(after, Condition) and after.value == 1_793_491_200_000
    assert isinstance(before, Condition) and before.value == Relative(12 * HOUR_MS)
    assert isinstance(within, Condition) and within.value == 30 * MINUTE_MS
    assert isinstance(between, Condition) and between.value == (1, 3)
    assert isinstance(negated, Not) and isinstance(negated.child, Condition)
    assert negated.child.value == 7 * DAY_MS and negated.child.to == "VIP"
    assert negated.child.ignore_case and negated.child.path == "rules.all[4].not"
    assert isinstance(within_list, Condition) and within_list.value == ("Sweden", "Norway")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "body"),
        ({"rules": OK}, "name"),
        ({"name": " ", "rules": OK}, "name"),
        ({"name": "x", "description": 5, "rules": OK}, "description"),
        ({"name": "x"}, "rules"),
        ({"name": "x", "rules": OK, "owner": "me"}, "owner"),
        ({"name": "x", "rules": {"all": [cond("nope", "is_set")]}}, "rules.all[0].attribute"),
    ],
)
def test_segment_bodies_are_checked(body: Any, path: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_body(body)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"attribute": "custom.n", "op": "equals", "value": %s}', "value"),
        ('{"attribute": "custom.n", "op": "in", "value": [1, %s]}', "value[1]"),
        ('{"attribute": "total_sessions", "op": "between", "value": [1, %s]}', "value[1]"),
        ('{"attribute": "custom.n", "op": "gt", "value": %s}', "value"),
    ],
)
def test_a_number_past_38_digits_is_named_as_such_not_as_no_number(text: str, path: str) -> None:
    """decode_json reads it as a BigNumber; 'must be a number' said it was not one."""
    with pytest.raises(RuleError) as caught:
        parse_rules(decode_json(text % ("9" * 40)))
    assert caught.value.path == f"rules.{path}"
    assert "38 digits" in caught.value.message, caught.value.message
