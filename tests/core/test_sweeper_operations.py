"""What an operator relies on from the sweeper: its backlog metric, and that two
sweeps overlapping (no reserved concurrency serialises them) close once."""

from __future__ import annotations

from typing import Any

import pytest

from insights import clock
from insights.services.core import sweep
from tests.conftest import MINUTE, Stack


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


def test_overlapping_sweeps_close_each_session_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = stack.account()
    open_sessions(stack, acme, ["u1", "u2"])
    stack.advance(31 * MINUTE)
    real_close_due = sweep.close_due
    overlapped: list[dict[str, Any]] = []

    def close_after_another_sweep(records: Any, now_ms: int) -> int:
        # The first sweep has re-read its due sessions; a second sweep runs
        # from start to end before the first one writes.
        if not overlapped:
            monkeypatch.setattr(sweep, "close_due", real_close_due)
            overlapped.append(stack.sweep())
        return real_close_due(records, now_ms)

    monkeypatch.setattr(sweep, "close_due", close_after_another_sweep)
    first = stack.sweep()
    assert overlapped[0]["closed"] == 2
    assert (first["checked"], first["closed"]) == (2, 0)
    for uuid in ("u1", "u2"):
        assert stack.standard(acme, uuid)["total_sessions"] == 1
    assert stack.cloud.items("SessionsTable") == []
