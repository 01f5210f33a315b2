"""Segment membership changes: when a user enters or leaves a `notify` segment, and when.

A user's membership over time is m(t) = is_member(rules, P(t), t), where P(t)
is the profile stored at time t (the one evaluator decides, so an event can
never disagree with the per-user call). m changes in two ways:

- at a profile write at time w: m(w - 1) was decided by the old profile,
  m(w) by the new one (a close, an import, erasure, a returning user's fresh
  record);
- between writes, when time passes over a relative bound: `within_last 7d`
  is left by doing nothing, `changed_within` runs out, a user expires after
  180 days. Those moments follow from the profile and the rule alone
  (`candidates`), so they are kept like a session's deadline (a timer at
  the next one) instead of re-evaluating every user on a schedule.

A change is identified by (account, uuid, segment, entered/exited, time):
whoever computes it, the stream consumer or the timer, however often, it
gets the same event id (`Change.event_id`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from insights.domain.core.profile import RETENTION_MS, Profile
from insights.domain.core.timefmt import MAX_EPOCH_MS, format_time
from insights.domain.segments.evaluate import as_time, is_member, standard_value
from insights.domain.segments.rules import Condition, Group, Node, Not, Relative

SOURCE = "insights"
DETAIL_TYPE = "Segment Membership Changed"
# Operators whose truth depends on the moment of evaluation (with a relative operand).
_ORDER = ("gt", "gte", "lt", "lte", "between", "before", "after")


@dataclass(frozen=True, slots=True)
class Watched:
    """A segment marked `notify`: its id, name and parsed rules."""

    id: str
    name: str
    node: Node


@dataclass(frozen=True, slots=True)
class Change:
    account_id: str
    uuid: str
    segment_id: str
    segment_name: str
    entered: bool
    at: int  # epoch ms: the first moment of the new membership

    @property
    def event_id(self) -> str:
        """The same for the same change however often it is computed or sent."""
        key = "\x1f".join((self.account_id, self.uuid, self.segment_id, self.kind, str(self.at)))
        return "mc_" + hashlib.sha256(key.encode()).hexdigest()[:32]

    @property
    def kind(self) -> str:
        return "entered" if self.entered else "exited"

    def detail(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "account_id": self.account_id,
            "segment_id": self.segment_id,
            "segment_name": self.segment_name,
            "uuid": self.uuid,
            "change": self.kind,
            "time": format_time(self.at),
        }


# ----------------------------------------------------------- when m can flip
def candidates(node: Node, profile: Profile) -> set[int]:
    """Every moment at which the rules' verdict on this profile can change with time alone.

    A superset: the evaluator decides at each. For a value `at` and a duration
    or relative bound `d`, a condition can only turn at `at` (within_last's
    upper bound: not in the future), `at + d` or `at + d + 1` (strict and
    inclusive bounds); and every user leaves every segment when they expire,
    180 days after their last activity.
    """
    found = {profile.last_activity + RETENTION_MS, profile.last_activity + RETENTION_MS + 1}
    for condition in _conditions(node):
        found.update(_moments(condition, profile))
    return found


def _conditions(node: Node) -> Iterator[Condition]:
    if isinstance(node, Condition):
        yield node
    elif isinstance(node, Not):
        yield from _conditions(node.child)
    elif isinstance(node, Group):
        for child in node.children:
            yield from _conditions(child)


def _moments(c: Condition, profile: Profile) -> Iterable[int]:
    if c.attr_type == "custom":
        custom = profile.custom.get(c.attribute[len("custom.") :])
        if custom is None or custom.value is None:
            return ()
        if c.op == "changed_within":
            return _around(custom.changed_since, c.value)
        value: Any = custom.value
    elif c.attr_type == "timestamp":
        value = standard_value(profile, c.attribute)
    else:
        return ()  # numbers and strings do not move with time
    at = as_time(value)
    if at is None or not -MAX_EPOCH_MS < at < MAX_EPOCH_MS:
        return ()
    if c.op in ("within_last", "not_within_last"):
        return (*_around(at, 0), *_around(at, c.value))
    if c.op in _ORDER:
        bounds = c.value if c.op == "between" else (c.value,)
        return [m for b in bounds if isinstance(b, Relative) for m in _around(at, b.ms)]
    return ()


def _around(at: float, duration: int) -> tuple[int, ...]:
    """The whole milliseconds where a bound `at + duration` (strict or not) can be crossed."""
    edge = math.floor(at) + duration
    return (edge, edge + 1, edge + 2)


def flips(node: Node, profile: Profile | None, after: int, until: int) -> list[tuple[int, bool]]:
    """(moment, member from then on) for each change of membership in (after, until]."""
    if profile is None or until <= after:
        return []
    member = is_member(node, profile, after)
    found = []
    for moment in sorted(m for m in candidates(node, profile) if after < m <= until):
        now = is_member(node, profile, moment)
        if now != member:
            found.append((moment, now))
            member = now
    return found


def next_flip(node: Node, profile: Profile | None, after: int) -> int | None:
    """The first moment after `after` at which time alone changes the membership."""
    if profile is None:
        return None
    member = is_member(node, profile, after)
    for moment in sorted(m for m in candidates(node, profile) if m > after):
        if is_member(node, profile, moment) != member:
            return moment
    return None


def next_due(watched: Iterable[Watched], profile: Profile | None, after: int) -> int | None:
    """When the user's timer should fire: the earliest flip of any watched segment."""
    due = [d for w in watched if (d := next_flip(w.node, profile, after)) is not None]
    return min(due) if due else None


# ----------------------------------------------------------------- changes
def _change(account_id: str, uuid: str, w: Watched, at: int, entered: bool) -> Change:
    return Change(account_id, uuid, w.id, w.name, entered, at)


def on_write(
    watched: Iterable[Watched],
    old: Profile | None,
    old_written: int | None,
    new: Profile | None,
    written: int,
) -> list[Change]:
    """The changes up to a write at `written`: the old profile's own (time passing, since
    it was written at `old_written`) and the write's (old at written - 1, new at written)."""
    subject = new or old
    if subject is None:
        return []
    account_id, uuid = subject.account_id, subject.uuid
    found = []
    for w in watched:
        if old is not None and old_written is not None:
            for at, entered in flips(w.node, old, old_written, written - 1):
                found.append(_change(account_id, uuid, w, at, entered))
        before = is_member(w.node, old, written - 1)
        after = is_member(w.node, new, written)
        if before != after:
            found.append(_change(account_id, uuid, w, written, after))
    return sorted(found, key=lambda c: (c.at, c.segment_id))


def on_time(
    watched: Iterable[Watched], profile: Profile, written: int, due: int, now: int
) -> list[Change]:
    """The changes time brought to a profile still current at `now`: those from `due`
    (the timer: the first not yet sent) on, and never before the profile was written."""
    start = max(due - 1, written)
    found = [
        _change(profile.account_id, profile.uuid, w, at, entered)
        for w in watched
        for at, entered in flips(w.node, profile, start, now)
    ]
    return sorted(found, key=lambda c: (c.at, c.segment_id))
