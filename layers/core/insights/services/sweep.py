"""The sweep: find open sessions due to close through the bucketed sweep index."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from insights.config import load
from insights.services.closing import close_due
from insights.storage import store
from insights.storage.records import chunks, sweep_bucket


def sweep(now_ms: int, *, budget_ms: int = 55_000) -> dict[str, int]:
    """Close every session whose deadline is at or before now_ms, within the budget."""
    started = time.monotonic()
    shards = range(load().sweep_shards)
    until = sweep_bucket(now_ms)
    with ThreadPoolExecutor(max_workers=min(8, len(shards))) as pool:
        per_shard = pool.map(lambda shard: list(store.due_sessions(shard, until)), shards)
        candidates = [pk for found in per_shard for pk in found]
    closed = 0
    checked = 0
    for batch in chunks(candidates, 100):
        if (time.monotonic() - started) * 1000 > budget_ms:
            break  # the next run, a minute later, picks up the rest
        records = store.get_sessions(batch, consistent=True)
        checked += len(records)
        closed += close_due(records.values(), now_ms)
    return {"candidates": len(candidates), "checked": checked, "closed": closed}
