"""Validation of a tracking request into events, one verdict per event.

Hand-written rather than a JSON Schema: each bad event must be rejected on
its own with the path of the offending field, while the good events beside
it go through, and schema validators report the first failure of the whole
document instead.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from insights.domain.core.admission import (
    NOTHING_PROTECTED,
    Protected,
    Scalar,
    name_problem,
    printable,
    value_problem,
)
from insights.domain.core.admission import uuid_problem as uuid_problem
from insights.domain.core.identity import hash_problem
from insights.domain.core.limits import (
    MAX_IP_CHARS,
    MAX_JSON_DEPTH,
    MAX_PROPERTY_NAME_CHARS,
    MAX_UUID_CHARS,
    find_lone_surrogate,
    json_float,
    json_int,
    lone_surrogate,
    too_deep,
)
from insights.domain.core.timefmt import DAY_MS, HOUR_MS, TimeFormatError, parse_time

MAX_BODY_BYTES = 512 * 1024
MAX_EVENTS = 500
MAX_EVENT_BYTES = 32 * 1024
MAX_PROPERTIES = 100
MAX_TYPE_CHARS = 128
MAX_FUTURE_MS = HOUR_MS
EVENT_FIELDS = frozenset(
    {"uuid", "type", "timestamp", "interactive", "properties", "user_properties", "user_hash"}
)
# A misspelt top-level field ("contxt") would otherwise be ignored silently.
BODY_FIELDS = frozenset({"events", "sent_at", "context"})
CONTEXT_FIELDS = frozenset({"ip", "user_agent"})


@dataclass(frozen=True, slots=True)
class Context:
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class Event:
    index: int
    uuid: str
    ts: int
    interactive: bool
    # What the event sets on its user (user_values): its user_properties, and
    # those of its properties the account keeps as attributes. The rest of its
    # properties describe the event, and Insights keeps no event log.
    properties: dict[str, Scalar]
    # HMAC of the uuid, checked when the account verifies identities.
    user_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    field: str
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "error": self.error}


@dataclass(slots=True)
class Batch:
    events: list[Event] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    context: Context = field(default_factory=lambda: Context(None, None))
    # The request's sent_at and the offset its times were corrected by
    # (received - sent_at), so ingest can recognise a retry of the same body.
    sent_at: int | None = None
    offset_ms: int = 0


class RequestError(Exception):
    """The whole request is refused; status is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _EventError(Exception):
    def __init__(self, field_path: str, error: str) -> None:
        self.field_path = field_path
        self.error = error


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")


# A JSON escape can make a lone UTF-16 surrogate ("\\ud800"), which no UTF-8
# store accepts; UTF-8 input itself cannot hold one. Only bodies with such an
# escape are walked, so the check costs nothing on ordinary requests.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def may_hold_surrogate(raw: bytes) -> bool:
    """Whether a body has an escape that can make a lone surrogate (cheap: no parse)."""
    return _SURROGATE_ESCAPE.search(raw) is not None


def decode_json(body: bytes | str, *, strict: bool = True) -> Any:
    """A JSON document, or a 400 that names the problem without Python's internals.

    Integers over 38 digits become ``limits.BigNumber`` (refused where a
    value is checked). With `strict`, nesting deeper than MAX_JSON_DEPTH and
    a lone surrogate anywhere are refused whole; the tracking endpoint turns
    it off (its hot path) and rejects the one event that holds either.
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        text = raw.decode("utf-8-sig") if raw[:3] == b"\xef\xbb\xbf" else raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            400,
            "invalid_json",
            f"body is not UTF-8 JSON (byte {exc.start} is not UTF-8; gzip, UTF-16 and "
            "other encodings are not accepted)",
        ) from None
    try:
        doc = json.loads(
            text, parse_constant=_reject_constant, parse_int=json_int, parse_float=json_float
        )
    except json.JSONDecodeError as exc:
        raise RequestError(
            400,
            "invalid_json",
            f"body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
        ) from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # only _reject_constant raises another ValueError
        raise RequestError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    # Only a body with more brackets than the limit can nest past it (cheap to count).
    if not strict:
        return doc
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and too_deep(doc):
        raise _too_deep()
    if _SURROGATE_ESCAPE.search(raw):
        where = find_lone_surrogate(doc)
        if where is not None:
            raise RequestError(
                400,
                "invalid_unicode",
                f"{where}: a string holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
                "escape); send valid Unicode",
            )
    return doc


def _too_deep() -> RequestError:
    return RequestError(
        400, "invalid_json", f"body nests objects or lists deeper than {MAX_JSON_DEPTH} levels"
    )


def parse_batch(
    body: bytes | str | None,
    *,
    received_ms: int,
    backfill_days: int,
    default_context: Context,
    kept_properties: frozenset[str] = frozenset(),
    protected: Protected = NOTHING_PROTECTED,
) -> Batch:
    """kept_properties: the account's event_properties_as_attributes (user_values);
    protected: the names these events may not set (a write key's request)."""
    raw = body.encode() if isinstance(body, str) else (body or b"")
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError(
            413, "body_too_large", f"body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}"
        )
    if not raw.strip():
        raise RequestError(400, "empty_body", 'body is empty; send {"events": [...]}')
    doc = decode_json(raw, strict=False)
    if not isinstance(doc, dict):
        raise RequestError(400, "invalid_body", "body must be a JSON object with an 'events' list")
    unknown = sorted(set(doc) - BODY_FIELDS)
    if unknown:
        raise RequestError(
            400,
            "unknown_field",
            f"unknown top-level field {_name(unknown[0])!r}; allowed: "
            f"{', '.join(sorted(BODY_FIELDS))}",
        )
    events = doc.get("events")
    if not isinstance(events, list):
        raise RequestError(400, "no_events", "'events' must be a list of events")
    if not events:
        raise RequestError(400, "no_events", "'events' is empty")
    if len(events) > MAX_EVENTS:
        raise RequestError(
            413, "too_many_events", f"{len(events)} events; at most {MAX_EVENTS} per request"
        )
    skew_ms = 0
    sent_at = None
    if doc.get("sent_at") is not None:
        try:
            sent_at = parse_time(doc["sent_at"])
        except TimeFormatError as exc:
            raise RequestError(400, "invalid_sent_at", f"sent_at: {exc}") from None
        skew_ms = sent_at - received_ms
    batch = Batch(
        context=_parse_context(doc.get("context"), default_context),
        sent_at=sent_at,
        offset_ms=-skew_ms,
    )
    oldest_ms = received_ms - backfill_days * DAY_MS
    for index, raw_event in enumerate(events):
        try:
            batch.events.append(
                _parse_event(
                    index,
                    raw_event,
                    received_ms,
                    skew_ms,
                    oldest_ms,
                    backfill_days,
                    kept_properties,
                    protected,
                )
            )
        except _EventError as exc:
            batch.rejected.append(Rejection(index, exc.field_path, exc.error))
    return batch


def normalized_ip(text: str) -> str:
    """An address as the geo lookup (and its cache) takes it: one text per address.

    The canonical form (``2001:DB8::0001`` is ``2001:db8::1``), without an
    IPv6 scope id (``fe80::1%eth0`` is ``fe80::1``: the interface names no
    place). ValueError, with the reason after "context.ip", for anything
    else, and for a text longer than any address before parsing it.
    """
    if len(text) > MAX_IP_CHARS:
        raise ValueError(f"is longer than {MAX_IP_CHARS} characters: not an IPv4 or IPv6 address")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        address = ipaddress.IPv6Address(address.packed)
    return str(address)


def _parse_context(raw: Any, default: Context) -> Context:
    if raw is None:
        return default
    if not isinstance(raw, dict):
        raise RequestError(400, "invalid_context", "context must be an object")
    unknown = sorted(set(raw) - CONTEXT_FIELDS)
    if unknown:  # as for the body's fields: a misspelt userAgent would silently keep the caller's
        raise RequestError(
            400,
            "invalid_context",
            f"unknown field context.{_name(unknown[0])}; allowed: "
            f"{', '.join(sorted(CONTEXT_FIELDS))}",
        )
    ip = raw.get("ip", default.ip)
    if ip is not None:
        if not isinstance(ip, str):
            raise RequestError(400, "invalid_context", "context.ip must be a string")
        try:
            ip = normalized_ip(ip)
        except ValueError as exc:
            raise RequestError(400, "invalid_context", f"context.ip {exc}") from None
    user_agent = raw.get("user_agent", default.user_agent)
    if user_agent is not None and not isinstance(user_agent, str):
        raise RequestError(400, "invalid_context", "context.user_agent must be a string")
    if user_agent is not None and lone_surrogate(user_agent):
        raise RequestError(
            400, "invalid_context", "context.user_agent holds a lone UTF-16 surrogate"
        )
    return Context(ip=ip, user_agent=user_agent)


def _parse_event(
    index: int,
    raw: Any,
    received_ms: int,
    skew_ms: int,
    oldest_ms: int,
    backfill_days: int,
    kept_properties: frozenset[str],
    protected: Protected,
) -> Event:
    at = f"events[{index}]"
    if not isinstance(raw, dict):
        raise _EventError(at, "event must be an object")
    unknown = sorted(set(raw) - EVENT_FIELDS)
    if unknown:
        raise _EventError(
            f"{at}.{_name(unknown[0])}",
            f"unknown field; allowed: {', '.join(sorted(EVENT_FIELDS))}",
        )
    try:
        size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode())
    except UnicodeEncodeError:
        where = find_lone_surrogate(raw, at) or at
        raise _EventError(
            where, "holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape)"
        ) from None
    except RecursionError:
        raise _EventError(at, "nests objects or lists too deeply") from None
    except (TypeError, ValueError):  # a BigNumber somewhere: found below, with its path
        size = 0
    if size > MAX_EVENT_BYTES:
        raise _EventError(at, f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}")
    uuid = raw.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise _EventError(f"{at}.uuid", "uuid is required and must be a non-empty string")
    if not uuid.strip():
        # Kept verbatim otherwise (ids are opaque), but blank is always a bug.
        raise _EventError(f"{at}.uuid", "uuid is blank (only whitespace)")
    if len(uuid) > MAX_UUID_CHARS:
        raise _EventError(f"{at}.uuid", f"uuid is longer than {MAX_UUID_CHARS} characters")
    event_type = raw.get("type")
    if event_type is not None and (
        not isinstance(event_type, str) or len(event_type) > MAX_TYPE_CHARS
    ):
        raise _EventError(f"{at}.type", f"type must be a string of at most {MAX_TYPE_CHARS}")
    interactive = raw.get("interactive", True)
    if not isinstance(interactive, bool):
        raise _EventError(f"{at}.interactive", "interactive must be true or false")
    ts = received_ms
    if raw.get("timestamp") is not None:
        try:
            ts = parse_time(raw["timestamp"]) - skew_ms
        except TimeFormatError as exc:
            raise _EventError(f"{at}.timestamp", str(exc)) from None
        if ts > received_ms + MAX_FUTURE_MS:
            raise _EventError(
                f"{at}.timestamp", "more than 1 hour in the future (after clock-skew correction)"
            )
        if ts < oldest_ms:
            raise _EventError(
                f"{at}.timestamp",
                f"older than the account's backfill window of {backfill_days} days",
            )
    user_hash = raw.get("user_hash")
    if user_hash is not None and (problem := hash_problem(user_hash)) is not None:
        raise _EventError(f"{at}.user_hash", problem)
    properties = _parse_properties(at, raw.get("properties"))
    user_properties = _parse_properties(at, raw.get("user_properties"), "user_properties")
    values = user_values(properties, user_properties, kept_properties)
    for name in values:
        if (problem := protected.problem(name)) is not None:
            kind = "user_properties" if name in user_properties else "properties"
            raise _EventError(f"{at}.{kind}.{_name(name)}", problem)
    return Event(index, uuid, ts, interactive, values, user_hash)


def user_values(
    properties: dict[str, Scalar], user_properties: dict[str, Scalar], kept: frozenset[str]
) -> dict[str, Scalar]:
    """What one event sets on its user: the rule of every door (docs/event-properties.md).

    User properties (the spec's analytics properties: name, role, type,
    status, info, or any other) always; an event property only when the
    account names it in event_properties_as_attributes, so a property that
    describes the event (format: "pdf") never silently becomes an attribute.
    Named both ways in one event, the user property wins.
    """
    if not properties or not kept:
        return user_properties
    values = {name: value for name, value in properties.items() if name in kept}
    values.update(user_properties)
    return values


def _parse_properties(at: str, raw: Any, field_name: str = "properties") -> dict[str, Scalar]:
    if raw is None:
        return {}
    where = f"{at}.{field_name}"
    if not isinstance(raw, dict):
        raise _EventError(where, f"{field_name} must be an object")
    if len(raw) > MAX_PROPERTIES:
        raise _EventError(where, f"{len(raw)} {field_name}; at most {MAX_PROPERTIES} per event")
    for name, value in raw.items():
        if name_problem(name) is not None:
            raise _EventError(
                where, f"property names must be 1-{MAX_PROPERTY_NAME_CHARS} characters"
            )
        problem = value_problem(value)
        if problem is not None:
            if isinstance(value, dict | list):
                problem = "value must be a string, number, boolean or null"
            raise _EventError(f"{where}.{_name(name)}", problem)
    return dict(raw)


_name = printable  # a field name as echoed in an error
