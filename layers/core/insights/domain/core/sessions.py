"""Sessions: how events fold into runs, and when a user's open window closes.

A session is the [min, max] of its event times plus the latest value of each
property, so folding is commutative over events inside one session:
duplicates and reordering change nothing (DESIGN invariant 3).

Event times decide how events split into sessions (a gap of the timeout or
more, or the 12-hour cap); arrival times decide when sessions close. A user
has at most one open *window*: the runs (sessions) their events have formed
since the window opened, kept open together until no event has changed the
window for the timeout (wall clock, `Window.closes_at`). So the same events
give the same sessions however a client batches or reorders them while the
window is open, even when they are days old.

Bounds keep the window small; each closes only the oldest run, which a later
run of the window has already proved over (`settle`, `Window.quiet_ms`):

- at most MAX_RUNS runs: past that, the oldest closes at once;
- a run cut from the next one by the 12-hour cap closes once no event has
  changed it for the timeout (no later event can join the two), so a user
  active for more than 12 h sees each session's metrics as usual;
- a run cut by a gap closes with the window, or once no event has changed it
  for 12 h while later runs keep the window open.

An event at or before the end of a closed run (`Window.prev_end`, or the
profile's last_seen when no window is open) is *late*.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from insights.domain.core.limits import Scalar
from insights.domain.core.timefmt import HOUR_MS


class Event(Protocol):
    """What folding reads of an event (``events.Event``; not imported: events imports
    the admission checks, which build on this module's Stamped)."""

    @property
    def ts(self) -> int: ...
    @property
    def interactive(self) -> bool: ...
    @property
    def properties(self) -> Mapping[str, Scalar]: ...


MAX_SESSION_MS = 12 * HOUR_MS
MAX_RUNS = 4
# Clock-skew offsets remembered per sent_at (see remember_offset): the most
# recent ones by sent_at, in the open window and then on the profile.
SENT_MEMORY = 8


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


@dataclass(frozen=True, slots=True)
class Retraction(Stamped):
    """A source withdrawing what it set (value None), e.g. a record deleted in Salesforce.

    It clears an attribute only where the value held came from the same
    source and is not newer (``profile.merged_custom``): a value another
    source set stays, and a user who holds nothing gets nothing written.
    """


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

    def sort_key(self) -> tuple[int, tuple[str, ...]]:
        # Same-time contexts break ties on their values: arrival order never decides.
        rest = (self.country, self.region, self.city, self.browser_name, self.browser_version)
        return (self.ts, tuple(v or "" for v in rest))


def latest_enrichment(a: Enrichment | None, b: Enrichment | None) -> Enrichment | None:
    if a is None or b is None:
        return b if a is None else a
    if a.ts != b.ts:  # the common case, without building the full keys
        return b if b.ts > a.ts else a
    return b if b.sort_key() > a.sort_key() else a


@dataclass(frozen=True, slots=True)
class Session:
    """One run of events: a session of the user once it closes."""

    start: int
    end: int
    interactive: bool
    props: dict[str, Stamped] = field(default_factory=dict)
    enrichment: Enrichment | None = None
    # Receive time of the last request that changed this run (wall clock).
    seen: int = 0

    @property
    def duration_ms(self) -> int:
        return self.end - self.start

    def content(self) -> tuple[object, ...]:
        return (self.start, self.end, self.interactive, self.props, self.enrichment)

    def merge(self, other: Session) -> Session:
        return Session(
            start=min(self.start, other.start),
            end=max(self.end, other.end),
            interactive=self.interactive or other.interactive,
            # Frozen sessions never mutate their props: an event without any shares them.
            props=merge_props(self.props, other.props) if other.props else self.props,
            enrichment=latest_enrichment(self.enrichment, other.enrichment),
            seen=max(self.seen, other.seen),
        )


@dataclass(frozen=True, slots=True)
class Window:
    """A user's open runs, closed together when no event changed them for the timeout."""

    runs: tuple[Session, ...]  # by start; never empty
    seen: int  # receive time of the last request that changed a run
    # The end of the user's last closed run when the window opened, moved on by
    # runs closed since: events at or before it are late.
    prev_end: int | None = None
    # Properties of late interactive events, applied when the window closes.
    late_props: dict[str, Stamped] = field(default_factory=dict)
    # (sent_at, offset) pairs: the clock-skew offset used for each recent sent_at.
    sent: tuple[tuple[int, int], ...] = ()

    def closes_at(self, timeout_ms: int) -> int:
        """When the whole window closes: the timeout after its last change (also the TTL)."""
        return self.seen + timeout_ms

    def due_at(self, timeout_ms: int) -> int:
        """The first time anything in the window is due to close (the sweeper's deadline)."""
        due = self.closes_at(timeout_ms)
        if len(self.runs) > 1:
            due = min(due, self.runs[0].seen + self.quiet_ms(timeout_ms))
        return due

    def quiet_ms(self, timeout_ms: int) -> int:
        """How long the oldest run must go unchanged before it closes ahead of the window.

        Cut from the next run by the 12-hour cap, no later event can join the
        two, so the timeout is enough. Cut by a gap, an event in the gap could
        still bridge them, so it waits for the whole window (or 12 h).
        """
        if self.runs[1].start - self.runs[0].end < timeout_ms:
            return timeout_ms
        return MAX_SESSION_MS


def from_event(event: Event, enrichment: Enrichment | None, seen: int) -> Session:
    ts = event.ts
    stamped = None
    if enrichment is not None:  # the constructor: dataclasses.replace is several times slower
        e = enrichment
        stamped = Enrichment(ts, e.country, e.region, e.city, e.browser_name, e.browser_version)
    props = {name: Stamped(value, ts) for name, value in event.properties.items()}
    return Session(ts, ts, event.interactive, props, stamped, seen)


def chain(pieces: Iterable[Session], timeout_ms: int) -> list[Session]:
    """Split pieces (events or runs) into runs at gaps of the timeout and at the 12-hour cap."""
    runs: list[Session] = []
    for piece in sorted(pieces, key=lambda s: (s.start, s.end)):
        current = runs[-1] if runs else None
        if (
            current is None
            or piece.start - current.end >= timeout_ms
            or piece.end - current.start >= MAX_SESSION_MS
        ):
            runs.append(piece)
        else:
            runs[-1] = current.merge(piece)
    return runs


def settle(window: Window, now_ms: int, timeout_ms: int) -> tuple[list[Session], Window | None]:
    """The runs due to close at now_ms (oldest first), and what stays open (None: all closed).

    The one definition of "due" that ingest (lazy), the sweeper and the TTL
    consumer share.
    """
    if now_ms >= window.closes_at(timeout_ms):
        return list(window.runs), None
    runs = list(window.runs)
    closed: list[Session] = []
    while len(runs) > 1 and (
        len(runs) > MAX_RUNS
        or now_ms >= runs[0].seen + replace(window, runs=tuple(runs)).quiet_ms(timeout_ms)
    ):
        closed.append(runs.pop(0))
    if not closed:
        return [], window
    prev_end = max([c.end for c in closed] + ([window.prev_end] if window.prev_end else []))
    return closed, replace(window, runs=tuple(runs), prev_end=prev_end)


def remember_offset(
    memory: tuple[tuple[int, int], ...], sent_at: int, offset: int
) -> tuple[tuple[int, int], ...]:
    """memory with (sent_at, offset) added, keeping the SENT_MEMORY latest sent_at values."""
    if any(s == sent_at for s, _ in memory):
        return memory
    return tuple(sorted((*memory, (sent_at, offset)), reverse=True)[:SENT_MEMORY])


def recalled_shift(memory: Iterable[tuple[int, int]], sent_at: int | None, offset: int) -> int:
    """How far to move a request's corrected times so a retry lands where the first try did.

    A request's events are corrected by offset = received - sent_at. A retry
    of the same body (same sent_at) arrives later, so its offset is larger by
    the delay; the offset remembered for that sent_at undoes that.
    """
    if sent_at is None:
        return 0
    for remembered_at, remembered in memory:
        if remembered_at == sent_at:
            return remembered - offset
    return 0


@dataclass(slots=True)
class Fold:
    """Outcome of adding one request's events for one user to their open window."""

    window: Window | None
    closed: list[Session] = field(default_factory=list)
    late: int = 0
    # To apply to the profile now (no window is left open to carry them).
    late_props: dict[str, Stamped] = field(default_factory=dict)
    sent: tuple[tuple[int, int], ...] = ()


def fold(
    window: Window | None,
    events: Iterable[Event],
    *,
    last_closed_end: int | None,
    timeout_ms: int,
    enrichment: Enrichment | None,
    now_ms: int,
    sent: tuple[int, int] | None = None,
    memory: tuple[tuple[int, int], ...] = (),
) -> Fold:
    """Close what is due, then add the events: late ones, or into the window's runs.

    `last_closed_end` and `memory` come from the profile and are used only
    when no window is open; `sent` is this request's (sent_at, offset).
    """
    result = Fold(window=None)
    late_props: dict[str, Stamped] = {}
    prev_end = last_closed_end
    if window is not None:
        memory = window.sent
        prev_end = window.prev_end
        result.closed, remaining = settle(window, now_ms, timeout_ms)
        if remaining is None:  # the window closed: lazy close, before the new events
            ends = [run.end for run in result.closed]
            prev_end = max(ends) if prev_end is None else max(prev_end, *ends)
            result.late_props = window.late_props
        else:
            prev_end = remaining.prev_end
        window = remaining
    pieces: list[Session] = []
    for event in events:
        if prev_end is not None and event.ts <= prev_end:
            result.late += 1
            if event.interactive:  # an empty session's properties count nowhere
                late_props = merge_props(
                    late_props, {n: Stamped(v, event.ts) for n, v in event.properties.items()}
                )
        else:
            pieces.append(from_event(event, enrichment, now_ms))
    if sent is not None:
        memory = remember_offset(memory, *sent)
    result.sent = memory
    if window is None and not pieces:
        result.late_props = merge_props(result.late_props, late_props)
        return result

    old = window.runs if window is not None else ()
    runs = chain([*old, *pieces], timeout_ms)
    # A run the events did not change keeps its seen: a duplicate extends nothing.
    unchanged = [(run.content(), run.seen) for run in old]
    runs = [
        replace(run, seen=next((seen for c, seen in unchanged if c == run.content()), run.seen))
        for run in runs
    ]
    changed = [run.content() for run in runs] != [run.content() for run in old]
    opened = Window(
        runs=tuple(runs),
        seen=now_ms if changed or window is None else window.seen,
        prev_end=prev_end,
        late_props=merge_props(window.late_props if window else {}, late_props),
        sent=memory,
    )
    early, remaining = settle(opened, now_ms, timeout_ms)
    result.closed.extend(early)
    result.window = remaining
    return result
