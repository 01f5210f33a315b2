"""Segments: definitions, listing and counting through the planner, per-user membership."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights import clock
from insights.domain.core.limits import whole_number
from insights.domain.core.profile import Profile
from insights.domain.segments import cursor as cursors
from insights.domain.segments import partial
from insights.domain.segments.definitions import (
    MAX_SEGMENTS,
    Segment,
    new_segment_id,
    parse_body,
    parse_notify,
    parse_targeting,
)
from insights.domain.segments.evaluate import evaluate, is_member
from insights.domain.segments.planner import Plan, plan
from insights.domain.segments.rules import Node
from insights.services.core.closing import MAX_ATTEMPTS, backoff
from insights.services.segments import index as segment_index
from insights.storage import segments as seg_store
from insights.storage.core import queues, store
from insights.storage.core.records import user_pk
from insights.storage.core.store import Conflict
from insights.storage.segments import Position, SegmentSet

# Definitions used by the per-user call are cached this long per container;
# a change made through this container is seen at once.
CACHE_SECONDS = 10.0
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# A listing page stops after reading this many index items even if it holds
# fewer than `limit` users (a sparse segment over a big account); the cursor
# goes on from there.
MAX_INDEX_READS_PER_PAGE = 5000
# A Query page of an index stream: what one round reads from each at most.
MAX_ROUND_ITEMS = 1000


metrics = Metrics()


class SegmentError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field  # the request's field at fault (a cursor), when there is one


def not_found(segment_id: str) -> SegmentError:
    return SegmentError(404, "segment_not_found", f"no segment {segment_id[:64]!r} in this account")


# ------------------------------------------------------------- definitions
# account -> (expires, ((segment id, rules, targeting), ...))
_cache: dict[str, tuple[float, tuple[tuple[str, Node, bool], ...]]] = {}


def forget(account_id: str) -> None:
    _cache.pop(account_id, None)


def _definitions(account_id: str) -> tuple[tuple[str, Node, bool], ...]:
    now = clock.now_ms() / 1000  # the clock of record, as services/core/auth.py's cache
    cached = _cache.get(account_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    found = seg_store.load_segments(account_id, consistent=False)
    parsed = tuple((s.id, s.parsed(), s.targeting) for s in found.segments)
    if len(_cache) >= 1024:
        _cache.clear()
    _cache[account_id] = (now + CACHE_SECONDS, parsed)
    return parsed


def list_segments(account_id: str) -> list[Segment]:
    return list(seg_store.load_segments(account_id, consistent=False).segments)


def get_segment(account_id: str, segment_id: str) -> Segment:
    found = seg_store.load_segments(account_id).find(segment_id)
    if found is None:
        raise not_found(segment_id)
    return found


def _mutate(account_id: str, change: Callable[[SegmentSet], list[Segment]]) -> None:
    for attempt in range(MAX_ATTEMPTS):
        current = seg_store.load_segments(account_id)
        updated = change(current)
        try:
            # Before the catalogue: a set too large to save starts no index build.
            body = seg_store.definitions(updated)
        except seg_store.TooLarge as exc:
            raise SegmentError(413, "segments_too_large", str(exc)) from None
        try:
            # The catalogue first: entries for a new need start being written
            # before any segment can ask for them (and a need left behind by a
            # lost race is dropped by the next save).
            segment_index.sync_catalogue(account_id, [s.parsed() for s in updated])
            seg_store.save_segments(current, updated, body)
        except Conflict:
            backoff(attempt)
            continue
        forget(account_id)
        if _watched(current.segments) != _watched(updated):
            # Users written before: their membership timers follow the new rules.
            queues.send_notify_rearm({"account_id": account_id, "since": clock.now_ms()})
        return
    raise RuntimeError(f"could not save segments after {MAX_ATTEMPTS} attempts")


def _watched(segments: Iterable[Segment]) -> set[tuple[str, str]]:
    """What membership events' timers depend on: each notify segment's id and rules."""
    return {(s.id, json.dumps(s.rules, sort_keys=True)) for s in segments if s.notify}


def create_segment(account_id: str, body: Any, now_ms: int) -> Segment:
    name, description, rules, _ = parse_body(body)
    targeting = parse_targeting(body)
    segment = Segment(
        new_segment_id(), name, description, rules, now_ms, now_ms, targeting, parse_notify(body)
    )

    def add(current: SegmentSet) -> list[Segment]:
        if len(current.segments) >= MAX_SEGMENTS:
            raise SegmentError(
                409, "too_many_segments", f"an account holds at most {MAX_SEGMENTS} segments"
            )
        return [*current.segments, segment]

    _mutate(account_id, add)
    return segment


def replace_segment(account_id: str, segment_id: str, body: Any, now_ms: int) -> Segment:
    name, description, rules, _ = parse_body(body)
    targeting = parse_targeting(body)  # a PUT replaces: absent means false
    notify = parse_notify(body)
    result: list[Segment] = []

    def swap(current: SegmentSet) -> list[Segment]:
        old = current.find(segment_id)
        if old is None:
            raise not_found(segment_id)
        new = replace(
            old,
            name=name,
            description=description,
            rules=rules,
            updated_at=now_ms,
            targeting=targeting,
            notify=notify,
        )
        result[:] = [new]
        return [new if s.id == segment_id else s for s in current.segments]

    _mutate(account_id, swap)
    return result[0]


def delete_segment(account_id: str, segment_id: str) -> None:
    def drop(current: SegmentSet) -> list[Segment]:
        if current.find(segment_id) is None:
            raise not_found(segment_id)
        return [s for s in current.segments if s.id != segment_id]

    _mutate(account_id, drop)


# --------------------------------------------------------------- membership
def segments_of_user(
    account_id: str, uuid: str, now_ms: int, *, targeting_only: bool = False
) -> list[str]:
    """One user read plus in-memory evaluation against cached definitions.

    targeting_only: only segments marked `targeting` (what a browser may see).
    """
    definitions = tuple(d for d in _definitions(account_id) if d[2] or not targeting_only)
    metrics.add_metric(name="MembershipChecks", unit=MetricUnit.Count, value=1)
    if not definitions:
        return []
    found = store.get_profile(user_pk(account_id, uuid), consistent=False)
    profile = found.profile if found else None
    return [segment_id for segment_id, node, _ in definitions if is_member(node, profile, now_ms)]


# ------------------------------------------------------------------ listing
@dataclass(slots=True)
class Walk:
    """Reads a plan's index streams in parallel and keeps the members, in stream order.

    With `plan.reads == "index"` a candidate is decided from its index item
    (`partial`) when the item proves the user visible; only the others are
    read from the table. Members decided from an index that lacks standard
    attributes hold a partial profile: `with_standard` reads the ones shown.

    `found` counts every member; `members` keeps only the first `keep` of them
    (None: all, for a listing page), so a count holds a number, not a list.
    """

    plan: Plan
    node: Node
    now_ms: int
    # Per stream: None = not started, False = done, else the position after.
    state: list[Position | bool | None]
    index_items_read: int = 0
    profiles_read: int = 0
    members: list[Profile] = field(default_factory=list)
    keep: int | None = None
    found: int = 0
    consumed: int = 0
    # A user whose indexed value moves while we read (stale GSI entry in one
    # stream, fresh one in another) is kept once per walk: see `repeats`.
    seen: set[str] = field(default_factory=set)
    # Index items read per stream in a round when no page limit sizes it...
    round_items: int = 1000
    # ...or, with a deadline, what takes about round_s at the rate of the last
    # round (at most MAX_ROUND_ITEMS): a slow path ends as near its deadline.
    round_s: float | None = None

    @property
    def repeats(self) -> bool:
        """Whether the plan can yield a user twice.

        by_first_seen holds one item per visible profile under a shard fixed
        by the uuid, at a first_seen that never moves: no repeats. Elsewhere a
        user's key moves while we read (last_seen grows, the sessions bucket
        changes, an entry's value or change time changes).
        """
        return bool(self.plan.queries) and self.plan.queries[0].index != "by_first_seen"

    @property
    def done(self) -> bool:
        return all(s is False for s in self.state)

    def run(self, limit: int | None, max_reads: int | None, deadline: float | None = None) -> None:
        """Read rounds until `limit` members, `max_reads` index items or, after at
        least one round, the `deadline` (time.monotonic()); rounds end whole."""
        while not self.done and (limit is None or len(self.members) < limit):
            if max_reads is not None and self.index_items_read >= max_reads:
                return
            started, before = time.monotonic(), self.index_items_read
            self._round(limit)
            ended = time.monotonic()
            if deadline is not None and ended >= deadline:
                return
            if self.round_s is not None and self.index_items_read > before:
                per_item = (ended - started) / (self.index_items_read - before)
                streams = max(1, sum(1 for s in self.state if s is not False))
                fits = int(self.round_s / max(per_item, 1e-9) / streams)
                self.round_items = max(1, min(MAX_ROUND_ITEMS, fits))

    def _round(self, limit: int | None) -> None:
        repeats = self.repeats
        active = [i for i, s in enumerate(self.state) if s is not False]
        chunk = self._chunk(limit, len(active))
        with ThreadPoolExecutor(max_workers=min(8, len(active))) as pool:
            results = list(pool.map(self._read, active, [chunk] * len(active)))
        self.index_items_read += sum(len(hits) for hits, _ in results)
        decided = {hit.pk: self._decide(hit) for hits, _ in results for hit in hits}
        pks = {pk for pk, verdict in decided.items() if verdict is None}
        profiles = store.get_profiles(pks, consistent=False) if pks else {}
        self.profiles_read += len(profiles)
        for i, (hits, more) in zip(active, results, strict=True):
            for hit in hits:
                if limit is not None and len(self.members) >= limit:
                    break  # this stream resumes after its last consumed hit
                self.state[i] = hit.position
                self.consumed += 1
                if hit.pk in self.seen:
                    continue
                verdict = decided[hit.pk]
                if verdict is None:
                    record = profiles.get(hit.pk)
                    profile = record.profile if record is not None else None
                    member = is_member(self.node, profile, self.now_ms)
                else:
                    profile, member = hit.partial, verdict
                if member and profile is not None:
                    if repeats:
                        self.seen.add(hit.pk)
                    self.found += 1
                    if self.keep is None or len(self.members) < self.keep:
                        self.members.append(profile)
            else:
                self.state[i] = more if more is not None else False

    def _decide(self, hit: seg_store.Hit) -> bool | None:
        """Membership from the index item alone, or None when the profile must be read."""
        if self.plan.reads != "index":
            return None
        index = self.plan.queries[0].index
        shown = partial.visible(index, hit.partial, hit.live_until, self.now_ms)
        if shown is None:
            return None
        return shown and evaluate(self.node, hit.partial, self.now_ms)

    def with_standard(self, members: list[Profile], *, whole: bool = False) -> list[Profile]:
        """`members` with their full profiles where the index item lacked standard attributes
        (or, `whole`, anything: custom attributes are never in an index item).

        Those profiles are read now (and re-checked: the profile is fresher
        than the index); users erased or changed since drop out.
        """
        index = self.plan.queries[0].index if self.plan.queries else ""
        if self.plan.reads != "index":
            return members
        if not whole and partial.carried(index) >= partial.STANDARD_FIELDS:
            return members
        pks = [user_pk(p.account_id, p.uuid) for p in members]
        profiles = store.get_profiles(set(pks), consistent=False) if pks else {}
        self.profiles_read += len(profiles)
        shown = []
        for pk in pks:
            record = profiles.get(pk)
            if record is not None and is_member(self.node, record.profile, self.now_ms):
                shown.append(record.profile)
        return shown

    def _chunk(self, limit: int | None, streams: int) -> int:
        """Index items to read per stream this round: enough for the page at the yield so far."""
        if limit is None:
            return self.round_items
        want = limit - len(self.members)
        # members per item read so far (a guess of one in two before the first round)
        rate = max(len(self.members) / self.consumed, 0.05) if self.consumed else 0.5
        return min(MAX_ROUND_ITEMS, max(5, -(-int(want / rate) // streams)))

    def _read(self, i: int, chunk: int) -> tuple[list[seg_store.Hit], Position | None]:
        after = self.state[i]
        return seg_store.read_index(
            self.plan.queries[i], after if isinstance(after, list) else None, chunk
        )

    def record_metrics(self) -> None:
        # How often segments fall back to the scan, and what they read: the
        # numbers to watch when an account grows.
        name = "SegmentScans" if self.plan.path == "scan" else "SegmentIndexQueries"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name="SegmentItemsRead",
            unit=MetricUnit.Count,
            value=self.index_items_read + self.profiles_read,
        )

    def describe(self) -> dict[str, Any]:
        return {
            **self.plan.describe(),
            "index_items_read": self.index_items_read,
            "profiles_read": self.profiles_read,
            "items_read": self.index_items_read + self.profiles_read,
        }


def list_users(
    account_id: str,
    segment_id: str,
    *,
    limit: int,
    cursor: str | None,
    now_ms: int,
    custom: bool = False,
) -> dict[str, Any]:
    """A page of members, each with standard attributes, and with `custom` as
    GET /v1/users/{uuid} shows them (a profile read per member the index decided)."""
    found = seg_store.load_segments(account_id)
    segment = found.find(segment_id)
    if segment is None:
        raise not_found(segment_id)
    node = segment.parsed()
    payload = _open_cursor(cursor, found, segment) if cursor else None
    chosen, state, now_ms = start(node, account_id, now_ms, payload, fits="this segment")
    walk = Walk(chosen, node, now_ms, state)
    walk.run(limit, MAX_INDEX_READS_PER_PAGE)
    walk.record_metrics()
    next_cursor = None
    if not walk.done:
        next_cursor = cursors.sign(
            {
                "a": account_id,
                "s": segment.id,
                "r": _rules_tag(segment),
                "t": now_ms,
                "p": state,
                "e": chosen.entry_index,
            },
            found.cursor_key,
        )
    shown = walk.with_standard(walk.members, whole=custom)
    return {
        "users": [
            p.public() if custom else {"uuid": p.uuid, "standard": p.standard()} for p in shown
        ],
        "next_cursor": next_cursor,
        "plan": walk.describe(),
    }


def start(
    node: Node, account_id: str, now_ms: int, payload: dict[str, Any] | None, *, fits: str
) -> tuple[Plan, list[Position | bool | None], int]:
    """Where a walk starts: the plan, each stream's position and the time its relative
    rules are read at. Without a cursor's payload, a new plan at now_ms; with one, the
    first request's time and index (even if another became ready since) and where it
    stopped. `fits`: what a cursor whose positions do not fit the plan was made for."""
    if payload is None:
        chosen = plan(node, account_id, now_ms, segment_index.ready_for(account_id))
        return chosen, [None] * len(chosen.queries), now_ms
    now_ms = int(payload["t"])
    used = payload.get("e")
    ready = {used[0]: frozenset([used[1]])} if isinstance(used, list) else {}
    chosen = plan(node, account_id, now_ms, ready)
    state = payload["p"]
    if not isinstance(state, list) or len(state) != len(chosen.queries):
        raise SegmentError(400, "invalid_cursor", f"the cursor does not fit {fits}", "cursor")
    return chosen, state, now_ms


def _rules_tag(segment: Segment) -> str:
    return rules_tag(segment.rules)


def rules_tag(rules: Any) -> str:
    """Identifies the rules a listing or count began with: other rules, other positions."""
    canonical = json.dumps(rules, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _open_cursor(token: str, found: SegmentSet, segment: Segment) -> dict[str, Any]:
    scope = {"a": found.account_id, "s": segment.id, "r": _rules_tag(segment)}
    return open_cursor(token, found.cursor_key, scope, kind=None)


def open_cursor(
    token: str, key: bytes, scope: dict[str, Any], *, kind: str | None
) -> dict[str, Any]:
    """A listing's (kind None) or a count's signed state, checked against the request
    it came back with: its account, segment (None: a preview) and rules."""
    what = kind or "listing"
    try:
        payload = cursors.verify(token, key)
    except cursors.CursorError as exc:
        raise SegmentError(400, "invalid_cursor", str(exc), "cursor") from None
    if payload.get("k") != kind:
        other = "count" if kind is None else "listing"
        raise SegmentError(
            400,
            "invalid_cursor",
            f"a {other}'s cursor continues the {other}, not a {what}",
            "cursor",
        )
    if payload.get("a") != scope["a"] or payload.get("s") != scope["s"]:
        where = "another segment" if payload.get("s") else "a preview"
        raise SegmentError(400, "invalid_cursor", f"the cursor belongs to {where}", "cursor")
    if payload.get("r") != scope["r"]:
        if scope["s"] is None:
            raise SegmentError(
                400, "invalid_cursor", "the cursor was made for other rules", "cursor"
            )
        raise SegmentError(
            409, "cursor_stale", f"the segment was replaced since this {what} began; start over"
        )
    if not isinstance(payload.get("t"), int):
        raise SegmentError(400, "invalid_cursor", "malformed cursor", "cursor")
    return payload


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    limit = whole_number(raw, 1, MAX_LIMIT)
    if limit is None:
        raise SegmentError(
            400, "invalid_limit", f"limit must be a whole number from 1 to {MAX_LIMIT}"
        )
    return limit
