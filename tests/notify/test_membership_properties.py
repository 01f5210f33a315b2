"""No lost and no phantom membership change, over randomized histories (hypothesis).

The truth is the segment evaluator sampled at every hour (and the two
milliseconds after it) of the history: m(t) = is_member(rules, P(t), t), with
P(t) the profile written last at or before t. The system under test is
domain/notify.py driven the way services/notify.py drives it: the stream
consumer handles each write in order but late (a random lag), the timer
table is set by it and advanced by timer runs at random moments that read
whatever profile is current then. The events sent, deduplicated by id,
must be exactly the truth's changes. All times are whole hours, so every
change falls on an hour (or a millisecond after one) and the samples see
them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import example, given, settings
from hypothesis import strategies as st

from insights.domain.core.profile import CustomValue, Profile, tombstone
from insights.domain.notify import Change, Watched, next_due, on_time, on_write
from insights.domain.segments.evaluate import is_member
from insights.domain.segments.rules import parse_rules

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_795_867_200_000 - 1_795_867_200_000 % HOUR

RULES = [
    {"attribute": "last_seen", "op": "within_last", "value": "2d"},
    {
        "all": [
            {"attribute": "last_seen", "op": "not_within_last", "value": "1d"},
            {"attribute": "total_sessions", "op": "gte", "value": 2},
        ]
    },
    {"attribute": "first_seen", "op": "between", "value": ["3d", "1d"]},
    {"attribute": "custom.plan", "op": "changed_within", "value": "2d", "to": "VIP"},
    {"not": {"attribute": "last_seen", "op": "within_last", "value": "1d"}},
    {"attribute": "custom.plan", "op": "equals", "value": "VIP"},
    {"attribute": "last_seen", "op": "after", "value": "36h"},
]
WATCHED = [Watched(f"seg_{i}", f"rule {i}", parse_rules(r)) for i, r in enumerate(RULES)]


@dataclass(frozen=True)
class Write:
    at: int
    profile: Profile | None


@st.composite
def profiles(draw: st.DrawFn, at: int) -> Profile | None:
    kind = draw(st.sampled_from(["profile", "profile", "profile", "removed", "erased"]))
    if kind == "removed":
        return None
    if kind == "erased":
        return tombstone("acc", "u1", at)
    # Recent users, users about to expire (180 days), and anything between.
    age = st.one_of(
        st.integers(min_value=0, max_value=72),
        st.integers(min_value=175 * 24, max_value=182 * 24),
        st.integers(min_value=0, max_value=190 * 24),
    )
    last_seen = at - draw(age) * HOUR
    first_seen = last_seen - draw(st.integers(min_value=0, max_value=10 * 24)) * HOUR
    sessions = draw(st.integers(min_value=0, max_value=3))
    custom = {}
    if draw(st.booleans()):
        updated = at - draw(st.integers(min_value=0, max_value=5 * 24)) * HOUR
        changed = updated - draw(st.integers(min_value=0, max_value=3 * 24)) * HOUR
        custom["plan"] = CustomValue(
            draw(st.sampled_from(["VIP", "free"])), updated, "event", changed
        )
    return Profile(
        "acc",
        "u1",
        created_at=first_seen,
        first_seen=first_seen if sessions else None,
        last_seen=last_seen if sessions else None,
        total_sessions=sessions,
        custom=custom,
    )


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Write], list[int], list[int], list[Watched]]:
    watched = draw(st.lists(st.sampled_from(WATCHED), min_size=1, max_size=3, unique=True))
    writes = []
    at = T0
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        at += draw(st.integers(min_value=1, max_value=4 * 24)) * HOUR
        writes.append(Write(at, draw(profiles(at))))
    # When the stream consumer handles each write: in order, after it.
    handled, previous = [], 0
    for write in writes:
        previous = max(previous, write.at + draw(st.integers(min_value=0, max_value=48)) * HOUR)
        handled.append(previous)
    end = writes[-1].at + 10 * DAY
    runs = sorted(
        draw(st.lists(st.integers(min_value=T0 // HOUR, max_value=end // HOUR), max_size=25))
    )
    return writes, handled, [r * HOUR for r in runs], watched


def current(writes: list[Write], t: int) -> tuple[Profile | None, int | None]:
    found: tuple[Profile | None, int | None] = (None, None)
    for write in writes:
        if write.at <= t:
            found = (write.profile, write.at)
    return found


def truth(writes: list[Write], watched: list[Watched], end: int) -> set[tuple[str, int, bool]]:
    found = set()
    for w in watched:
        member = False
        for hour in range((writes[0].at - HOUR) // HOUR, end // HOUR + 1):
            for t in (hour * HOUR, hour * HOUR + 1, hour * HOUR + 2):
                if t > end:
                    break
                now = is_member(w.node, current(writes, t)[0], t)
                if now != member:
                    found.add((w.id, t, now))
                    member = now
    return found


def _visitor(at: int, last_seen: int, sessions: int = 1) -> Profile:
    return Profile("acc", "u1", last_seen, last_seen, last_seen, sessions)


# A write that brings the next change sooner than the stored timer: a long-gone
# user (in "not seen for a day" until expiry, 80 days on) comes back (out now,
# in again a day later). The timer must move earlier, or that return is lost.
COMES_BACK = (
    [Write(T0, _visitor(T0, T0 - 100 * DAY)), Write(T0 + HOUR, _visitor(T0 + HOUR, T0 + HOUR))],
    [T0, T0 + HOUR],
    [],
    [WATCHED[4]],
)


@settings(max_examples=200, derandomize=True, deadline=None)
@example(COMES_BACK)
@given(histories())
def test_events_are_exactly_the_evaluators_changes(
    history: tuple[list[Write], list[int], list[int], list[Watched]],
) -> None:
    writes, handled, runs, watched = history
    end = writes[-1].at + 10 * DAY
    sent: dict[str, Change] = {}
    timer: int | None = None

    def send(changes: list[Change]) -> None:
        for change in changes:
            assert sent.setdefault(change.event_id, change) == change

    def run_timer(at: int) -> None:
        nonlocal timer
        if timer is None or timer > at:
            return
        profile, written = current(writes, at)
        expected = timer
        if profile is not None and written is not None:
            send(on_time(watched, profile, written, expected, at))
        if timer == expected:
            timer = next_due(watched, profile, at)

    # Stream records and timer runs in the order they happen.
    steps = sorted(
        [(t, 0, i) for i, t in enumerate(handled)] + [(t, 1, -1) for t in runs],
    )
    for at, kind, index in steps:
        if kind == 1:
            run_timer(at)
            continue
        old = writes[index - 1] if index > 0 else None
        new = writes[index]
        old_profile = old.profile if old is not None else None
        send(on_write(watched, old_profile, old.at if old else None, new.profile, new.at))
        due = next_due(watched, new.profile, new.at)
        before = next_due(watched, old_profile, new.at)
        if due is not None and (before is None or due < before):
            timer = due
    # Everything handled; the schedule keeps running until the end of the history.
    for _ in range(100):
        if timer is None or timer > end:
            break
        run_timer(max(timer, steps[-1][0] if steps else 0))
    got = {(c.segment_id, c.at, c.entered) for c in sent.values() if c.at <= end}
    assert got == truth(writes, watched, end)
