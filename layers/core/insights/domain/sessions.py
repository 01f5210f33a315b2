"""Sessions: how events fold into runs separated by inactivity gaps.

A session is the [min, max] of its event times plus the latest value of each
property, so folding is commutative over events inside one session:
duplicates and reordering change nothing (DESIGN invariant 3).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from insights.domain.events import Event, Scalar
from insights.domain.timefmt import HOUR_MS

MAX_SESSION_MS = 12 * HOUR_MS


@dataclass(frozen=True, slots=True)
class Stamped:
    """A property value and the event time it was true at."""

    value: Scalar
    ts: int

    def sort_key(self) -> tuple[int, str]:
        # Ties on time break on the value itself, so the winner does not
        # depend on which of two same-time events arrived first. A whole
        # float counts as the integer storage reads it back as (3000.0 is
        # 3000), so a value sent again compares equal and writes nothing.
        value = self.value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        return (self.ts, json.dumps(value, sort_keys=True))


def newer(a: Stamped | None, b: Stamped) -> bool:
    return a is None or b.sort_key() > a.sort_key()


def merge_props(into: dict[str, Stamped], other: dict[str, Stamped]) -> dict[str, Stamped]:
    merged = dict(into)
    for name, stamped in other.items():
        if newer(merged.get(name), stamped):
            merged[name] = stamped
    return merged


@dataclass(frozen=True, slots=True)
class Enrichment:
    """What the request context tells about the user; the raw IP is not kept."""

    ts: int = 0
    country: str | None = None
    region: str | None = None
    city: str | None = None
    browser_name: str | None = None
    browser_version: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    start: int
    end: int
    interactive: bool
    props: dict[str, Stamped] = field(default_factory=dict)
    enrichment: Enrichment | None = None
    # The user's last closed session end when this session opened: lets ingest
    # count late events without reading the user record on every request.
    prev_end: int | None = None

    def deadline(self, timeout_ms: int) -> int:
        return min(self.end + timeout_ms, self.start + MAX_SESSION_MS)

    @property
    def duration_ms(self) -> int:
        return self.end - self.start

    def merge(self, other: Session) -> Session:
        enrichment = self.enrichment
        if other.enrichment is not None and (
            enrichment is None or other.enrichment.ts >= enrichment.ts
        ):
            enrichment = other.enrichment
        return Session(
            start=min(self.start, other.start),
            end=max(self.end, other.end),
            interactive=self.interactive or other.interactive,
            props=merge_props(self.props, other.props),
            enrichment=enrichment,
            prev_end=self.prev_end if self.prev_end is not None else other.prev_end,
        )


def from_event(event: Event, enrichment: Enrichment | None) -> Session:
    return Session(
        start=event.ts,
        end=event.ts,
        interactive=event.interactive,
        props={name: Stamped(value, event.ts) for name, value in event.properties.items()},
        enrichment=replace(enrichment, ts=event.ts) if enrichment else None,
    )


@dataclass(slots=True)
class Fold:
    """Outcome of adding one request's events for one user to their open session."""

    open: Session | None
    closed: list[Session] = field(default_factory=list)
    late: int = 0
    # Properties of late events when no session is left open to carry them.
    late_props: dict[str, Stamped] = field(default_factory=dict)


def fold(
    open_session: Session | None,
    events: Iterable[Event],
    *,
    last_closed_end: int | None,
    timeout_ms: int,
    enrichment: Enrichment | None,
    now_ms: int,
) -> Fold:
    """Split events plus the open session into gap-separated runs.

    Every run but the last is complete (the next one starts a full timeout
    later), so it closes now; the last run stays open unless its own
    deadline has already passed, as with backfilled events.
    """
    late = 0
    late_props: dict[str, Stamped] = {}
    pieces: list[Session] = [] if open_session is None else [open_session]
    for event in events:
        piece = from_event(event, enrichment)
        if last_closed_end is not None and event.ts <= last_closed_end:
            late += 1
            late_props = merge_props(late_props, piece.props)
        else:
            pieces.append(piece)
    pieces.sort(key=lambda s: s.start)

    runs: list[Session] = []
    for piece in pieces:
        current = runs[-1] if runs else None
        if (
            current is None
            or piece.start - current.end >= timeout_ms
            or piece.end - current.start >= MAX_SESSION_MS
        ):
            runs.append(piece)
        else:
            runs[-1] = current.merge(piece)

    result = Fold(open=None, late=late)
    if runs and runs[-1].deadline(timeout_ms) > now_ms:
        result.open = runs.pop()
    result.closed = runs
    if result.open is not None:
        prev_end = last_closed_end
        if open_session is not None and open_session.prev_end is not None:
            prev_end = open_session.prev_end
        for run in runs:
            if run.interactive:
                prev_end = run.end if prev_end is None else max(prev_end, run.end)
        result.open = replace(result.open, prev_end=prev_end)
    if late_props:
        if result.open is not None:
            result.open = replace(result.open, props=merge_props(result.open.props, late_props))
        else:
            result.late_props = late_props
    return result
