"""The sweep: find open sessions due to close by scanning the sessions table.

SessionsTable holds one item per open session and nothing else (a session is
deleted when it closes), so a scan reads exactly the population the sweeper
must judge. Scanning costs read units for the bytes of the open sessions each
minute; an index on the deadline would cost a write on nearly every tracking
request instead, which is several times more (docs/ARCHITECTURE.md).

Two sweeps may overlap (the scheduler delivers at least once, and there is no
reserved concurrency to serialise them): each close is conditional on the
version it read, so an overlap costs a second scan, never a second close.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights.services.core.closing import close_due
from insights.storage.core import store
from insights.storage.core.records import chunks

# A segment of ~20k open sessions (~8 MB, 8 pages) scans in a second or two;
# more open sessions than that are split into parallel segments.
ITEMS_PER_SEGMENT = 20_000
MAX_SEGMENTS = 16

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
    closed = checked = 0
    for batch in chunks(due, 100):
        if (time.monotonic() - started) * 1000 > budget_ms:
            break  # the next run, a minute later, picks up the rest
        # A consistent re-read: the scan's copy may predate a new event, or even
        # a delete and a new session that reuses the version number.
        records = store.get_sessions(batch, consistent=True)
        checked += len(records)
        closed += close_due(records.values(), now_ms)
    return {
        "segments": total,
        "scanned": _last_scanned,
        "due": len(due),
        "checked": checked,
        "closed": closed,
        "oldest_due_seconds": oldest_due_s,
    }
