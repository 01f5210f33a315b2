"""Folding events into sessions: gaps, the 12-hour cap, order and duplicates."""

from __future__ import annotations

import itertools
import random

from insights.domain.events import Event
from insights.domain.profile import apply_sessions
from insights.domain.sessions import MAX_SESSION_MS, Enrichment, Session, fold
from insights.domain.timefmt import HOUR_MS, MINUTE_MS

T0 = 1_790_000_000_000
TIMEOUT = 30 * MINUTE_MS
FAR_FUTURE = T0 + 1000 * HOUR_MS
PLACE = Enrichment(country="United Kingdom", browser_name="Chrome")


def ev(minute: float, interactive: bool = True, index: int = 0, **props: object) -> Event:
    return Event(index, "u", T0 + int(minute * MINUTE_MS), interactive, dict(props))


def run(
    events: list[Event],
    open_session: Session | None = None,
    last_end: int | None = None,
    now: int = FAR_FUTURE - 0,
):
    return fold(
        open_session,
        sorted(events, key=lambda e: e.ts),
        last_closed_end=last_end,
        timeout_ms=TIMEOUT,
        enrichment=PLACE,
        now_ms=now,
    )


def test_events_within_the_timeout_make_one_session() -> None:
    result = run([ev(0), ev(10), ev(29.9)], now=T0 + 40 * MINUTE_MS)
    assert result.closed == []
    assert result.open is not None
    assert (result.open.start, result.open.end) == (T0, T0 + int(29.9 * MINUTE_MS))


def test_a_gap_of_the_timeout_closes_the_earlier_run() -> None:
    result = run([ev(0), ev(5), ev(35)], now=T0 + 36 * MINUTE_MS)
    assert [(s.start, s.end) for s in result.closed] == [(T0, T0 + 5 * MINUTE_MS)]
    assert result.open is not None and result.open.start == T0 + 35 * MINUTE_MS
    assert result.open.prev_end == T0 + 5 * MINUTE_MS


def test_backfilled_run_past_its_deadline_closes_at_once() -> None:
    result = run([ev(0), ev(3)], now=T0 + 34 * MINUTE_MS)
    assert result.open is None and len(result.closed) == 1


def test_sessions_are_capped_at_twelve_hours() -> None:
    events = [ev(m) for m in range(0, 13 * 60, 20)]  # an event every 20 minutes for 13 hours
    result = run(events)
    first, *_ = result.closed
    assert first.end - first.start < MAX_SESSION_MS
    assert result.open is None or result.open.start - first.start >= MAX_SESSION_MS
    open_session = Session(start=T0, end=T0 + 11 * HOUR_MS + 50 * MINUTE_MS, interactive=True)
    assert open_session.deadline(TIMEOUT) == T0 + MAX_SESSION_MS


def test_order_and_duplicates_do_not_matter() -> None:
    events = [ev(0, role="a"), ev(3, role="b"), ev(4, status="x"), ev(50, role="c"), ev(51)]
    expected = run(events)
    shuffled = events * 3
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert run(shuffled) == expected


def test_requests_split_any_way_give_the_same_sessions() -> None:
    events = [ev(0, role="a"), ev(3, role="b"), ev(10), ev(50, role="c"), ev(51), ev(140)]
    whole = run(events, now=T0 + 145 * MINUTE_MS)
    for cut in itertools.combinations(range(1, len(events)), 2):
        parts = [events[: cut[0]], events[cut[0] : cut[1]], events[cut[1] :]]
        open_session, closed = None, []
        for part in reversed(parts):  # later requests arrive first
            result = fold(
                open_session,
                part,
                last_closed_end=None,
                timeout_ms=TIMEOUT,
                enrichment=PLACE,
                now_ms=T0 + 145 * MINUTE_MS,
            )
            open_session, closed = result.open, closed + result.closed
        total = apply_sessions(
            None,
            closed + ([open_session] if open_session else []),
            account_id="a",
            uuid="u",
            now_ms=T0,
        )
        expected = apply_sessions(
            None, [*whole.closed, whole.open], account_id="a", uuid="u", now_ms=T0
        )
        assert total is not None and expected is not None
        assert total.total_sessions >= expected.total_sessions  # reorder across a gap may split
        assert total.custom == expected.custom


def test_latest_property_value_wins_by_event_time() -> None:
    result = run([ev(5, role="new"), ev(1, role="old")], now=T0)
    assert result.open is not None
    assert result.open.props["role"].value == "new"


def test_same_time_conflicts_resolve_the_same_whatever_the_order() -> None:
    a, b = ev(1, role="admin"), ev(1, role="viewer")
    assert run([a, b]).open == run([b, a]).open


def test_late_events_count_and_only_carry_properties() -> None:
    open_session = Session(
        start=T0 + 60 * MINUTE_MS,
        end=T0 + 61 * MINUTE_MS,
        interactive=True,
        prev_end=T0 + 20 * MINUTE_MS,
    )
    result = run(
        [ev(10, plan="vip"), ev(61.5)],
        open_session,
        last_end=T0 + 20 * MINUTE_MS,
        now=T0 + 62 * MINUTE_MS,
    )
    assert result.late == 1
    assert result.open is not None and result.open.start == T0 + 60 * MINUTE_MS
    assert result.open.props["plan"].value == "vip"


def test_late_events_without_an_open_session_hand_back_their_properties() -> None:
    result = run([ev(10, plan="vip")], last_end=T0 + 20 * MINUTE_MS, now=T0 + 62 * MINUTE_MS)
    assert result.open is None and result.closed == []
    assert result.late == 1 and result.late_props["plan"].value == "vip"


def test_non_interactive_only_run_is_an_empty_session() -> None:
    result = run([ev(0, interactive=False)], now=T0 + 31 * MINUTE_MS)
    assert len(result.closed) == 1 and not result.closed[0].interactive
    assert apply_sessions(None, result.closed, account_id="a", uuid="u", now_ms=T0) is None
