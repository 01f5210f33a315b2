"""What an operator relies on from the sweeper: its backlog metric, that a run
closes its due sessions many at a time, and that two sweeps overlapping (no
reserved concurrency serialises them), or TTL racing one, close once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from insights import clock
from insights.services.core import sweep
from insights.storage.core import store
from tests.conftest import MINUTE, Stack

WAIT = 120  # seconds a barrier waits for threads that should all be there at once


def open_sessions(stack: Stack, account: Any, uuids: list[str]) -> None:
    for uuid in uuids:
        assert stack.send(account, [{"uuid": uuid}]).status == 200


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = []
    monkeypatch.setattr(sweep.metrics, "add_metric", lambda **kwargs: recorded.append(kwargs))
    monkeypatch.setenv("BACKLOG_METRIC", "on")  # as the template sets it with alarms or a dashboard
    return recorded


def backlog(published: list[dict[str, Any]]) -> list[float]:
    return [m["value"] for m in published if m["name"] == sweep.OLDEST_DUE_METRIC]


def test_an_idle_sweep_reports_no_backlog(stack: Stack, published: list[dict[str, Any]]) -> None:
    assert stack.sweep()["oldest_due_seconds"] == 0
    assert backlog(published) == [0]


def test_nobody_watching_means_no_backlog_metric(
    stack: Stack, published: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default parameters (no alarm topic, no dashboard): $0.30 a month not spent."""
    monkeypatch.setenv("BACKLOG_METRIC", "off")
    assert stack.sweep()["oldest_due_seconds"] == 0
    assert backlog(published) == []


def test_the_backlog_metric_is_how_long_the_oldest_due_session_has_waited(
    stack: Stack, published: list[dict[str, Any]]
) -> None:
    acme = stack.account()
    open_sessions(stack, acme, ["early"])
    stack.advance(3 * MINUTE)
    open_sessions(stack, acme, ["late"])
    stack.advance(30 * MINUTE + 7 * MINUTE)  # "early" due 10 min ago, "late" 7 min ago
    # A sweep that cannot close anything (its budget already spent) leaves both open.
    summary = sweep.sweep(clock.now_ms(), budget_ms=-1)
    assert (summary["due"], summary["closed"], summary["oldest_due_seconds"]) == (2, 0, 600)
    stack.advance(1 * MINUTE)
    assert stack.sweep()["closed"] == 2
    assert stack.sweep()["oldest_due_seconds"] == 0
    assert backlog(published) == [600, 660, 0]


def due_sessions(stack: Stack, count: int) -> tuple[Any, list[str]]:
    acme = stack.account()
    uuids = [f"u{n}" for n in range(count)]
    open_sessions(stack, acme, uuids)
    stack.advance(31 * MINUTE)
    return acme, uuids


def closed_once(stack: Stack, account: Any, uuids: list[str]) -> None:
    """Every window is gone and applied to its profile once."""
    assert stack.cloud.items("SessionsTable") == []
    for uuid in uuids:
        assert stack.standard(account, uuid)["total_sessions"] == 1, uuid


def after_re_reads(
    monkeypatch: pytest.MonkeyPatch, parties: int, action: Callable[[], Any]
) -> None:
    """Hold the first `parties` re-reads until all are made, run `action` once, then let
    them close: their closes start from versions read before it. Later re-reads
    (a sweep `action` runs) pass."""
    barrier = threading.Barrier(parties, action=action, timeout=WAIT)
    calls = [0]
    lock = threading.Lock()
    real = store.get_sessions

    def get_sessions(pks: Any, *, consistent: bool = False) -> Any:
        found = real(pks, consistent=consistent)
        with lock:
            calls[0] += 1
            held = calls[0] <= parties
        if held:
            barrier.wait()
        return found

    monkeypatch.setattr(store, "get_sessions", get_sessions)


def test_a_sweep_running_between_another_s_re_read_and_its_closes_closes_them_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, uuids = due_sessions(stack, 2)
    overlapped: list[dict[str, Any]] = []
    # Both re-reads of the first sweep (one thread each) are made, then a
    # second sweep runs from start to end before the first one writes.
    after_re_reads(monkeypatch, 2, lambda: overlapped.append(stack.sweep()))
    first = stack.sweep()
    assert overlapped[0]["closed"] == 2
    assert (first["checked"], first["closed"]) == (2, 0)
    closed_once(stack, acme, uuids)


def before_each_close(monkeypatch: pytest.MonkeyPatch, hook: Callable[[int], None]) -> list[int]:
    """Run `hook(n)` before the sweep's n-th close (1, 2, ... across its threads);
    the returned list holds the number of closes started."""
    calls = [0]
    lock = threading.Lock()
    real_close_due = sweep.close_due

    def close_due(records: Any, now_ms: int) -> int:
        with lock:
            calls[0] += 1
            n = calls[0]
        hook(n)
        return real_close_due(records, now_ms)

    monkeypatch.setattr(sweep, "close_due", close_due)
    return calls


def test_a_run_closes_its_due_sessions_many_at_a_time_each_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, uuids = due_sessions(stack, sweep.CLOSE_CONCURRENCY + 4)
    # The first CLOSE_CONCURRENCY closes wait for each other: one after
    # another, the first would wait alone until the barrier breaks.
    barrier = threading.Barrier(sweep.CLOSE_CONCURRENCY, timeout=WAIT)

    def first_wait_together(n: int) -> None:
        if n <= sweep.CLOSE_CONCURRENCY:
            barrier.wait()

    calls = before_each_close(monkeypatch, first_wait_together)
    summary = stack.sweep()
    assert (summary["due"], summary["checked"], summary["closed"]) == (len(uuids),) * 3
    assert calls[0] == len(uuids)
    closed_once(stack, acme, uuids)


def test_two_sweeps_side_by_side_close_each_window_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, uuids = due_sessions(stack, sweep.CLOSE_CONCURRENCY + 4)
    # Both sweeps have re-read every due window before either closes one, so
    # each window is judged due twice, from the same version.
    after_re_reads(monkeypatch, 2 * sweep.CLOSE_CONCURRENCY, lambda: None)
    now_ms = clock.now_ms()
    summaries: list[dict[str, int]] = []
    runs = [
        threading.Thread(target=lambda: summaries.append(sweep.sweep(now_ms))) for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(WAIT)
    assert [s["checked"] for s in summaries] == [len(uuids)] * 2
    # One conditional delete per window succeeded; the other found a new version or nothing.
    assert sum(s["closed"] for s in summaries) == len(uuids)
    stack.cloud.settle()
    closed_once(stack, acme, uuids)


def test_ttl_deleting_windows_a_sweep_has_read_leaves_the_sweep_nothing_to_close(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, uuids = due_sessions(stack, sweep.CLOSE_CONCURRENCY + 4)
    expired: list[int] = []
    after_re_reads(
        monkeypatch, sweep.CLOSE_CONCURRENCY, lambda: expired.append(stack.cloud.expire_ttl())
    )
    summary = stack.sweep()
    assert expired == [len(uuids)]
    assert (summary["checked"], summary["closed"]) == (len(uuids), 0)
    closed_once(stack, acme, uuids)


def due_keys(now_ms: int) -> list[str]:
    keys, _, _ = store.due_sessions(now_ms, segment=0, total_segments=1)
    return keys


def test_a_run_starts_no_close_once_its_budget_is_spent(stack: Stack) -> None:
    acme, uuids = due_sessions(stack, 40)
    now_ms = clock.now_ms()
    asked = [0]
    lock = threading.Lock()

    def spent() -> bool:  # the budget lasts for 10 questions; each re-read and close asks first
        with lock:
            asked[0] += 1
            return asked[0] > 10

    checked, closed = sweep.close_all(due_keys(now_ms), now_ms, spent=spent)
    assert checked > 0 and 0 < closed <= 9  # at least one of the 10 was a re-read
    stack.cloud.settle()
    assert len(stack.cloud.items("SessionsTable")) == len(uuids) - closed
    assert stack.sweep()["closed"] == len(uuids) - closed  # the next run closes the rest
    closed_once(stack, acme, uuids)


def test_a_close_that_gives_up_fails_the_run_and_no_more_closes_start(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, uuids = due_sessions(stack, 4 * sweep.CLOSE_CONCURRENCY)
    real_close_due = sweep.close_due

    def first_gives_up(n: int) -> None:
        if n == 1:
            raise RuntimeError("could not close session after 8 attempts")

    calls = before_each_close(monkeypatch, first_gives_up)
    now_ms = clock.now_ms()
    with pytest.raises(RuntimeError, match="could not close"):
        sweep.close_all(due_keys(now_ms), now_ms, spent=lambda: False)
    # Each other thread finishes the close it had started, and at most one it
    # was starting: the run goes to SweeperFailureQueue, the next one closes the rest.
    assert calls[0] <= 2 * sweep.CLOSE_CONCURRENCY < len(uuids)
    monkeypatch.setattr(sweep, "close_due", real_close_due)
    stack.sweep()
    closed_once(stack, acme, uuids)


def test_the_client_keeps_a_connection_for_every_request_a_sweep_has_in_flight(
    stack: Stack,
) -> None:
    from insights.storage import aws

    pool = aws.dynamodb().meta.config.max_pool_connections
    assert pool >= max(sweep.CLOSE_CONCURRENCY, sweep.MAX_SEGMENTS)
