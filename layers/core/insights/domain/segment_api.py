"""Segment's HTTP Tracking API, translated into Insights' own requests (pure).

A Segment message becomes what Insights already takes, so nothing behind the
door changes: ``track``, ``page`` and ``screen`` become interactive events of
an ingest batch (the ``parse_batch``/``ingest`` pipeline, same sessions, same
cost per request), and ``identify`` traits become attribute rows for the one
attribute path (``services.attributes.write_attributes``, source
``identify``). ``identify`` is deliberately *not* an event: servers call it
from jobs and webhooks with their own IP and User-Agent, at any time, and an
event would stretch the user's session and overwrite location and browser
with the server's. ``alias``, ``group`` and messages with only an
``anonymousId`` are accepted and ignored, each with a reason.

Hand-written rather than a JSON Schema for the reason ``domain.events``
gives: every message gets its own verdict, with the path of the field at
fault, and the good messages beside a bad one still go through. See
``docs/segment-api.md`` for the mapping table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from insights.domain.core.admission import (
    NOT_UNICODE,
    Scalar,
    name_problem,
    parse_value,
    value_problem,
)
from insights.domain.core.attributes import Row
from insights.domain.core.events import (
    MAX_EVENTS,
    MAX_FUTURE_MS,
    MAX_PROPERTIES,
    Context,
    Rejection,
    RequestError,
    decode_json,
    may_hold_surrogate,
    normalized_ip,
)
from insights.domain.core.limits import (
    MAX_JSON_DEPTH,
    MAX_PROPERTY_NAME_CHARS,
    MAX_UUID_CHARS,
    find_lone_surrogate,
    json_bytes,
    lone_surrogate,
    too_deep,
)
from insights.domain.core.sessions import Stamped
from insights.domain.core.timefmt import DAY_MS, SECOND_MS, TimeFormatError, parse_time

# Segment's documented limits: 32 KB per message, 500 KB per batch request.
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
# Segment documents no count; its libraries send 10 (analytics.js), 15
# (analytics-node), 100 (analytics-python) or 250 (analytics-go, -java) at a
# time. 500 tiny messages fit in 500 KB ~28 times over, and each message may
# need its own user's read and write: the cap keeps a request at the cap well
# inside TrackFunction's 10 s timeout (benchmarks/segment_batch.py). The same
# number as /v1/events' events per request.
MAX_MESSAGES = MAX_EVENTS
# A device clock this close to the server's is taken as right: correcting by
# it would add only network delay, and would move a retried message's time
# by however long the retry took (so a retry would change the session).
SKEW_TOLERANCE_MS = 60 * SECOND_MS
# Nested traits become dotted names ("address.city"); deeper than this is refused.
MAX_TRAIT_DEPTH = 4

EVENT_TYPES = frozenset({"track", "page", "screen"})
IGNORED_TYPES = {
    "alias": "alias is accepted and ignored: Insights keeps no identity graph, "
    "send events under the userId you want the profile kept under",
    "group": "group is accepted and ignored: Insights keeps users, not accounts or groups",
}
MESSAGE_TYPES = frozenset({"identify", *EVENT_TYPES, *IGNORED_TYPES})
ANONYMOUS_ONLY = (
    "anonymous-only message (no userId) is accepted and ignored: Insights keeps "
    "profiles of identified users only"
)

# Route -> the message type it carries (None: a batch). The one-letter paths
# are those analytics.js (analytics-next) posts to.
ROUTES: dict[str, str | None] = {
    "/v1/batch": None,
    "/v1/b": None,
    "/v1/identify": "identify",
    "/v1/i": "identify",
    "/v1/track": "track",
    "/v1/t": "track",
    "/v1/page": "page",
    "/v1/p": "page",
    "/v1/screen": "screen",
    "/v1/s": "screen",
    "/v1/alias": "alias",
    "/v1/a": "alias",
    "/v1/group": "group",
    "/v1/g": "group",
}


@dataclass(frozen=True, slots=True)
class Ignored:
    index: int
    type: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.type, "reason": self.reason}


@dataclass(slots=True)
class Envelope:
    """A decoded request before its key is checked: the messages and where they sit."""

    messages: list[Any]
    single: bool  # one message at the top level (not {"batch": [...]})
    write_key: str | None
    sent_at: Any = None
    # The body has an escape that can make a lone surrogate: messages are searched.
    surrogates: bool = False

    def path(self, index: int) -> str:
        return "" if self.single else f"batch[{index}]"


@dataclass(slots=True)
class Translation:
    """What a Segment request becomes."""

    # Events to ingest, by the request context they carry (ingest takes one
    # context per batch): context -> [(message index, ingest event)].
    events: dict[Context, list[tuple[int, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    rows: list[Row] = field(default_factory=list)  # identify traits; Row.number = message index
    rejected: list[Rejection] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    # Messages refused as a whole (a trait or property refused alone is not counted).
    refused: set[int] = field(default_factory=set)


class _Refused(Exception):
    def __init__(self, field_path: str, error: str) -> None:
        self.field_path = field_path
        self.error = error


def decode(body: bytes, message_type: str | None) -> Envelope:
    """The request's messages; RequestError (400, as Segment answers) when unusable."""
    limit = MAX_BATCH_BYTES if message_type is None else MAX_MESSAGE_BYTES
    if len(body) > limit:
        what = "a batch" if message_type is None else "a single message"
        raise RequestError(
            400, "payload_too_large", f"body is {len(body)} bytes; {what} may be at most {limit}"
        )
    if not body.strip():
        raise RequestError(400, "empty_body", "body is empty; send a JSON object")
    # Not strict: a message nested too deep, holding a lone surrogate or a
    # 40-digit number is refused alone (translate), as /v1/events refuses an event.
    doc = decode_json(body, strict=False)
    if not isinstance(doc, dict):
        raise RequestError(400, "invalid_body", "body must be a JSON object")
    write_key = doc.get("writeKey")
    if write_key is not None and (not isinstance(write_key, str) or lone_surrogate(write_key)):
        raise RequestError(400, "invalid_write_key", "writeKey must be a string")
    surrogates = may_hold_surrogate(body)
    if message_type is not None:
        return Envelope([doc], single=True, write_key=write_key, surrogates=surrogates)
    batch = doc.get("batch")
    if not isinstance(batch, list):
        raise RequestError(400, "invalid_batch", "'batch' must be a list of messages")
    if not batch:
        raise RequestError(400, "invalid_batch", "'batch' is empty")
    if len(batch) > MAX_MESSAGES:
        raise RequestError(
            400,
            "too_many_messages",
            f"'batch' holds {len(batch)} messages; at most {MAX_MESSAGES} per request",
        )
    sent_at = doc.get("sentAt")
    return Envelope(batch, False, write_key, sent_at=sent_at, surrogates=surrogates)


def translate(
    envelope: Envelope,
    message_type: str | None,
    *,
    received_ms: int,
    backfill_days: int,
    kept_properties: frozenset[str],
    default_context: Context,
) -> Translation:
    """Each message's verdict; the whole request is refused only for a bad batch sentAt."""
    batch_skew = None
    if envelope.sent_at is not None:
        try:
            batch_skew = parse_time(envelope.sent_at) - received_ms
        except TimeFormatError as exc:
            raise RequestError(400, "invalid_sent_at", f"sentAt: {exc}") from None
    out = Translation()
    message = _Message(received_ms, backfill_days, kept_properties, default_context, batch_skew)
    for index, raw in enumerate(envelope.messages):
        at = envelope.path(index)
        try:
            _check_whole(at, raw, envelope.surrogates)
            message.translate(index, at, raw, message_type, out)
        except _Refused as exc:
            out.refused.add(index)
            out.rejected.append(Rejection(index, exc.field_path, exc.error))
    return out


def _join(at: str, name: str) -> str:
    return f"{at}.{name}" if at else name


def _check_whole(at: str, raw: Any, surrogates: bool) -> None:
    """A message as a document: its size, nesting and Unicode (each refuses it alone)."""
    if not isinstance(raw, dict):
        raise _Refused(at or "body", "message must be an object")
    if too_deep(raw, MAX_JSON_DEPTH - 2):  # the body's own two levels: {"batch": [...]}
        raise _Refused(at or "body", f"nests objects or lists deeper than {MAX_JSON_DEPTH} levels")
    if surrogates:
        where = find_lone_surrogate(raw, at)
        if where is not None:
            raise _Refused(where, f"a string {NOT_UNICODE}; send valid Unicode")
    size = json_bytes(raw)
    if size > MAX_MESSAGE_BYTES:
        raise _Refused(at or "body", f"message is {size} bytes; the limit is 32 KB (32768)")


@dataclass(frozen=True, slots=True)
class _Message:
    received_ms: int
    backfill_days: int
    kept_properties: frozenset[str]
    default_context: Context
    batch_skew: int | None

    def translate(
        self, index: int, at: str, raw: Any, route_type: str | None, out: Translation
    ) -> None:
        kind = raw.get("type", route_type)
        if route_type is not None and kind != route_type:
            raise _Refused(_join(at, "type"), f"this route takes {route_type} messages only")
        if not isinstance(kind, str) or kind not in MESSAGE_TYPES:  # a dict is unhashable
            raise _Refused(
                _join(at, "type"), f"type must be one of {', '.join(sorted(MESSAGE_TYPES))}"
            )
        if kind in IGNORED_TYPES:
            out.ignored.append(Ignored(index, kind, IGNORED_TYPES[kind]))
            return
        uuid = self._user_id(at, raw)
        if uuid is None:
            out.ignored.append(Ignored(index, kind, ANONYMOUS_ONLY))
            return
        ts = self._time(at, raw)
        context = self._context(at, raw.get("context"))
        if kind == "identify":
            refused_before = len(out.rejected)
            values = _traits(index, at, raw.get("traits"), ts, out)
            if not values and len(out.rejected) > refused_before:
                # Every trait it sent was refused: nothing of it is taken (not accepted).
                out.refused.add(index)
                return
            out.rows.append(Row(index, uuid, values))
            return
        if kind == "track":
            name = raw.get("event")
            if not isinstance(name, str) or not name.strip():
                raise _Refused(_join(at, "event"), "track needs an event name (a string)")
        properties = _kept_properties(index, at, raw.get("properties"), self.kept_properties)
        event = {"uuid": uuid, "type": kind, "timestamp": ts, "properties": properties.ok}
        out.events[context].append((index, event))
        out.rejected.extend(properties.refused)

    def _user_id(self, at: str, raw: dict[str, Any]) -> str | None:
        user_id = raw.get("userId")
        if user_id is None or user_id == "":
            anonymous = raw.get("anonymousId")
            if anonymous is None or anonymous == "":
                raise _Refused(_join(at, "userId"), "userId or anonymousId is required")
            return None
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)  # some server libraries send numeric ids
        if not isinstance(user_id, str):
            raise _Refused(_join(at, "userId"), "userId must be a string")
        if not user_id.strip():
            raise _Refused(_join(at, "userId"), "userId is blank (only whitespace)")
        if len(user_id) > MAX_UUID_CHARS:
            raise _Refused(
                _join(at, "userId"), f"userId is longer than {MAX_UUID_CHARS} characters"
            )
        return user_id

    def _time(self, at: str, raw: dict[str, Any]) -> int:
        """The message's time in server terms (epoch ms), checked as events' are."""
        stamp = raw.get("timestamp")
        original = raw.get("originalTimestamp")
        name = "timestamp"
        if stamp is not None and original is not None:
            # Both: a replayed or forwarded message whose timestamp is already corrected.
            ts, skew = self._parse(at, name, stamp), 0
        elif stamp is not None or original is not None:
            name = "timestamp" if stamp is not None else "originalTimestamp"
            ts = self._parse(at, name, stamp if stamp is not None else original)
            skew = self._skew(at, raw)
        else:
            return self.received_ms
        if abs(skew) > SKEW_TOLERANCE_MS:
            ts -= skew
        if ts > self.received_ms + MAX_FUTURE_MS:
            raise _Refused(
                _join(at, name), "more than 1 hour in the future (after clock-skew correction)"
            )
        if ts < self.received_ms - self.backfill_days * DAY_MS:
            raise _Refused(
                _join(at, name),
                f"older than the account's backfill window of {self.backfill_days} days",
            )
        return ts

    def _skew(self, at: str, raw: dict[str, Any]) -> int:
        if raw.get("sentAt") is not None:  # analytics.js stamps each message it sends
            return self._parse(at, "sentAt", raw["sentAt"]) - self.received_ms
        return self.batch_skew or 0

    @staticmethod
    def _parse(at: str, name: str, value: Any) -> int:
        try:
            return parse_time(value)
        except TimeFormatError as exc:
            raise _Refused(_join(at, name), str(exc)) from None

    def _context(self, at: str, raw: Any) -> Context:
        if raw is None:
            return self.default_context
        if not isinstance(raw, dict):
            raise _Refused(_join(at, "context"), "context must be an object")
        ip = raw.get("ip")
        if ip is None:
            ip = self.default_context.ip
        elif not isinstance(ip, str):
            raise _Refused(_join(at, "context.ip"), "context.ip must be a string")
        else:
            try:
                ip = normalized_ip(ip)
            except ValueError as exc:
                raise _Refused(_join(at, "context.ip"), f"context.ip {exc}") from None
        user_agent = raw.get("userAgent")
        if user_agent is not None and not isinstance(user_agent, str):
            raise _Refused(_join(at, "context.userAgent"), "context.userAgent must be a string")
        if user_agent is None:
            user_agent = _from_client_hints(raw.get("userAgentData"))
        if user_agent is None:
            user_agent = self.default_context.user_agent
        return Context(ip=ip, user_agent=user_agent)


# Client hints (navigator.userAgentData) name the browser by brand. The
# enrichment reads the browser from a User-Agent, so the most specific known
# brand becomes the product token ua-parser reads ("Edg/120.0"). "Chromium"
# alone reads as Chrome; the GREASE brand ("Not A;Brand") names nothing.
_HINT_BRANDS = (
    ("Microsoft Edge", "Edg"),
    ("Opera", "OPR"),
    ("Google Chrome", None),
    ("Chromium", None),
)


def _from_client_hints(raw: Any) -> str | None:
    """A User-Agent for the browser that client hints name (used when no userAgent came)."""
    if not isinstance(raw, dict):
        return None
    brands = raw.get("fullVersionList") or raw.get("brands")
    if not isinstance(brands, list):
        return None
    found = {
        entry["brand"]: _dotted(entry["version"])
        for entry in brands
        if isinstance(entry, dict)
        and isinstance(entry.get("brand"), str)
        and isinstance(entry.get("version"), str)
        and entry["version"]
    }
    engine = found.get("Chromium") or found.get("Google Chrome")
    for brand, token in _HINT_BRANDS:
        if brand in found:
            base = (
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{engine or found[brand]} Safari/537.36"
            )
            return base if token is None else f"{base} {token}/{found[brand]}"
    return None


def _dotted(version: str) -> str:
    # As browsers write it ("120" -> "120.0.0.0"): ua-parser's Opera pattern needs the parts.
    parts = version.split(".")
    return ".".join(parts + ["0"] * (4 - len(parts)))


def _traits(index: int, at: str, raw: Any, ts: int, out: Translation) -> dict[str, Stamped]:
    """identify traits as typed values; a bad trait is refused alone, the rest applied."""
    if raw is None:
        return {}
    where = _join(at, "traits")
    if not isinstance(raw, dict):
        raise _Refused(where, "traits must be an object")
    flat: dict[str, Any] = {}
    _flatten(index, where, "", raw, 1, flat, out)
    if len(flat) > MAX_PROPERTIES:
        raise _Refused(where, f"{len(flat)} traits; at most {MAX_PROPERTIES} per message")
    values: dict[str, Stamped] = {}
    for name, value in flat.items():
        try:
            values[name] = Stamped(None if value is None else parse_value(value, None), ts)
        except ValueError as exc:
            out.rejected.append(Rejection(index, f"{where}.{name}", alone(str(exc), "traits")))
    return values


def _flatten(
    index: int,
    where: str,
    prefix: str,
    raw: dict[str, Any],
    depth: int,
    flat: dict[str, Any],
    out: Translation,
) -> None:
    for key, value in raw.items():
        name, error = f"{prefix}{key}", None
        if not key or name_problem(name) is not None:
            name, error = name[:40], f"trait names must be 1-{MAX_PROPERTY_NAME_CHARS} characters"
        elif isinstance(value, dict) and depth < MAX_TRAIT_DEPTH:
            _flatten(index, where, name + ".", value, depth + 1, flat, out)
        elif isinstance(value, dict | list):
            kind = "an object nested too deep" if isinstance(value, dict) else "a list"
            error = f"{kind} is not a value"
        elif name in flat:  # "a.b" and {"a": {"b": ..}}: one trait, never one dropped unsaid
            error = "this trait is named twice (dotted and nested); the first was applied"
        else:
            flat[name] = value
        if error is not None:
            out.rejected.append(Rejection(index, f"{where}.{name}", alone(error, "traits")))


@dataclass(slots=True)
class _Kept:
    ok: dict[str, Scalar] = field(default_factory=dict)
    refused: list[Rejection] = field(default_factory=list)


def _kept_properties(index: int, at: str, raw: Any, kept: frozenset[str]) -> _Kept:
    """The properties that the account keeps as attributes, for the ingest event.

    The rule is every door's (events.user_values, applied again at ingest):
    only the names in event_properties_as_attributes become attributes, the
    rest describe the event and are left out here, since Segment lets them
    nest and an event of /v1/events may not. A kept one is checked here so
    that a bad value is refused alone and the event still counts.
    """
    out = _Kept()
    if raw is None:
        return out
    where = _join(at, "properties")
    if not isinstance(raw, dict):
        raise _Refused(where, "properties must be an object")
    for name in kept & raw.keys():
        value = raw[name]
        error = value_problem(value)  # the admission rules every door's values follow
        if isinstance(value, dict | list):
            error = "value must be a string, number, boolean or null"
        if error is None:
            out.ok[name] = value
        else:
            out.refused.append(Rejection(index, f"{where}.{name}", alone(error, "event")))
    return out


def alone(error: str, rest: str) -> str:
    kept = "the message's other traits were applied" if rest == "traits" else "the event counted"
    return f"{error}; only this value was refused, {kept}"
