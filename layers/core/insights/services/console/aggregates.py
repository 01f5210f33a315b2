"""Keeping the console's daily stats and attribute catalogue, from the UsersTable stream.

SegmentIndexFunction already receives every profile write with its old and
new image (a third reader of the stream would exceed the two per shard that
DynamoDB Streams supports without throttling), so it also sums what each
change adds (domain/console/stats.py), per account and batch.

- **Pending, then rolled up.** A batch's sums go into one pending item per
  account (a plain put, 1 WRU under 1 KB), not into the aggregate items:
  those are 2 WRU each in a transaction, and a close in a quiet account's
  batch of one would pay for the day, the users count and every custom
  attribute it changes (12 WRU for a new user with four). At most once an
  hour per account, the first batch that finds sums older than
  ROLL_UP_LAG_MS folds them into the aggregate items in one transaction that
  also moves the account's marker, conditioned on where it was: applied
  once, whoever tries. A quiet account waits for QUIET_PENDING_ITEMS of them
  or a day. Readers add the pending sums after the marker
  (docs/console-api.md).
- **Exactly once.** A pending item's key is the time and sequence number of
  the account's first record in the batch's summed range: Lambda redelivers
  a batch from that record or later (whole, bisected, or from a reported
  failure), so a retry either rewrites the same key with the sums of the
  records it now holds or starts a new key past the records summed before.
  Only records before the batch's first failed one are summed.
- **Late batches** (records older than LATE_MS, after long retries) are
  applied at once with an idempotent transaction as before, so a roll-up,
  which folds only sums older than ROLL_UP_LAG_MS, never misses a pending
  item written behind its marker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from insights.domain.console.stats import MAX_EXAMPLES, Deltas
from insights.storage.console import aggregates
from insights.storage.console.aggregates import Update
from insights.storage.core.records import split_pk
from insights.storage.segments import profile_from_image

MINUTE_MS = 60_000
# Records this old (long retries) are applied at once, not left pending.
LATE_MS = 30 * MINUTE_MS
# Pending sums are folded once this old: well past LATE_MS, so no pending
# item can still be written behind the marker.
ROLL_UP_LAG_MS = 60 * MINUTE_MS
ROLL_UP_EVERY_MS = 60 * MINUTE_MS
# A quiet account folds less often. An hourly fold of a few pending sums
# rewrites the same aggregate items (the day, the users count, the attributes
# touched: 2 WRU each in a transaction) every hour for a close or two. It
# waits until this many pending items can be folded, or the oldest of them is
# a day old: its readers then add at most about that many pending items (and
# the last hour's), and an account with more batches than that in an hour
# folds hourly as before.
QUIET_PENDING_ITEMS = 24
QUIET_FOLD_AFTER_MS = 24 * 60 * MINUTE_MS
# Sums that touch this many items are applied at once (a roll-up is one
# transaction of at most 100 items, the marker included).
MAX_PENDING_ITEMS = 90
# Pending items are deleted by TTL this long after they were written, past
# any roll-up: every sum comes from a change of some user's profile, which
# expires (a REMOVE, so a batch for the account, so a roll-up) within the
# 180 days of retention if nothing else of the account changes first.
PENDING_KEPT_MS = 200 * 24 * 60 * MINUTE_MS


def updates_of(
    account_id: str, deltas: Deltas, stored_examples: dict[str, set[str]] | None = None
) -> list[Update]:
    """The aggregate updates of one account's sums; stored_examples (the catalogue's
    current examples) lets new values in while an attribute has fewer than five."""
    updates: list[Update] = []
    day_pk = aggregates.day_pk(account_id)
    for day, counters in sorted(deltas.nonzero_days().items()):
        updates.append(Update(day_pk, day, counters))
    if deltas.users:
        updates.append(Update(day_pk, aggregates.USERS_SK, {"count": deltas.users}))
    attr_pk = aggregates.attribute_pk(account_id)
    counted = deltas.nonzero_attributes()
    for name in sorted(counted.keys() | deltas.examples_seen.keys()):
        gone = frozenset(deltas.examples_gone.get(name, ()))
        new: frozenset[str] = frozenset()
        if stored_examples is not None and not gone:  # one set action per item and write
            have = stored_examples.get(name, set())
            room = MAX_EXAMPLES - len(have)
            fresh = sorted(deltas.examples_seen.get(name, set()) - have)
            new = frozenset(fresh[: max(0, room)])
        if counted.get(name) or gone or new:
            updates.append(Update(attr_pk, name, counted.get(name, {}), gone, new))
    return updates


def apply_records(records: Sequence[dict[str, Any]], now_ms: int) -> int:
    """Sum the records' changes by account and keep them; returns the items written."""
    if not records:
        return 0
    written = 0
    for account_id, (deltas, first) in sorted(_by_account(records).items()):
        # The roll-up first: should it fail, Lambda redelivers the batch with
        # nothing of it written yet (a pending put is the batch's last write).
        written += roll_up(account_id, now_ms)
        created_ms = _created_ms(first, now_ms)
        if deltas.is_empty():
            continue
        if created_ms < now_ms - LATE_MS or deltas.item_count() >= MAX_PENDING_ITEMS:
            written += _apply_at_once(account_id, deltas, records)
        else:
            sk = aggregates.pending_sk(created_ms, first["dynamodb"]["SequenceNumber"])
            expires_s = (created_ms + PENDING_KEPT_MS) // 1000
            aggregates.put_pending(account_id, sk, deltas.encode(), expires_s)
            written += 1
    return written


def roll_up(account_id: str, now_ms: int, force: bool = False) -> int:
    """Fold the account's pending sums older than ROLL_UP_LAG_MS into its aggregate
    items, at most once an hour, and for a quiet account once QUIET_PENDING_ITEMS
    have gathered or the oldest is QUIET_FOLD_AFTER_MS old (force: whatever their
    number and age)."""
    previous = aggregates.read_rolled(account_id)
    upto_ms = now_ms - ROLL_UP_LAG_MS
    rolled_ms = aggregates.pending_time(previous)
    if not force and upto_ms - rolled_ms < ROLL_UP_EVERY_MS:
        return 0
    found = aggregates.read_pending(account_id, previous, f"{upto_ms:013d}~")
    if not found:
        return 0
    oldest_ms = aggregates.pending_time(found[0][0])
    quiet = len(found) < QUIET_PENDING_ITEMS and now_ms - oldest_ms < QUIET_FOLD_AFTER_MS
    if quiet and not force:
        return 0
    total, last = Deltas(), None
    for sk, sums in found:
        more = Deltas.decode(sums)
        trial = Deltas()
        trial.merge(total)
        trial.merge(more)
        if last is not None and trial.item_count() >= MAX_PENDING_ITEMS:
            break  # the next roll-up takes the rest
        total, last = trial, sk
    if last is None:
        return 0
    updates = _updates(account_id, total)
    return len(updates) + 1 if aggregates.roll_up(account_id, updates, previous, last) else 0


def pending(account_id: str) -> Deltas:
    """The sums not folded yet: what a reader adds to the aggregate items."""
    total = Deltas()
    for _sk, sums in aggregates.read_pending(account_id, aggregates.read_rolled(account_id)):
        total.merge(Deltas.decode(sums))
    return total


def _by_account(records: Sequence[dict[str, Any]]) -> dict[str, tuple[Deltas, dict[str, Any]]]:
    """Each account's sums and its first record in the batch."""
    found: dict[str, tuple[Deltas, dict[str, Any]]] = {}
    for record in records:
        data = record.get("dynamodb", {})
        pk = data.get("Keys", {}).get("pk", {}).get("S", "")
        old = profile_from_image(data.get("OldImage"))
        new = (
            profile_from_image(data.get("NewImage"))
            if record.get("eventName") != "REMOVE"
            else None
        )
        account_id, _ = split_pk(pk)
        deltas, _first = found.setdefault(account_id, (Deltas(), record))
        if old is not None or new is not None:
            deltas.add_profile_change(old, new)
    return found


def _created_ms(record: dict[str, Any], now_ms: int) -> int:
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    return int(float(created) * 1000) if created is not None else now_ms


def _apply_at_once(account_id: str, deltas: Deltas, records: Sequence[dict[str, Any]]) -> int:
    updates = _updates(account_id, deltas)
    token = hashlib.sha256(
        "\n".join(
            [account_id]
            + [str(r.get("eventID") or r["dynamodb"]["SequenceNumber"]) for r in records]
        ).encode()
    ).hexdigest()
    aggregates.apply(updates, token)
    return len(updates)


def _updates(account_id: str, deltas: Deltas) -> list[Update]:
    """The aggregate updates of these sums, reading the catalogue's examples only if needed."""
    return updates_of(
        account_id, deltas, _stored_examples(account_id) if deltas.examples_seen else None
    )


def _stored_examples(account_id: str) -> dict[str, set[str]]:
    """The catalogue's examples (one Query), read only when a batch saw new values."""
    return {
        name: set(item.get(aggregates.EXAMPLES) or ())
        for name, item in aggregates.read_attributes(account_id).items()
    }
