"""The one evaluator: is this profile in this segment, now?

Used by the per-user call, after every index query and by the preview, so the
answer cannot differ between them.

Semantics (documented in docs/segments.md):
- Expired users (180 days inactive) and users with no closed session are
  never members, whatever the rules say.
- Every operator is false on an unset attribute except `is_not_set`, the
  negated ones included: `not_equals "x"` means "set, and not x". Wrap a
  condition in `{"not": ...}` to include users without the attribute.
- A custom value of the wrong type for the operator (a number under
  `contains`) is false, like an unset one.
- Times are epoch ms; relative times count back from `now_ms`, inclusive:
  `within_last "7d"` holds for a value exactly 7 days old.
"""

from __future__ import annotations

from typing import Any

from insights.domain.core.profile import Profile, same_value
from insights.domain.core.timefmt import TimeFormatError, parse_time
from insights.domain.segments.rules import (
    Condition,
    Node,
    Not,
    resolve_time,
)

_UNSET = object()


def is_member(node: Node, profile: Profile | None, now_ms: int) -> bool:
    if profile is None or not profile.is_visible(now_ms):
        return False
    return evaluate(node, profile, now_ms)


def evaluate(node: Node, profile: Profile, now_ms: int) -> bool:
    if isinstance(node, Condition):
        return _condition(node, profile, now_ms)
    if isinstance(node, Not):
        return not evaluate(node.child, profile, now_ms)
    if node.kind == "all":
        return all(evaluate(child, profile, now_ms) for child in node.children)
    return any(evaluate(child, profile, now_ms) for child in node.children)


_DURATIONS = ("total_session_duration", "avg_session_duration", "avg_time_between_sessions")


def standard_value(profile: Profile, name: str) -> Any:
    """The value a rule sees: times in epoch ms, durations in seconds (as the API shows)."""
    if name in _DURATIONS:
        return profile.standard()[name]  # the same rounding as GET /v1/users/{uuid}
    return getattr(profile, name)


def _condition(c: Condition, profile: Profile, now_ms: int) -> bool:
    custom = None
    if c.attr_type == "custom":
        custom = profile.custom.get(c.attribute[len("custom.") :])
        value = _UNSET if custom is None or custom.value is None else custom.value
    else:
        raw = standard_value(profile, c.attribute)
        value = _UNSET if raw is None else raw
    if c.op == "is_set":
        return value is not _UNSET
    if c.op == "is_not_set":
        return value is _UNSET
    if value is _UNSET:
        return False
    if c.op == "changed_within":
        assert custom is not None
        if custom.changed_since < now_ms - c.value:
            return False
        return not c.has_to or _equal(value, c.to, c.ignore_case)
    if c.op in ("equals", "not_equals", "in", "not_in"):
        return _equality(c, value)
    if c.op in ("contains", "not_contains", "starts_with", "ends_with"):
        return _string_op(c, value)
    if c.op in ("before", "after", "within_last", "not_within_last"):
        return _time_op(c, value, now_ms)
    return _order_op(c, value, now_ms)


def _equality(c: Condition, value: Any) -> bool:
    if c.attr_type == "timestamp":
        value = as_time(value)
    if c.op in ("equals", "not_equals"):
        hit = _equal(value, c.value, c.ignore_case)
        if c.op == "not_equals":
            # "set and different", and only among values of a comparable type
            return not hit and _comparable(value, c.value)
        return hit
    hit = any(_equal(value, v, c.ignore_case) for v in c.value)
    if c.op == "not_in":
        return not hit and any(_comparable(value, v) for v in c.value)
    return hit


def _comparable(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, int | float):
        return isinstance(b, int | float)
    return isinstance(a, str) and isinstance(b, str)


def _equal(a: Any, b: Any, ignore_case: bool) -> bool:
    if ignore_case and isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return same_value(a, b)


def _string_op(c: Condition, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    needle: str = c.value
    if c.ignore_case:
        value, needle = value.casefold(), needle.casefold()
    if c.op == "contains":
        return needle in value
    if c.op == "not_contains":
        return needle not in value
    if c.op == "starts_with":
        return value.startswith(needle)
    return value.endswith(needle)


def as_time(value: Any) -> Any:
    """Custom values used as times: epoch ms numbers or ISO-8601 strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return parse_time(value)
        except TimeFormatError:
            return None
    return None


def _time_op(c: Condition, value: Any, now_ms: int) -> bool:
    at = as_time(value)
    if at is None:
        return False
    if c.op == "before":
        return at < resolve_time(c.value, now_ms)
    if c.op == "after":
        return at > resolve_time(c.value, now_ms)
    since = now_ms - c.value
    if c.op == "within_last":
        return since <= at <= now_ms
    return at < since  # not_within_last


def _order_op(c: Condition, value: Any, now_ms: int) -> bool:
    operand = c.value
    if c.attr_type == "timestamp":
        value = as_time(value)
        if c.op == "between":
            operand = (resolve_time(operand[0], now_ms), resolve_time(operand[1], now_ms))
        else:
            operand = resolve_time(operand, now_ms)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if c.op == "gt":
        return value > operand
    if c.op == "gte":
        return value >= operand
    if c.op == "lt":
        return value < operand
    if c.op == "lte":
        return value <= operand
    low, high = operand
    return low <= value <= high
