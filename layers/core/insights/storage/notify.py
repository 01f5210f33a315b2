"""Membership events' storage: the watched segments, users' timers, and the event bus.

A timer is one small item per user (NotifyTimersTable, `pk` = the user's
key, `due` = epoch ms of the next moment time alone changes a watched
segment's membership), kept only for users of accounts with `notify`
segments: members always have one (they leave at expiry, 180 days after
their last activity), others when a relative bound will let them in. Due
timers are found by a scan, as the sweeper finds due sessions: the table
holds nothing else, a timer is written with one write (a GSI on the due
time would add a delete and a put), and a scan has no hot partition
(docs/events.md, "Cost").
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, PutError
from pynamodb.models import Model

from insights.domain.core.profile import Profile
from insights.domain.notify import DETAIL_TYPE, SOURCE, Change, Watched
from insights.storage import aws
from insights.storage import segments as seg_store
from insights.storage.aws import share
from insights.storage.core.models import UserItem, _Meta
from insights.storage.core.records import PROFILE_SK, profile_from_item

# PutEvents takes at most 10 entries a call.
PUT_BATCH = 10
PUT_ATTEMPTS = 3


class TimerItem(Model):
    class Meta(_Meta):
        table_name = os.environ.get("NOTIFY_TIMERS_TABLE", "NotifyTimersTable")

    pk = UnicodeAttribute(hash_key=True)  # "<account id>#<uuid>", as the profile
    due = NumberAttribute()  # epoch ms


class EventsNotSent(Exception):
    """Some changes could not be put on the bus: the caller's record is retried."""


# ---------------------------------------------------------------- segments
def watched(account_id: str) -> tuple[Watched, ...]:
    """The account's `notify` segments, read consistently: a profile written after a
    segment was marked is judged with it (its stream record is read after the save)."""
    found = seg_store.load_segments(account_id, consistent=True)
    return tuple(Watched(s.id, s.name, s.parsed()) for s in found.segments if s.notify)


# ------------------------------------------------------------ stream images
def image(raw: dict[str, Any] | None) -> tuple[Profile | None, int | None]:
    """A stream image of a profile item: the profile and when it was written."""
    if not raw or raw.get("sk", {}).get("S") != PROFILE_SK:
        return None, None
    record = profile_from_item(UserItem.from_raw_data(raw))
    return record.profile, record.written_at


# ------------------------------------------------------------------ timers
def set_timer(pk: str, due: int | None) -> None:
    """The user's next due moment (None: no timer), whatever was stored."""
    if due is None:
        TimerItem(pk).delete()
    else:
        TimerItem(pk, due=due).save()


def get_timer(pk: str) -> int | None:
    try:
        return int(TimerItem.get(pk, consistent_read=True).due)
    except TimerItem.DoesNotExist:
        return None


def advance_timer(pk: str, expected: int | None, due: int | None) -> bool:
    """Move the timer from `expected` to `due`; False if another writer moved it first
    (a newer profile's stream record: its value wins)."""
    condition = TimerItem.pk.does_not_exist() if expected is None else TimerItem.due == expected
    try:
        if due is None:
            if expected is not None:
                TimerItem(pk).delete(condition=condition)
        else:
            TimerItem(pk, due=due).save(condition=condition)
    except (PutError, DeleteError) as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def due_timers(now_ms: int) -> Iterator[tuple[str, int]]:
    """(pk, due) of every timer due at now_ms, by an eventually consistent scan.

    Billed for the bytes read (every timer, ~60 bytes each), not the matches.
    """
    for item in TimerItem.scan(TimerItem.due <= now_ms):
        yield item.pk, int(item.due)


# --------------------------------------------------------------- the bus
def put_changes(changes: list[Change]) -> None:
    """Put one event per change on the stack's bus; raises EventsNotSent if any stays out.

    Entries that fail are retried (EventBridge reports them one by one);
    entries that went through may be sent again by the caller's retry, with
    the same event id.
    """
    if not changes:
        return
    bus = os.environ.get("EVENT_BUS_NAME", "")
    if not bus:  # never dropped quietly: the record is retried once the bus is set
        raise EventsNotSent("EVENT_BUS_NAME is not set: membership events have no bus")
    for start in range(0, len(changes), PUT_BATCH):
        entries = [_entry(c, bus) for c in changes[start : start + PUT_BATCH]]
        for _ in range(PUT_ATTEMPTS):
            answer = aws.client("events").put_events(Entries=entries)
            if not answer.get("FailedEntryCount"):
                break
            entries = [
                e for e, r in zip(entries, answer["Entries"], strict=True) if r.get("ErrorCode")
            ]
        else:
            raise EventsNotSent(f"{len(entries)} membership events were refused by the bus")


# One botocore client per container for every model (storage/aws.py).
share(TimerItem)


def _entry(change: Change, bus: str) -> dict[str, Any]:
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(change.detail(), separators=(",", ":"), ensure_ascii=False),
        "EventBusName": bus,
        "Time": datetime.fromtimestamp(change.at / 1000, UTC),
    }
