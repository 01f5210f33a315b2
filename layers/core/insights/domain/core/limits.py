"""The documented size limits, in one place, and the checks that enforce them.

DynamoDB refuses an item over 400 KB and a number outside its range or
precision, and it refuses it at write time: by then the request that carried
the value has been answered, so the data would be lost (a session that cannot
close, an import slice that fails five times). Every limit here is therefore
checked where the data comes in, per event and per row, with a reason the
sender can act on, and set well inside what DynamoDB accepts.

- Numbers: DynamoDB keeps 38 significant digits and magnitudes from 1e-130
  to below 1e126. Integers keep at most 38 digits; other numbers must lie in
  that range (a float has at most 17 significant digits, so precision holds).
- Per session: at most MAX_SESSION_PROPERTIES distinct properties and
  MAX_SESSION_PROPERTY_BYTES of them (the open session item carries them).
- Per user: at most MAX_CUSTOM_ATTRIBUTES custom attributes and
  MAX_CUSTOM_BYTES of them, far enough below 400 KB that the profile item
  (standard attributes, keys, versions) always fits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Scalar = str | int | float | bool | None  # what a kept value is (admission checks it)

MAX_INT_DIGITS = 38
MAX_NUMBER_MAGNITUDE = 1e126  # exclusive
MIN_NUMBER_MAGNITUDE = 1e-130  # inclusive, for numbers other than zero
_INT_LIMIT = 10**MAX_INT_DIGITS

MAX_SESSION_PROPERTIES = 500
MAX_SESSION_PROPERTY_BYTES = 128 * 1024
MAX_CUSTOM_ATTRIBUTES = 500
MAX_CUSTOM_BYTES = 256 * 1024
# Stored around each value: the name's quotes, its time and source fields.
_ENTRY_OVERHEAD = 48

# Names and values every door shares (README, "Limits").
MAX_UUID_CHARS = 256
MAX_PROPERTY_NAME_CHARS = 128
MAX_STRING_VALUE_CHARS = 1024

MAX_USER_AGENT_CHARS = 512
# An IPv6 address with an interface scope id is at most ~60 characters; a
# longer context.ip is refused before it is parsed (it keyed the geo cache).
MAX_IP_CHARS = 64
MAX_JSON_DEPTH = 64
MAX_QUERY_INT_DIGITS = 9


@dataclass(frozen=True, slots=True)
class BigNumber:
    """A JSON integer literal too long to keep (more than 38 digits).

    Parsed into this marker instead of an int, so a 5,000-digit number costs
    nothing to read (Python refuses int() of over 4,300 digits) and the one
    value is rejected with its field path instead of failing the document.
    """

    text: str

    def __repr__(self) -> str:
        return f"BigNumber({len(self.text)} digits)"


def json_int(text: str) -> int | BigNumber:
    """``json.loads(parse_int=...)``: integers over 38 digits become BigNumber."""
    digits = len(text) - (text[0] == "-")
    return BigNumber(text) if digits > MAX_INT_DIGITS else int(text)


def json_float(text: str) -> float:
    """``json.loads(parse_float=...)``: a literal too small for a double (``1e-400``)
    reads as the smallest one of its sign, not 0.0, so the range check refuses
    it as it refuses ``1e-200`` instead of storing 0. (``1e400`` reads as inf,
    which the check refuses as not finite.)"""
    value = float(text)
    if value == 0.0:
        mantissa = text.lower().partition("e")[0]
        if any(digit in mantissa for digit in "123456789"):
            return math.copysign(5e-324, value)
    return value


def _big_text(value: Any) -> str:
    if isinstance(value, BigNumber):
        return value.text
    raise TypeError(f"{type(value).__name__} is not JSON")


def json_bytes(doc: Any) -> int:
    """The compact UTF-8 size of a decoded JSON document, near enough for a cap.

    Any document decode_json gives can be measured: a BigNumber counts as its
    digits (plus two quotes), a lone surrogate as the 3 bytes of its escape's
    UTF-8 form. RecursionError is left to the caller (nesting has its own cap).
    """
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=_big_text)
    return len(text.encode("utf-8", "surrogatepass"))


def number_problem(value: Any) -> str | None:
    """Why a number cannot be stored as it is, or None when it can."""
    if isinstance(value, BigNumber):
        return f"number has more than {MAX_INT_DIGITS} digits (DynamoDB's precision)"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not -_INT_LIMIT < value < _INT_LIMIT:
            return f"number has more than {MAX_INT_DIGITS} digits (DynamoDB's precision)"
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return "number must be finite"
        size = abs(value)
        if size >= MAX_NUMBER_MAGNITUDE:
            return "number is too large: at most 1e126 in magnitude (DynamoDB's range)"
        if 0 < size < MIN_NUMBER_MAGNITUDE:
            return "number is too small: at least 1e-130 in magnitude, or 0 (DynamoDB's range)"
    return None


def lone_surrogate(text: str) -> bool:
    """A string that is not valid Unicode (a lone UTF-16 surrogate from a JSON escape)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def find_lone_surrogate(doc: Any, path: str = "") -> str | None:
    """The path of the first key or string holding a lone surrogate, or None.

    Iterative, so a deeply nested document cannot exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [(path, doc)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, str):
            if lone_surrogate(value):
                return at or "body"
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{at}.{key}" if at else str(key)
                if lone_surrogate(key):
                    return f"{at}.<key>" if at else "<key>"
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{at}[{i}]", item) for i, item in enumerate(value))
    return None


def too_deep(doc: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether containers nest deeper than `limit` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    return False


def whole_number(raw: str | None, low: int, high: int) -> int | None:
    """A query-string integer in [low, high], or None when it is not one.

    ASCII digits only: ``"²".isdigit()`` is true but ``int("²")`` fails, and a
    5,000-digit value would make int() refuse (or cost) more than it is worth.
    """
    if raw is None or not raw.isascii() or not raw.isdecimal():
        return None
    if len(raw) > MAX_QUERY_INT_DIGITS:
        return None
    value = int(raw)
    return value if low <= value <= high else None


# ------------------------------------------------------------ value sizes
def value_bytes(name: str, value: Any) -> int:
    """What one stored attribute (name and value) costs, near enough for a cap."""
    if isinstance(value, str):
        size = len(value.encode("utf-8", "surrogatepass"))
    elif value is None or isinstance(value, bool):
        size = 1
    else:
        size = 21  # DynamoDB numbers take at most 21 bytes
    return len(name.encode("utf-8", "surrogatepass")) + size + _ENTRY_OVERHEAD


# The most one attribute can take (a 128-character name, a 1,024-character
# value, 4 bytes a character): this many attributes always fit the byte cap,
# so the common case is decided by counting alone.
_MAX_VALUE_BYTES = 4 * (128 + 1024) + _ENTRY_OVERHEAD


def surely_fits(count: int) -> bool:
    """Whether `count` attributes fit both per-user caps whatever their values."""
    return count * _MAX_VALUE_BYTES <= MAX_CUSTOM_BYTES and count <= MAX_CUSTOM_ATTRIBUTES


def values_bytes(values: Iterable[tuple[str, Any]]) -> int:
    return sum(value_bytes(name, value) for name, value in values)


@dataclass(frozen=True, slots=True)
class Usage:
    """How many attributes (or session properties) a user holds, and their bytes."""

    count: int
    size: int

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Usage:
        """From name -> value (a bare value, or anything with a ``.value``)."""
        size = 0
        for name, held in values.items():
            size += value_bytes(name, getattr(held, "value", held))
        return cls(len(values), size)


def after_updates(
    current: Mapping[str, Any], updates: Mapping[str, Any], usage: Usage | None = None
) -> Usage:
    """Usage once `updates` (name -> value) are merged in, assuming every update wins."""
    base = usage or Usage.of(current)
    count, size = base.count, base.size
    for name, value in updates.items():
        new = value_bytes(name, getattr(value, "value", value))
        held = current.get(name)
        if held is None:
            count += 1
            size += new
        else:
            size += new - value_bytes(name, getattr(held, "value", held))
    return Usage(count, size)


def session_overflow(usage: Usage) -> str | None:
    if usage.count > MAX_SESSION_PROPERTIES:
        return (
            f"the user's open session would hold {usage.count} distinct properties; "
            f"at most {MAX_SESSION_PROPERTIES} per session"
        )
    if usage.size > MAX_SESSION_PROPERTY_BYTES:
        return (
            f"the user's open session would hold {usage.size} bytes of properties; "
            f"at most {MAX_SESSION_PROPERTY_BYTES} per session"
        )
    return None


def _caps(before: Usage | None) -> tuple[int, int]:
    """(count, bytes) a user may reach: the caps, or what it held before if more.

    A user already past a cap (the caps were lowered, or a deprovisioning flag
    went in: ``admission.admit_to_user``'s `always`) can still be updated,
    only not grown.
    """
    if before is None:
        return MAX_CUSTOM_ATTRIBUTES, MAX_CUSTOM_BYTES
    return max(MAX_CUSTOM_ATTRIBUTES, before.count), max(MAX_CUSTOM_BYTES, before.size)


def _too_many(count: int) -> str:
    return (
        f"the user would hold {count} custom attributes; at most {MAX_CUSTOM_ATTRIBUTES} per user"
    )


def _too_big(size: int) -> str:
    return (
        f"the user's custom attributes would take {size} bytes; at most {MAX_CUSTOM_BYTES} per user"
    )


def custom_overflow(usage: Usage, before: Usage | None = None) -> str | None:
    """Why `usage` is past the per-user caps (or past `before`, if that was more), or None."""
    count_cap, size_cap = _caps(before)
    if usage.count > count_cap:
        return _too_many(usage.count)
    if usage.size > size_cap:
        return _too_big(usage.size)
    return None


def growth_problem(step: Usage, prev: Usage, before: Usage) -> str | None:
    """Why one more value (prev -> step) cannot be taken, or None.

    Refused only when it grows a measure that is then past its cap: updating
    a user that sits over the count cap is fine as long as it adds no name.
    """
    count_cap, size_cap = _caps(before)
    if step.count > count_cap and step.count > prev.count:
        return _too_many(step.count)
    if step.size > size_cap and step.size > prev.size:
        return _too_big(step.size)
    return None


def fit_custom(
    before: Mapping[str, Any], after: dict[str, Any], keep: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], list[str]]:
    """`after` within the per-user caps, and the names whose change was left out.

    The last line of defence for the one merge every writer shares: the edge
    checks (per event, per session, per row, ``admission.admit_to_user``)
    keep almost every write inside the caps, but a user's attributes also
    grow across sessions, and a close must never fail on the item size. New
    names are left out first (in name order, so every retry keeps the same
    ones), then growth of existing ones; never a name in `keep` (a
    deprovisioning flag), and never below what the user held before.
    """
    if surely_fits(len(after)):
        return after, []
    usage = Usage.of(after)
    if custom_overflow(usage) is None:
        return after, []
    count_cap, size_cap = _caps(Usage.of(before))
    fitted = dict(after)
    dropped: list[str] = []
    for name in sorted((n for n in after if n not in before and n not in keep), reverse=True):
        if usage.count <= count_cap and usage.size <= size_cap:
            break
        usage = Usage(usage.count - 1, usage.size - value_bytes(name, after[name].value))
        del fitted[name]
        dropped.append(name)
    grown = (n for n in after if n in before and after[n] is not before[n] and n not in keep)
    for name in sorted(grown):
        if usage.size <= size_cap:
            break
        growth = value_bytes(name, after[name].value) - value_bytes(name, before[name].value)
        if growth > 0:
            fitted[name] = before[name]
            usage = Usage(usage.count, usage.size - growth)
            dropped.append(name)
    return fitted, dropped


def report_dropped(count: int) -> None:
    """Make a cap's refusal at close visible: a metric and a warning, never a value.

    The one side effect in this module: the merge that calls it is shared by
    every close path, so this is where a refusal is known. Powertools'
    Logger and Metrics only print (no AWS call), which keeps this testable.
    """
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    Metrics().add_metric(name="AttributesOverLimit", unit=MetricUnit.Count, value=count)
    Logger(child=True).warning(
        "custom attributes over the per-user limits were not stored",
        extra={"attributes": count},
    )


def admit_to_session(
    held: Mapping[str, Any], events: Iterable[Any]
) -> tuple[list[Any], list[tuple[Any, str]]]:
    """Split one user's events into those the open session can take and the refused.

    `held`: the open session's properties (name -> Stamped); events in
    request order, each with ``.properties``. An event whose properties would
    take the session past MAX_SESSION_PROPERTIES or MAX_SESSION_PROPERTY_BYTES
    is refused whole, so the session item never outgrows DynamoDB's 400 KB.
    """
    events = list(events)
    names = len(held) + sum(len(e.properties) for e in events)
    if names <= MAX_SESSION_PROPERTIES and names * _MAX_VALUE_BYTES <= MAX_SESSION_PROPERTY_BYTES:
        return events, []
    current: dict[str, Any] = dict(held)
    usage = Usage.of(current)
    kept: list[Any] = []
    refused: list[tuple[Any, str]] = []
    for event in events:
        after = after_updates(current, event.properties, usage)
        problem = session_overflow(after)
        if problem is not None:
            refused.append((event, problem))
            continue
        kept.append(event)
        current.update(event.properties)
        usage = after
    return kept, refused
