"""Segment rules: parsing and validation into a typed tree, every error with its node path.

RULES is a tree of groups `{"all": [...]}`, `{"any": [...]}`, `{"not": RULE}`
and conditions `{"attribute": A, "op": OP, "value": V}`. Validation happens
once, when a segment is saved or previewed; the evaluator and the planner
work on the parsed tree and never see malformed input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from insights.domain.core.limits import MAX_INT_DIGITS, BigNumber
from insights.domain.core.timefmt import DAY_MS, TimeFormatError, parse_duration, parse_time

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_LIST_VALUES = 100
MAX_STRING = 1024
MAX_CUSTOM_NAME = 128
MAX_DURATION_MS = 3650 * DAY_MS

AttrType = Literal["timestamp", "number", "string", "custom"]

STANDARD_TYPES: dict[str, AttrType] = {
    "first_seen": "timestamp",
    "last_seen": "timestamp",
    "total_sessions": "number",
    "total_session_duration": "number",
    "avg_session_duration": "number",
    "avg_time_between_sessions": "number",
    "country": "string",
    "region": "string",
    "city": "string",
    "browser_name": "string",
    "browser_version": "string",
}

STRING_OPS = frozenset({"contains", "not_contains", "starts_with", "ends_with"})
EQUALITY_OPS = frozenset({"equals", "not_equals", "in", "not_in"})
ORDER_OPS = frozenset({"gt", "gte", "lt", "lte", "between"})
TIME_OPS = frozenset({"before", "after", "within_last", "not_within_last"})
PRESENCE_OPS = frozenset({"is_set", "is_not_set"})
ALL_OPS = STRING_OPS | EQUALITY_OPS | ORDER_OPS | TIME_OPS | PRESENCE_OPS | {"changed_within"}

# Which operators fit which attribute type.
OPS_BY_TYPE: dict[AttrType, frozenset[str]] = {
    "string": STRING_OPS | EQUALITY_OPS | PRESENCE_OPS,
    "number": EQUALITY_OPS | ORDER_OPS | PRESENCE_OPS,
    "timestamp": EQUALITY_OPS | ORDER_OPS | TIME_OPS | PRESENCE_OPS,
    # Custom values are strings, numbers or booleans decided by the sender;
    # an operator that does not fit the value a user holds is simply false.
    "custom": ALL_OPS,
}
# ignore_case is accepted where a string is compared.
IGNORE_CASE_OPS = STRING_OPS | EQUALITY_OPS | {"changed_within"}

Scalar = str | int | float | bool


class RuleError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class Relative:
    """A time relative to the moment of the query: now - ms."""

    ms: int


TimeValue = int | Relative  # absolute epoch ms, or relative to now


@dataclass(frozen=True, slots=True)
class Condition:
    path: str
    attribute: str  # "first_seen" or "custom.<name>"
    attr_type: AttrType
    op: str
    # Normalized operand: a Scalar, a tuple of Scalars (in/not_in), a
    # (low, high) pair (between), a TimeValue, a duration in ms, or None.
    value: Any = None
    ignore_case: bool = False
    to: Scalar | None = None  # changed_within ... "to": value
    has_to: bool = False

    @property
    def custom_name(self) -> str | None:
        return self.attribute[len("custom.") :] if self.attr_type == "custom" else None


@dataclass(frozen=True, slots=True)
class Group:
    path: str
    kind: Literal["all", "any"]
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    path: str
    child: Node


Node = Condition | Group | Not


def parse_rules(raw: Any, path: str = "rules") -> Node:
    counter = [0]
    node = _node(raw, path, 1, counter)
    return node


def _node(raw: Any, path: str, depth: int, counter: list[int]) -> Node:
    if not isinstance(raw, dict) or not raw:
        raise RuleError(
            path,
            "must be a group ({'all': [...]}, {'any': [...]}, {'not': ...}) "
            "or a condition ({'attribute', 'op', 'value'})",
        )
    group_keys = [k for k in ("all", "any", "not") if k in raw]
    if group_keys:
        if len(raw) != 1:
            extra = sorted(k for k in raw if k != group_keys[0])
            raise RuleError(f"{path}.{extra[0]}", "a group holds exactly one of all/any/not")
        if depth > MAX_DEPTH:
            raise RuleError(path, f"groups nest at most {MAX_DEPTH} deep")
        key = group_keys[0]
        inner = f"{path}.{key}"
        if key == "not":
            return Not(path, _node(raw["not"], inner, depth + 1, counter))
        children = raw[key]
        if not isinstance(children, list) or not children:
            raise RuleError(inner, "must be a non-empty list of rules")
        return Group(
            path,
            key,  # type: ignore[arg-type]
            tuple(
                _node(child, f"{inner}[{i}]", depth + 1, counter)
                for i, child in enumerate(children)
            ),
        )
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise RuleError(path, f"a segment holds at most {MAX_CONDITIONS} conditions")
    return _condition(raw, path)


_CONDITION_KEYS = {"attribute", "op", "value", "ignore_case", "to"}


def _condition(raw: dict[str, Any], path: str) -> Condition:
    for key in raw:
        if key not in _CONDITION_KEYS:
            raise RuleError(
                f"{path}.{key}",
                "unknown field; a condition has attribute, op, value (and ignore_case, to)",
            )
    attribute, attr_type = _attribute(raw.get("attribute"), f"{path}.attribute")
    op = raw.get("op")
    if not isinstance(op, str) or op not in ALL_OPS:
        raise RuleError(f"{path}.op", f"unknown operator; one of: {', '.join(sorted(ALL_OPS))}")
    if op not in OPS_BY_TYPE[attr_type]:
        fitting = ", ".join(sorted(OPS_BY_TYPE[attr_type]))
        raise RuleError(
            f"{path}.op",
            f"'{op}' does not fit {attr_type} attribute '{attribute}'; use one of: {fitting}",
        )
    ignore_case = raw.get("ignore_case", False)
    if "ignore_case" in raw:
        if not isinstance(ignore_case, bool):
            raise RuleError(f"{path}.ignore_case", "must be true or false")
        if op not in IGNORE_CASE_OPS or attr_type in ("number", "timestamp"):
            raise RuleError(
                f"{path}.ignore_case", f"only applies to string comparisons, not '{op}'"
            )
    if "to" in raw and op != "changed_within":
        raise RuleError(f"{path}.to", "only applies to changed_within")
    value_path = f"{path}.value"
    if op in PRESENCE_OPS:
        if "value" in raw:
            raise RuleError(value_path, f"'{op}' takes no value")
        return Condition(path, attribute, attr_type, op)
    if "value" not in raw:
        raise RuleError(value_path, f"'{op}' needs a value")
    value = _operand(raw["value"], value_path, op, attr_type)
    to: Scalar | None = None
    if "to" in raw:
        to = _scalar(raw["to"], f"{path}.to", "custom")
    return Condition(path, attribute, attr_type, op, value, ignore_case, to, has_to="to" in raw)


def _attribute(raw: Any, path: str) -> tuple[str, AttrType]:
    if not isinstance(raw, str) or not raw:
        raise RuleError(path, "must be a standard attribute name or 'custom.<name>'")
    if raw.startswith("custom."):
        name = raw[len("custom.") :]
        if not name or len(name) > MAX_CUSTOM_NAME:
            raise RuleError(path, f"custom attribute names are 1-{MAX_CUSTOM_NAME} characters")
        return raw, "custom"
    if raw not in STANDARD_TYPES:
        known = ", ".join(STANDARD_TYPES)
        raise RuleError(
            path,
            f"unknown standard attribute '{raw[:64]}' (names are "
            f"case-sensitive): {known}; custom attributes are 'custom.<name>'",
        )
    return raw, STANDARD_TYPES[raw]


def _operand(raw: Any, path: str, op: str, attr_type: AttrType) -> Any:
    if op in ("in", "not_in"):
        if not isinstance(raw, list) or not raw or len(raw) > MAX_LIST_VALUES:
            raise RuleError(path, f"must be a list of 1-{MAX_LIST_VALUES} values")
        return tuple(_scalar(v, f"{path}[{i}]", attr_type) for i, v in enumerate(raw))
    if op in ("equals", "not_equals"):
        return _scalar(raw, path, attr_type)
    if op in STRING_OPS:
        if not isinstance(raw, str) or not raw or len(raw) > MAX_STRING:
            raise RuleError(path, f"must be a non-empty string of at most {MAX_STRING} characters")
        return raw
    if op == "between":
        if not isinstance(raw, list) or len(raw) != 2:
            raise RuleError(path, "must be a list [low, high]")
        if attr_type == "timestamp":
            # ["14d", "7d"]: from 14 days before the query to 7 days before it.
            low_t = _time_value(raw[0], f"{path}[0]")
            high_t = _time_value(raw[1], f"{path}[1]")
            if _certainly_reversed(low_t, high_t):
                raise RuleError(
                    path,
                    "low must not be above high (a relative low like '14d' is the "
                    'earlier time: ["14d", "7d"])',
                )
            return (low_t, high_t)
        low = _ordered(raw[0], f"{path}[0]", attr_type)
        high = _ordered(raw[1], f"{path}[1]", attr_type)
        if high < low:
            raise RuleError(path, "low must not be above high")
        return (low, high)
    if op in ORDER_OPS:
        return _ordered(raw, path, attr_type)
    if op in ("before", "after"):
        return _time_value(raw, path)
    # within_last, not_within_last, changed_within
    return _duration(raw, path)


def _scalar(raw: Any, path: str, attr_type: AttrType) -> Scalar:
    _not_big(raw, path)
    if attr_type == "timestamp":
        return _absolute_time(raw, path)
    if attr_type == "number":
        return _number(raw, path)
    if attr_type == "string":
        if not isinstance(raw, str) or len(raw) > MAX_STRING:
            raise RuleError(path, f"must be a string of at most {MAX_STRING} characters")
        return raw
    if isinstance(raw, bool) or (isinstance(raw, str) and len(raw) <= MAX_STRING):
        return raw
    if isinstance(raw, int | float):
        return _number(raw, path)
    raise RuleError(path, "must be a string, a number or true/false")


def _not_big(raw: Any, path: str) -> None:
    # decode_json reads an integer literal over 38 digits as a BigNumber marker:
    # a number, but not one a user's attribute can hold.
    if isinstance(raw, BigNumber):
        raise RuleError(path, f"a number of more than {MAX_INT_DIGITS} digits: no value holds one")


def _number(raw: Any, path: str) -> int | float:
    _not_big(raw, path)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw or abs(raw) > 1e300:
        raise RuleError(path, "must be a number")
    return raw


def _ordered(raw: Any, path: str, attr_type: AttrType) -> int | float | Relative:
    if attr_type == "timestamp":
        return _time_value(raw, path)  # gt "7d": later than 7 days before the query
    return _number(raw, path)  # number and custom: numbers


def _certainly_reversed(low: TimeValue, high: TimeValue) -> bool:
    """Is low above high whatever the query time? (Mixed bounds are judged at query time.)"""
    if isinstance(low, Relative) and isinstance(high, Relative):
        return low.ms < high.ms
    if isinstance(low, int) and isinstance(high, int):
        return high < low
    return False


def _absolute_time(raw: Any, path: str) -> int:
    try:
        return parse_time(raw)
    except TimeFormatError as exc:
        raise RuleError(path, f"{exc} (a timestamp: ISO-8601 with offset, or epoch ms)") from None


def _duration(raw: Any, path: str) -> int:
    try:
        ms = parse_duration(raw)
    except TimeFormatError:
        raise RuleError(path, "must be a duration like '30m', '12h' or '7d'") from None
    if not 0 < ms <= MAX_DURATION_MS:
        raise RuleError(path, "must be more than zero and at most 3650 days")
    return ms


def _time_value(raw: Any, path: str) -> TimeValue:
    """An absolute timestamp, or a duration meaning that long before the query."""
    if isinstance(raw, str) and raw[-1:] in ("s", "m", "h", "d", "w") and raw[:-1].isdecimal():
        return Relative(_duration(raw, path))
    try:
        return parse_time(raw)
    except TimeFormatError:
        raise RuleError(
            path, "must be a timestamp (ISO-8601 with offset, or epoch ms) or a duration like '7d'"
        ) from None


def resolve_time(value: TimeValue, now_ms: int) -> int:
    return now_ms - value.ms if isinstance(value, Relative) else value
