"""Membership events: announcing users entering and leaving `notify` segments.

Three paths find changes, all with the one evaluator (domain/notify.py):

- **the UsersTable stream** (`apply_record`, run by SegmentIndexFunction,
  the stream's second consumer, beside the index entries): every writer of
  profiles — session closes, imports and integrations, erasure, TTL's
  removal — reaches it. It sends the changes a write made and those time
  brought to the old profile since it was written, and keeps the user's
  timer at the new profile's next flip;
- **timers** (`fire_due`, on a schedule): a profile nobody writes still
  leaves `last_seen within_last 7d` after seven days; its timer fires then
  and sends what time changed;
- **re-arming** (`rearm`, queued when an account's notify segments change):
  users written before the change get their timers.

Accounts without notify segments pay one read of their segment definitions
per stream invocation and write nothing. Every change has a stable event id,
so the paths may overlap and retry: consumers drop ids they have seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from insights import clock
from insights.domain.notify import Watched, next_due, on_time, on_write
from insights.storage import notify as notify_store
from insights.storage import segments as seg_store
from insights.storage.core import store
from insights.storage.core.records import split_pk

# Definitions read in this invocation: an edit is seen by the next batch.
_watched: dict[str, tuple[Watched, ...]] = {}
REARM_PAGE = 100


def new_invocation() -> None:
    _watched.clear()


def watched_of(account_id: str) -> tuple[Watched, ...]:
    found = _watched.get(account_id)
    if found is None:
        found = _watched[account_id] = notify_store.watched(account_id)
    return found


def apply_record(record: dict[str, Any]) -> int:
    """One stream record of a profile item; returns the changes sent."""
    data = record.get("dynamodb", {})
    pk = data.get("Keys", {}).get("pk", {}).get("S", "")
    watched = watched_of(split_pk(pk)[0])
    if not watched:
        return 0
    old, old_written = notify_store.image(data.get("OldImage"))
    new, new_written = notify_store.image(data.get("NewImage"))
    if new is not None and new_written is not None:
        written = new_written
    else:
        # A removal (erasure, TTL) carries no time of its own but the record's, in seconds.
        approx = int(float(data.get("ApproximateCreationDateTime") or 0) * 1000)
        written = max(approx, (old_written or 0) + 1)
    changes = on_write(watched, old, old_written, new, written)
    notify_store.put_changes(changes)
    # The stored timer is at most the old profile's next flip (earlier if it
    # has not fired yet). An early timer is safe: it fires, finds nothing,
    # and moves on. So it is written only when the new profile's next flip
    # comes sooner, or is the first: a close that pushes `last_seen within_last
    # 7d` or the 180-day expiry later writes nothing.
    due = next_due(watched, new, written)
    before = next_due(watched, old, written)
    if due is not None and (before is None or due < before):
        notify_store.set_timer(pk, due)
    return len(changes)


@dataclass(slots=True)
class Fired:
    timers: int = 0
    changes: int = 0


def fire(pk: str, due: int | None, *, expected: int | None) -> int:
    """Send what time changed for one user from `due` on; re-arm the timer. Changes sent.

    The profile is read consistently after `checked`, so it was current then
    and its flips up to `checked` happened. A timer moved meanwhile by the
    stream (a newer profile) is left as that writer set it.
    """
    account_id, _ = split_pk(pk)
    watched = watched_of(account_id)
    checked = clock.now_ms()
    record = store.get_profile(pk, consistent=True)
    if record is None or not watched:
        notify_store.advance_timer(pk, expected, None)
        return 0
    start = due if due is not None else checked
    written = record.written_at if record.written_at is not None else start - 1
    changes = on_time(watched, record.profile, written, start, checked)
    notify_store.put_changes(changes)
    notify_store.advance_timer(pk, expected, next_due(watched, record.profile, checked))
    return len(changes)


def fire_due(now_ms: int, time_left: Callable[[], bool]) -> Fired:
    """Every timer due at now_ms (the scheduled run); stops when time runs short."""
    done = Fired()
    for pk, due in notify_store.due_timers(now_ms):
        if not time_left():
            break  # the next run finds the rest still due
        done.timers += 1
        done.changes += fire(pk, due, expected=due)
    return done


def rearm(message: dict[str, Any], time_left: Callable[[], bool]) -> dict[str, Any] | None:
    """One slice of re-arming an account's users after its notify segments changed at
    `since`; the message for the next slice, or None when done.

    Each visible user is judged from `since` on, as if its timer had been due
    then: changes time made since are sent, and the timer set to the next.
    """
    account_id, since = str(message["account_id"]), int(message["since"])
    position: seg_store.WalkPosition | None = message.get("position") or [0, None]
    new_invocation()  # the definitions as they are now
    while position is not None:
        pks, position = seg_store.visible_profile_pks(account_id, position, REARM_PAGE)
        for pk in pks:
            fire(pk, since, expected=notify_store.get_timer(pk))
        if position is not None and not time_left():
            return {"account_id": account_id, "since": since, "position": position}
    return None
