"""Counting a segment (saved, or a preview's rules) in requests of bounded time.

A count walks the plan's index streams as a listing does, but keeps a number,
not the members: what it holds does not grow with the segment (the walk's
per-request `seen` set aside, see `Walk.repeats`). A count that cannot finish
within COUNT_BUDGET_S of its request answers what it counted so far with a
signed cursor (`next_cursor`); the caller sends it back and the count goes
on where it stopped, at the first request's time, until `complete`. So no
request nears API Gateway's 30 s, and a count of millions reports progress.

A count that spans requests is a walk, not a snapshot (as a listing is): a
user whose indexed key moves between two of its requests (last_seen grows,
a value changes) can be counted at both places, and one who moves behind a
stream's position is missed. Within one request a moving user counts once.
"""

from __future__ import annotations

import time
from typing import Any

from insights.domain.segments import cursor as cursors
from insights.domain.segments.rules import Node, RuleError, parse_rules
from insights.services.segments.queries import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_ROUND_ITEMS,
    SegmentError,
    Walk,
    not_found,
    open_cursor,
    rules_tag,
    start,
)
from insights.storage import segments as seg_store
from insights.storage.core.store import Conflict
from insights.storage.segments import SegmentSet

# A request stops reading rounds once this long has passed; its last round
# ends whole, and rounds are sized to take about COUNT_ROUND_S at the rate
# of the one before (at most 1,000 index items a stream), so an answer
# leaves at ~16 s, well before the 30 s limit and below the 20 s Duration
# alarm (template.yaml: SegmentsFunctionDurationAlarm).
COUNT_BUDGET_S = 15.0
COUNT_ROUND_S = 1.0
# Index items a count reads per stream in its first round, before it knows its rate.
COUNT_ROUND_ITEMS = 100
# Members a count keeps (the preview keeps its `limit` first, for `users`).
COUNT_KEEPS = 0
# Invocations one count is split over: its streams are read by one request.
COUNT_WORKERS = 1
_KIND = "count"


def count_users(
    account_id: str,
    segment_id: str,
    now_ms: int,
    *,
    cursor: str | None = None,
    whole: bool = False,
) -> dict[str, Any]:
    """The segment's members counted, or counted so far with the cursor that goes on.

    whole: count to the end in one call, however long (the benchmarks).
    """
    found = seg_store.load_segments(account_id)
    segment = found.find(segment_id)
    if segment is None:
        raise not_found(segment_id)
    scope = {"a": account_id, "s": segment.id, "r": rules_tag(segment.rules)}
    return _count(segment.parsed(), found, now_ms, scope, cursor, whole, COUNT_KEEPS)


def preview(account_id: str, body: Any, now_ms: int) -> dict[str, Any]:
    """Count and the first `limit` members of unsaved rules.

    A preview that runs out of time answers `count_so_far` and `next_cursor`;
    sent back with the same rules as `cursor`, it goes on counting (its
    `users` are the first answer's: a continuation answers none).
    """
    if not isinstance(body, dict) or "rules" not in body:
        raise RuleError("rules", "required")
    for key in body:
        if key not in ("rules", "limit", "name", "description", "cursor"):
            raise RuleError(key, "unknown field; a preview takes rules (and limit, cursor)")
    limit = body.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
        raise RuleError("limit", f"must be a whole number from 0 to {MAX_LIMIT}")
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise SegmentError(
            400, "invalid_cursor", "must be the next_cursor string of the last answer", "cursor"
        )
    node = parse_rules(body["rules"])
    scope = {"a": account_id, "s": None, "r": rules_tag(body["rules"])}
    keep = 0 if cursor else limit
    # A continuation reads the cursor key consistently: the answer before it may
    # have just stored the key (_stored_key), and a read that misses the item
    # would make up another key and refuse the account's own cursor.
    found = seg_store.load_segments(account_id, consistent=bool(cursor))
    return _count(node, found, now_ms, scope, cursor or None, False, keep)


def _count(
    node: Node,
    found: SegmentSet,
    now_ms: int,
    scope: dict[str, Any],
    cursor: str | None,
    whole: bool,
    keep: int,
) -> dict[str, Any]:
    payload = _resume(cursor, found.cursor_key, scope) if cursor else None
    counted = payload["n"] if payload else 0
    chosen, state, now_ms = start(node, found.account_id, now_ms, payload, fits="these rules")
    walk = Walk(chosen, node, now_ms, state, keep=keep, round_items=COUNT_ROUND_ITEMS)
    if whole:
        walk.round_items = MAX_ROUND_ITEMS
        walk.run(None, None)
    else:
        walk.round_s = COUNT_ROUND_S
        walk.run(None, None, time.monotonic() + COUNT_BUDGET_S)
    walk.record_metrics()
    counted += walk.found
    answer: dict[str, Any] = {}
    if walk.done:
        answer.update(count=counted, complete=True, next_cursor=None)
    else:
        token = {**scope, "k": _KIND, "t": now_ms, "n": counted, "p": state}
        token["e"] = chosen.entry_index
        answer.update(
            count_so_far=counted,
            complete=False,
            next_cursor=cursors.sign(token, _stored_key(found)),
            streams_done=sum(1 for s in state if s is False),
        )
    if scope["s"] is None:  # a preview
        shown = walk.with_standard(walk.members)
        answer["users"] = [{"uuid": p.uuid, "standard": p.standard()} for p in shown]
    answer["plan"] = walk.describe()
    return answer


def count_walk(node: Node, account_id: str, now_ms: int) -> Walk:
    """A whole count's walk in one call, kept for what it holds (the benchmarks, tests)."""
    chosen, state, now_ms = start(node, account_id, now_ms, None, fits="these rules")
    walk = Walk(chosen, node, now_ms, state, keep=COUNT_KEEPS, round_items=MAX_ROUND_ITEMS)
    walk.run(None, None)
    return walk


def _stored_key(found: SegmentSet) -> bytes:
    """The account's cursor key, stored first if no segment was ever saved.

    Until then load_segments makes up a key per call, which would not
    verify the cursor when it comes back. Storing the empty set creates it;
    a first segment saved at the same time wins or loses the same race as
    two saves do, and either way one key is kept.
    """
    if found.version is not None:
        return found.cursor_key
    try:
        return seg_store.save_segments(found, []).cursor_key
    except Conflict:
        return seg_store.load_segments(found.account_id).cursor_key


def _resume(token: str, key: bytes, scope: dict[str, Any]) -> dict[str, Any]:
    """The signed state of a count begun by an earlier request, checked against this one."""
    payload = open_cursor(token, key, scope, kind=_KIND)
    n, p = payload.get("n"), payload.get("p")
    if not (isinstance(n, int) and n >= 0 and isinstance(p, list)):
        raise SegmentError(400, "invalid_cursor", "malformed cursor", "cursor")
    return payload
