"""The sweep: find open sessions due to close by scanning the sessions table.

SessionsTable holds one item per open session and nothing else (a session is
deleted when it closes), so a scan reads exactly the population the sweeper
must judge. Scanning costs read units for the bytes of the open sessions each
minute; an index on the deadline would cost a write on nearly every tracking
request instead, which is several times more (docs/ARCHITECTURE.md).

Two sweeps may overlap (the scheduler delivers at least once, and there is no
reserved concurrency to serialise them): each close is conditional on the
version it read, so an overlap costs a second scan, never a second close.
The same holds inside a run, whose closes run CLOSE_CONCURRENCY at a time:
each due key is closed by one thread, and any other writer (another sweep,
TTL, the next request) fails that condition or finds the window gone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights.services.core.closing import close_due
from insights.storage.core import store

# A segment of ~20k open sessions (~8 MB, 8 pages) scans in a second or two;
# more open sessions than that are split into parallel segments.
ITEMS_PER_SEGMENT = 20_000
MAX_SEGMENTS = 16

# Closes in flight at once in a run. A close is round trips (its conditional
# DeleteItem, ~5 ms, and a share of the consistent re-read) around ~0.55 ms
# of the handler's own CPU at the sweeper's 128 MB (benchmarks part 9), and
# the CPU runs one thread at a time: about 11 in flight keep it busy, which
# is the most one invocation can close (~1,800 a second, ~98,000 in a run:
# 11M sessions a day, benchmarks/scale_model.in_flight). 16 keep it busy
# while round trips take up to 8 ms; more would add threads, not closes.
# storage/aws.py's connection pool holds this many.
CLOSE_CONCURRENCY = 16
RE_READ_BATCH = 100  # keys per consistent BatchGetItem (its limit)

# Sized from the previous run of this container: a cold one starts with one
# segment, which is right for all but the largest deployments.
_last_scanned = 0

metrics = Metrics()

# The one custom metric the sweeper publishes (the SweeperBehindAlarm in
# template.yaml watches it): how long the oldest due session the scan found
# had been due. About a minute while the sweeper keeps up; it grows when
# runs fall behind or a session cannot be closed.
OLDEST_DUE_METRIC = "OldestDueSessionAge"


def segments_for(scanned: int) -> int:
    return max(1, min(MAX_SEGMENTS, -(-scanned // ITEMS_PER_SEGMENT)))


def sweep(now_ms: int, *, budget_ms: int = 55_000) -> dict[str, int]:
    """Close every session whose deadline is at or before now_ms, within the budget."""
    global _last_scanned
    started = time.monotonic()
    total = segments_for(_last_scanned)
    with ThreadPoolExecutor(max_workers=total) as pool:
        found = list(
            pool.map(
                lambda segment: store.due_sessions(now_ms, segment=segment, total_segments=total),
                range(total),
            )
        )
    due = [pk for keys, _, _ in found for pk in keys]
    _last_scanned = sum(scanned for _, scanned, _ in found)
    deadlines = [oldest for _, _, oldest in found if oldest is not None]
    oldest_due_s = int(max(0, now_ms - min(deadlines)) // 1000) if deadlines else 0
    if os.environ.get("BACKLOG_METRIC", "on") == "on":  # $0.30 a month: only when watched
        metrics.add_metric(name=OLDEST_DUE_METRIC, unit=MetricUnit.Seconds, value=oldest_due_s)
    deadline = started + budget_ms / 1000
    checked, closed = close_all(due, now_ms, spent=lambda: time.monotonic() > deadline)
    return {
        "segments": total,
        "scanned": _last_scanned,
        "due": len(due),
        "checked": checked,
        "closed": closed,
        "oldest_due_seconds": oldest_due_s,
    }


def close_all(due: list[str], now_ms: int, *, spent: Callable[[], bool]) -> tuple[int, int]:
    """Re-read and close the due keys CLOSE_CONCURRENCY at a time, starting no re-read
    or close once `spent()` (the budget); returns (sessions re-read, runs closed).

    The keys are dealt into at least CLOSE_CONCURRENCY parts (a part is one
    re-read, so at most RE_READ_BATCH keys), and each thread closes its
    part's windows one after another: a key is closed by one thread only, and
    the re-reads overlap the closes of other parts.
    """
    if not due:
        return 0, 0
    parts = max(-(-len(due) // RE_READ_BATCH), min(len(due), CLOSE_CONCURRENCY))
    failed = threading.Event()  # one close gave up: start no more, fail the run

    def stop() -> bool:
        return failed.is_set() or spent()

    def close_part(part: int) -> tuple[int, int]:
        if stop():
            return 0, 0  # the next run, a few minutes later, picks up the rest
        # A consistent re-read: the scan's copy may predate a new event, or even
        # a delete and a new session that reuses the version number.
        records = store.get_sessions(due[part::parts], consistent=True)
        closed = 0
        try:
            for record in records.values():
                if stop():
                    break
                closed += close_due([record], now_ms)
        except Exception:
            failed.set()
            raise
        return len(records), closed

    with ThreadPoolExecutor(max_workers=CLOSE_CONCURRENCY) as pool:
        done = list(pool.map(close_part, range(parts)))
    return sum(read for read, _ in done), sum(closed for _, closed in done)
