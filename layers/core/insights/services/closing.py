"""The one close function behind all three close paths (DESIGN invariant 4).

Lazy close (ingest), the sweeper and the TTL stream consumer all end in
apply_session plus a write conditional on the versions read, so whichever
path or retry gets there first applies the session and the others find
nothing left to do.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights.domain.profile import apply_session
from insights.storage import store
from insights.storage.records import SessionRecord, split_pk
from insights.storage.store import Conflict, DeleteSession, PutProfile, Write

MAX_ATTEMPTS = 8
logger = Logger(child=True)
metrics = Metrics()


def backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * 2**attempt))


def close_deleted(record: SessionRecord, now_ms: int) -> bool:
    """TTL path: the session item is already gone; apply what its old image held."""
    return _close(record, now_ms, delete_session=False, path="ttl")


def close_due(records: Iterable[SessionRecord], now_ms: int) -> int:
    """Sweeper path: close each session whose deadline has passed."""
    closed = 0
    for record in records:
        if record.deadline <= now_ms and _close(record, now_ms, delete_session=True, path="sweep"):
            closed += 1
    return closed


def _close(record: SessionRecord, now_ms: int, *, delete_session: bool, path: str) -> bool:
    account_id, uuid = split_pk(record.pk)
    current: SessionRecord | None = record
    for attempt in range(MAX_ATTEMPTS):
        assert current is not None
        found = store.get_profile(record.pk, consistent=True)
        updated = apply_session(
            found.profile if found else None,
            current.session,
            account_id=account_id,
            uuid=uuid,
            now_ms=now_ms,
        )
        writes: list[Write] = []
        if updated is not None:
            writes.append(PutProfile(updated, found.version if found else None))
        if delete_session:
            writes.append(DeleteSession(record.pk, current.version))
        try:
            store.commit(writes)
        except Conflict:
            metrics.add_metric(name="CloseConflicts", unit=MetricUnit.Count, value=1)
            if delete_session:
                current = store.get_session(record.pk, consistent=True)
                if current is None or current.deadline > now_ms:
                    return False  # closed by another path, or extended by a new event
            backoff(attempt)
            continue
        name = "SessionsClosed" if current.session.interactive else "EmptySessionsDiscarded"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        metrics.add_metadata(key="close_path", value=path)
        return True
    raise RuntimeError(f"could not close session after {MAX_ATTEMPTS} attempts")
