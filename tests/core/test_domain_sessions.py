"""Folding events into a user's window: gaps, the 12-hour cap, order, bounds and closing."""

from __future__ import annotations

import itertools
import random

from insights.domain.core.events import Event
from insights.domain.core.profile import apply_sessions
from insights.domain.core.sessions import (
    MAX_RUNS,
    MAX_SESSION_MS,
    SENT_MEMORY,
    Enrichment,
    Session,
    Window,
    fold,
    recalled_shift,
    remember_offset,
    settle,
)
from insights.domain.core.timefmt import HOUR_MS, MINUTE_MS

T0 = 1_790_000_000_000
TIMEOUT = 30 * MINUTE_MS
NOW = T0 + 1000 * HOUR_MS
PLACE = Enrichment(country="United Kingdom", browser_name="Chrome")


def ev(minute: float, interactive: bool = True, index: int = 0, **props: object) -> Event:
    return Event(index, "u", T0 + int(minute * MINUTE_MS), interactive, dict(props))


def run(
    events: list[Event],
    window: Window | None = None,
    last_end: int | None = None,
    now: int = NOW,
):
    return fold(
        window,
        events,
        last_closed_end=last_end,
        timeout_ms=TIMEOUT,
        enrichment=PLACE,
        now_ms=now,
    )


def spans(runs) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in runs]


def close_all(window: Window | None) -> list[Session]:
    if window is None:
        return []
    closed, remaining = settle(window, window.closes_at(TIMEOUT), TIMEOUT)
    assert remaining is None
    return closed


def test_events_within_the_timeout_make_one_run() -> None:
    result = run([ev(0), ev(10), ev(29.9)])
    assert result.closed == [] and result.window is not None
    assert spans(result.window.runs) == [(T0, T0 + int(29.9 * MINUTE_MS))]


def test_a_gap_of_the_timeout_splits_runs_but_both_stay_open() -> None:
    result = run([ev(0), ev(5), ev(35)])
    assert result.closed == [] and result.window is not None
    assert spans(result.window.runs) == [(T0, T0 + 5 * MINUTE_MS), (T0 + 35 * MINUTE_MS,) * 2]


def test_old_events_stay_open_until_the_window_goes_quiet() -> None:
    """Days-old events do not close at once: closing follows arrivals, not event times."""
    result = run([ev(0), ev(3)], now=T0 + 72 * HOUR_MS)
    assert result.closed == [] and result.window is not None
    window = result.window
    assert window.closes_at(TIMEOUT) == T0 + 72 * HOUR_MS + TIMEOUT
    assert settle(window, window.closes_at(TIMEOUT) - 1, TIMEOUT) == ([], window)
    closed, remaining = settle(window, window.closes_at(TIMEOUT), TIMEOUT)
    assert remaining is None and spans(closed) == [(T0, T0 + 3 * MINUTE_MS)]


def test_the_next_request_after_the_window_closed_closes_it_lazily() -> None:
    first = run([ev(0)], now=T0)
    later = run([ev(40)], first.window, now=T0 + 40 * MINUTE_MS)
    assert spans(later.closed) == [(T0, T0)]
    assert later.window is not None and later.window.prev_end == T0


def test_sessions_are_capped_at_twelve_hours() -> None:
    events = [ev(m) for m in range(0, 13 * 60, 20)]  # an event every 20 minutes for 13 hours
    result = run(events)
    assert result.window is not None
    first, second = result.window.runs
    assert first.end - first.start < MAX_SESSION_MS <= second.start - first.start


def test_a_run_cut_by_the_cap_closes_after_the_timeout_without_new_events() -> None:
    events = [ev(m) for m in range(0, 13 * 60, 20)]
    window = run(events[:37], now=T0).window
    window = run(events[37:], window, now=T0 + MINUTE_MS).window
    assert window is not None and len(window.runs) == 2
    # The first run last changed at T0: it is due a timeout later, the window is not.
    assert window.due_at(TIMEOUT) == T0 + TIMEOUT
    closed, remaining = settle(window, T0 + TIMEOUT, TIMEOUT)
    assert len(closed) == 1 and remaining is not None and len(remaining.runs) == 1
    assert remaining.prev_end == closed[0].end


def test_a_run_cut_by_a_gap_waits_for_the_window_or_twelve_hours() -> None:
    window = run([ev(0)], now=T0).window
    window = run([ev(40)], window, now=T0 + 20 * MINUTE_MS).window
    window = run([ev(41)], window, now=T0 + 45 * MINUTE_MS).window
    assert window is not None
    assert settle(window, T0 + 60 * MINUTE_MS, TIMEOUT)[0] == []
    assert window.due_at(TIMEOUT) == T0 + 45 * MINUTE_MS + TIMEOUT


def test_past_the_bound_the_oldest_runs_close_at_once() -> None:
    events = [ev(60 * n) for n in range(MAX_RUNS + 2)]  # runs an hour apart
    result = run(events, now=T0)
    assert spans(result.closed) == [(T0, T0), (T0 + HOUR_MS,) * 2]
    assert result.window is not None and len(result.window.runs) == MAX_RUNS
    assert result.window.prev_end == T0 + HOUR_MS
    again = run([ev(30)], result.window, now=T0 + MINUTE_MS)  # before a closed run's end
    assert again.late == 1


def test_order_and_duplicates_do_not_matter() -> None:
    events = [ev(0, role="a"), ev(3, role="b"), ev(4, status="x"), ev(50, role="c"), ev(51)]
    expected = run(events).window
    shuffled = events * 3
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert run(shuffled).window == expected


def test_requests_split_any_way_and_in_any_order_give_the_same_sessions() -> None:
    events = [ev(0, role="a"), ev(3, role="b"), ev(10), ev(29.99), ev(60, role="c"), ev(140)]
    whole = close_all(run(events, now=T0).window)
    for cut in itertools.combinations(range(1, len(events)), 2):
        parts = [events[: cut[0]], events[cut[0] : cut[1]], events[cut[1] :]]
        for order in itertools.permutations(parts):
            window, closed = None, []
            for n, part in enumerate(order):
                result = run(part, window, now=T0 + n * MINUTE_MS)
                window, closed = result.window, closed + result.closed
            assert [s.content() for s in closed + close_all(window)] == [s.content() for s in whole]


def test_a_pure_duplicate_leaves_the_window_unchanged() -> None:
    window = run([ev(0, role="a")], now=T0).window
    assert run([ev(0, role="a")], window, now=T0 + 5 * MINUTE_MS).window == window


def test_latest_property_value_wins_by_event_time() -> None:
    result = run([ev(5, role="new"), ev(1, role="old")])
    assert result.window is not None
    assert result.window.runs[0].props["role"].value == "new"


def test_same_time_conflicts_resolve_the_same_whatever_the_order() -> None:
    a, b = ev(1, role="admin"), ev(1, role="viewer")
    assert run([a, b]).window == run([b, a]).window


def test_same_time_contexts_resolve_the_same_whatever_the_order() -> None:
    other = Enrichment(country="Sweden", browser_name="Firefox")
    one = fold(None, [ev(1)], last_closed_end=None, timeout_ms=TIMEOUT, enrichment=PLACE, now_ms=T0)
    both = fold(
        one.window, [ev(1)], last_closed_end=None, timeout_ms=TIMEOUT, enrichment=other, now_ms=T0
    )
    two = fold(None, [ev(1)], last_closed_end=None, timeout_ms=TIMEOUT, enrichment=other, now_ms=T0)
    back = fold(
        two.window, [ev(1)], last_closed_end=None, timeout_ms=TIMEOUT, enrichment=PLACE, now_ms=T0
    )
    assert both.window is not None and back.window is not None
    assert both.window.runs[0].enrichment == back.window.runs[0].enrichment


def test_late_events_count_and_carry_interactive_properties_only() -> None:
    window = run([ev(60)], now=T0).window
    assert window is not None
    window = Window(runs=window.runs, seen=window.seen, prev_end=T0 + 20 * MINUTE_MS)
    result = run([ev(10, plan="vip"), ev(11, False, color="red"), ev(61.5)], window, now=T0)
    assert result.late == 2
    assert result.window is not None and spans(result.window.runs)[0][0] == T0 + 60 * MINUTE_MS
    assert set(result.window.late_props) == {"plan"}


def test_late_events_without_an_open_window_hand_back_their_properties() -> None:
    result = run([ev(10, plan="vip")], last_end=T0 + 20 * MINUTE_MS)
    assert result.window is None and result.closed == []
    assert result.late == 1 and result.late_props["plan"].value == "vip"


def test_non_interactive_only_run_is_an_empty_session() -> None:
    closed = close_all(run([ev(0, interactive=False)]).window)
    assert len(closed) == 1 and not closed[0].interactive
    assert apply_sessions(None, closed, account_id="a", uuid="u", now_ms=T0) is None


def test_offsets_are_remembered_per_sent_at_and_bounded() -> None:
    memory: tuple[tuple[int, int], ...] = ()
    for n in range(SENT_MEMORY + 3):
        memory = remember_offset(memory, T0 + n, 100 + n)
    assert len(memory) == SENT_MEMORY and min(s for s, _ in memory) == T0 + 3
    assert remember_offset(memory, T0 + 5, 999) == memory  # the first offset stays
    # A retry of sent_at T0+5 arriving 600 s later: moved back by the delay.
    assert recalled_shift(memory, T0 + 5, 105 + 600_000) == -600_000
    assert recalled_shift(memory, T0 + 1, 5) == 0  # forgotten: corrected as new
    assert recalled_shift(memory, None, 5) == 0
