"""Admission: the one set of checks every value from outside passes, and its verdicts.

Values come in through many doors: event properties (``/v1/events``, the
browser SDK), Segment traits and opted-in properties, CSV and JSON Lines
cells, Salesforce fields, SCIM attributes, OIDC claims and SAML attributes.
Each value gets its verdict here, by the same rules whatever the door:

- **type**: a string, number, boolean or null; a declared type (a file's
  mapping, an IdP's claim mapping, a Salesforce field) is one of
  ``VALUE_TYPES`` and the value must parse as it;
- **numbers**: DynamoDB's range and 38-digit precision
  (``limits.number_problem``; a JSON integer of more than 38 digits arrives
  as ``limits.BigNumber`` and is refused here, never read into an int);
- **strings**: valid Unicode (a lone UTF-16 surrogate from a JSON escape is
  refused: no UTF-8 store takes one) and at most MAX_STRING_VALUE_CHARS;
- **names and uuids**: their lengths, valid Unicode;
- **nesting**: a value is a scalar (whole documents are capped by
  ``limits.MAX_JSON_DEPTH``);
- **per user**: ``admit_to_user`` (500 custom attributes and 256 KB,
  counting what the user already holds).

A verdict is a value or a reason (ValueError's message, a ``Rejection``);
each door only maps reasons to its wire format (a rejected entry, an error
report row, a SCIM error, a sync report line, a refused claim).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from insights.domain.core import limits
from insights.domain.core.attributes import Rejection, Row
from insights.domain.core.limits import (
    MAX_PROPERTY_NAME_CHARS,
    MAX_STRING_VALUE_CHARS,
    MAX_UUID_CHARS,
    BigNumber,
    Scalar,
    Usage,
    json_float,
    lone_surrogate,
    number_problem,
    value_bytes,
)
from insights.domain.core.sessions import Retraction, Stamped, merge_props, newer
from insights.domain.core.timefmt import TimeFormatError, format_time, parse_time

ValueType = Literal["string", "number", "date", "boolean"]
VALUE_TYPES: tuple[ValueType, ...] = ("string", "number", "date", "boolean")

_NUMBER = re.compile(r"^[+-]?(?:(?P<whole>\d+)|\d+\.\d*|\.\d+)(?P<exponent>[eE][+-]?\d+)?$")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
NOT_UNICODE = "holds a lone UTF-16 surrogate (not valid Unicode)"


# --------------------------------------------------------- names and strings
def uuid_problem(uuid: str) -> str | None:
    """Why a string cannot name a user (every door's uuid follows these rules)."""
    if not uuid or not uuid.strip():
        return "uuid is empty or blank"
    if len(uuid) > MAX_UUID_CHARS:
        return f"uuid is longer than {MAX_UUID_CHARS} characters"
    if lone_surrogate(uuid):
        return f"uuid {NOT_UNICODE}"
    return None


def name_problem(name: Any) -> str | None:
    """Why a key cannot be an attribute name (1-128 characters of valid Unicode), or None."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_PROPERTY_NAME_CHARS:
        return f"attribute names must be 1-{MAX_PROPERTY_NAME_CHARS} characters"
    if lone_surrogate(name):
        return f"the name {NOT_UNICODE}"
    return None


@dataclass(frozen=True, slots=True)
class Protected:
    """The account's protected_attributes: names only the secret key's doors set."""

    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, patterns: Iterable[str]) -> Protected:
        listed = list(patterns)
        return cls(
            frozenset(p for p in listed if not p.endswith("*")),
            tuple(p[:-1] for p in listed if p.endswith("*")),
        )

    def problem(self, name: str) -> str | None:
        """Why a client (the write key) may not set `name`, or None."""
        if name in self.names or name.startswith(self.prefixes):
            return (
                f"{printable(name)} is a protected attribute: only imports, integrations and "
                "identity providers set it (the account's protected_attributes)"
            )
        return None


NOTHING_PROTECTED = Protected()


def string_problem(text: str) -> str | None:
    if len(text) > MAX_STRING_VALUE_CHARS:
        return f"string longer than {MAX_STRING_VALUE_CHARS} characters"
    if lone_surrogate(text):
        return NOT_UNICODE
    return None


def value_problem(value: Any) -> str | None:
    """Why a JSON value cannot be kept as it is (no declared type), or None."""
    if isinstance(value, str):
        return string_problem(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | BigNumber):
        return number_problem(value)
    if isinstance(value, dict | list):
        return f"{'an object' if isinstance(value, dict) else 'a list'} is not a value"
    return "value must be a string, number, boolean or null"


def printable(name: str) -> str:
    """A name as echoed in a reason: bounded, and printable whatever it holds."""
    return name[:64].encode("utf-8", "backslashreplace").decode("utf-8")


# ------------------------------------------------------------- typed values
def parse_value(cell: Any, kind: ValueType | None) -> Scalar:
    """A value as its declared type (kind None: a JSON value keeps its own type).

    ValueError's message is the reason, for the door to report.
    """
    if isinstance(cell, str):
        return FROM_TEXT[kind or "string"](cell)
    if kind is None:
        if isinstance(cell, bool):
            return cell
        if isinstance(cell, int | float | BigNumber):
            return _parse_number(cell)
        raise ValueError("must be a string, number or boolean")
    if kind == "string":
        if isinstance(cell, bool):
            return "true" if cell else "false"
        if isinstance(cell, BigNumber):
            return _string_from_text(cell.text)
        if isinstance(cell, int | float):
            return _string_from_text(number_text(cell))
        raise ValueError("must be a string, number or boolean")
    if kind == "number":
        return _parse_number(cell)
    if kind == "boolean":
        if isinstance(cell, bool):
            return cell
        raise ValueError("not a boolean (true/false, yes/no, 1/0)")
    raise ValueError("not a date (ISO-8601, e.g. 2026-11-28 or 2026-11-28T09:30:00Z)")


def _string_from_text(text: str) -> str:
    problem = string_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def _number_from_text(cell: str) -> int | float:
    text = cell.strip()
    match = _NUMBER.match(text) if len(text) <= 64 else None
    if match is None:
        raise ValueError("not a number")
    value: int | float = (
        # json_float: "1e-400" is too small to keep, not 0
        int(text) if match["whole"] is not None and match["exponent"] is None else json_float(text)
    )
    problem = number_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _boolean_from_text(cell: str) -> bool:
    word = cell.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("not a boolean (true/false, yes/no, 1/0)")


def _date_from_text(cell: str) -> str:
    """ISO-8601 date (midnight UTC) or date-time with an offset; kept as ISO UTC."""
    text = cell.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a date: {printable(text)!r}") from None
        return f"{day.isoformat()}T00:00:00.000Z"  # format_time of that midnight
    try:
        return format_time(parse_time(text)) or ""
    except TimeFormatError as exc:
        raise ValueError(f"not a date: {exc}") from None


# How a text value (every CSV cell, a JSON string, an XML attribute) becomes each type.
FROM_TEXT: dict[ValueType, Callable[[str], Scalar]] = {
    "string": _string_from_text,
    "number": _number_from_text,
    "boolean": _boolean_from_text,
    "date": _date_from_text,
}


def number_text(value: int | float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _parse_number(cell: Any) -> int | float:
    if isinstance(cell, bool):
        raise ValueError("not a number")
    if isinstance(cell, int | float | BigNumber):
        problem = number_problem(cell)
        if problem is not None:
            raise ValueError(problem)
        assert not isinstance(cell, BigNumber)
        return cell
    if not isinstance(cell, str):
        raise ValueError("not a number")
    return _number_from_text(cell)


# -------------------------------------------------- identity providers' values
def parse_target(raw: Any) -> tuple[str, ValueType]:
    """An IdP mapping's target: ``"name"`` or ``{"name": ..., "type": ...}`` (default string).

    Shared by OIDC claims, SCIM attributes and SAML attributes; ValueError
    names what is wrong, the caller adds which entry.
    """
    name, kind = raw, "string"
    if isinstance(raw, dict):
        extra = sorted(set(raw) - {"name", "type"})
        if extra:
            raise ValueError(f"unknown field {printable(str(extra[0]))!r}; known: name, type")
        name, kind = raw.get("name"), raw.get("type", "string")
    if name_problem(name) is not None:
        raise ValueError(f"the attribute name must be 1-{MAX_PROPERTY_NAME_CHARS} characters")
    if kind not in VALUE_TYPES:
        raise ValueError(f"type must be one of {', '.join(VALUE_TYPES)}")
    return name, kind


def shared_target(targets: Mapping[str, tuple[str, ValueType]]) -> str | None:
    """Why two entries of an IdP mapping cannot be kept (they name one attribute), or None.

    Each sign-in would write both under that name, and one would silently win."""
    seen: dict[str, str] = {}
    for source, (name, _kind) in targets.items():
        if name in seen:
            return (
                f"{printable(seen[name])!r} and {printable(source)!r} are both kept as "
                f"{printable(name)!r}: one value would silently replace the other"
            )
        seen[name] = source
    return None


def idp_value(value: Any, kind: ValueType) -> Scalar:
    """An IdP's claim or attribute as its mapped type.

    Several values (a list claim, a multi-valued SAML attribute) make one
    string, comma-joined (groups: "admins,sales"); any other type takes one.
    """
    if isinstance(value, list):
        if kind == "string":
            parts = []
            for item in value:
                if not isinstance(item, str | int | float) or isinstance(item, bool):
                    raise ValueError("a list of strings or numbers makes a string; this is not one")
                parts.append(item if isinstance(item, str) else number_text(item))
            value = ",".join(parts)
        elif len(value) == 1:
            value = value[0]
        else:
            raise ValueError(f"{len(value)} values, but type {kind} takes one")
    return parse_value(value, kind)


# ------------------------------------------------------------------ per user
def admit_to_user(
    held: Mapping[str, Any],
    rows: list[Row],
    *,
    atomic: bool,
    always: frozenset[str] = frozenset(),
    erased_at: int | None = None,
) -> tuple[dict[str, Stamped], list[Rejection]]:
    """The values of one user's rows that fit the per-user caps, and the refused ones.

    `held`: the user's live custom attributes (name -> anything with
    ``.value`` and ``.stamped()``; empty for a new or expired record). Rows
    are taken in row order, as if applied one by one: a value older than the
    one it meets changes nothing and is neither counted nor refused, nor is
    one from before an erasure. A value is refused when it grows a measure
    past its cap (``limits.growth_problem``), so updating a name the user
    holds never is unless it grows the bytes past the cap.

    `atomic`: a row with a refused value is refused whole (a Rejection with
    column "": files, Salesforce records, a SCIM request); otherwise each
    value alone (column: its name; Segment traits, OIDC claims, SAML
    attributes). `always`: names never refused (SCIM's active flag, so a
    deprovisioning always lands; one boolean fits the caps' headroom).
    """
    ordered = sorted(rows, key=lambda r: r.number)
    if limits.surely_fits(len(held) + sum(len(r.values) for r in ordered)):
        kept: dict[str, Stamped] = {}
        for row in ordered:
            # merge_props copies; a user's first row (most users' only one) is taken as it is.
            kept = row.values if not kept else merge_props(kept, row.values)
        return kept, []
    values = {name: entry.value for name, entry in held.items()}
    stamps = {name: entry.stamped() for name, entry in held.items()}
    before = Usage.of(values)
    usage = before
    kept = {}
    refused: list[Rejection] = []
    for row in ordered:
        step = usage
        changes: dict[str, Stamped] = {}
        problems: list[tuple[str, str]] = []
        for name, stamped in row.values.items():
            if erased_at is not None and stamped.ts <= erased_at:
                continue
            if not newer(stamps.get(name), stamped):
                continue
            if isinstance(stamped, Retraction) and name not in values:
                continue  # withdraws nothing the user holds: no change to count
            after = _with(step, values, name, stamped.value)
            problem = None if name in always else limits.growth_problem(after, step, before)
            if problem is not None:
                problems.append((name, problem))
                continue
            changes[name] = stamped
            step = after
        if problems and atomic:
            refused.append(Rejection(row.number, "", problems[0][1]))
            continue
        refused.extend(Rejection(row.number, name, why) for name, why in problems)
        for name, stamped in changes.items():
            values[name] = stamped.value
            stamps[name] = stamped
            kept[name] = stamped
        usage = step
    return kept, refused


_ABSENT = object()


def _with(usage: Usage, values: Mapping[str, Any], name: str, value: Any) -> Usage:
    """`usage` once `name` holds `value`."""
    old = values.get(name, _ABSENT)
    size = usage.size + value_bytes(name, value)
    if old is _ABSENT:
        return Usage(usage.count + 1, size)
    return Usage(usage.count, size - value_bytes(name, old))
