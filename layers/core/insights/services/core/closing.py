"""The one close function behind all three close paths (DESIGN invariant 4).

Lazy close (ingest), the sweeper and the TTL stream consumer all decide what
is due with `domain.sessions.settle` (the TTL consumer closes everything: the
item is gone), apply it with `close_into` and write conditionally on the
versions read, so whichever path or retry gets there first applies the runs
and the others find nothing left to do. A run that starts at or before the
profile's last_seen was already applied (apply_session): a window closed in
several steps, or twice, counts each run once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import replace

from aws_lambda_powertools import Logger, Metrics

from insights.domain.core.profile import Profile, apply_sessions, live_base, merge_custom
from insights.domain.core.sessions import Session, Stamped, remember_offset, settle
from insights.metrics import LOCK as METRICS_LOCK
from insights.metrics import count
from insights.storage.core import store
from insights.storage.core.records import SessionRecord, split_pk
from insights.storage.core.store import Conflict, DeleteSession, PutProfile, PutSession, Write

MAX_ATTEMPTS = 8
logger = Logger(child=True)
metrics = Metrics()


def backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * 2**attempt))


def close_into(
    profile: Profile | None,
    closed: list[Session],
    late_props: dict[str, Stamped],
    sent: tuple[tuple[int, int], ...],
    *,
    account_id: str,
    uuid: str,
    now_ms: int,
) -> Profile | None:
    """The profile after closed runs, late properties and the window's sent_at offsets.

    None when nothing changes: the offsets ride along only on a write that
    happens anyway (an empty window writes nothing).
    """
    updated = apply_sessions(profile, closed, account_id=account_id, uuid=uuid, now_ms=now_ms)
    if late_props:
        base = updated
        if base is None and profile is not None and profile.is_alive(now_ms):
            base = live_base(profile, account_id, uuid, now_ms)
        if base is not None:
            merged = merge_custom(base, late_props, "event")
            updated = merged if merged is not base else updated
    if updated is not None and sent:
        memory = updated.recent_sends
        for sent_at, offset in sent:
            memory = remember_offset(memory, sent_at, offset)
        updated = replace(updated, recent_sends=memory)
    return updated


def count_closed(closed: list[Session], path: str) -> None:
    interactive = sum(1 for run in closed if run.interactive)
    if interactive:
        count(metrics, "SessionsClosed", interactive)
    if len(closed) > interactive:
        count(metrics, "EmptySessionsDiscarded", len(closed) - interactive)
    with METRICS_LOCK:  # the sweeper closes from several threads (services/core/sweep.py)
        metrics.add_metadata(key="close_path", value=path)


def close_deleted(record: SessionRecord, now_ms: int, *, path: str = "ttl") -> int:
    """Stream path: the item is gone (TTL, or the sweeper's delete); apply every run
    its old image held."""
    return _close(record, now_ms, path=path, deleted=True)


def close_due(records: Iterable[SessionRecord], now_ms: int) -> int:
    """Sweeper path: close what is due in each window; returns the runs closed."""
    closed = 0
    for record in records:
        if record.deadline <= now_ms:
            closed += _close(record, now_ms, path="sweep", deleted=False)
    return closed


def _close(record: SessionRecord, now_ms: int, *, path: str, deleted: bool) -> int:
    """Apply what is due, conditionally on the versions read.

    A sweeper closing a whole window only deletes it (conditionally on the
    version it judged): the deletion reaches SessionCloseFunction on the
    stream, which applies the old image's runs as it does for TTL. One
    single-item delete instead of a transaction (profile put + delete) halves
    the write units of a close, and the stream retries until the profile
    holds the runs (then to the failure queue), so no run is lost between
    the two. A window only partly due keeps the transaction: it stays.
    """
    account_id, uuid = split_pk(record.pk)
    current: SessionRecord | None = record
    for attempt in range(MAX_ATTEMPTS):
        assert current is not None
        window = current.window
        if deleted:
            closed, remaining = list(window.runs), None
        else:
            closed, remaining = settle(window, now_ms, current.timeout_ms)
        if not closed:
            return 0
        writes: list[Write] = []
        if remaining is not None or deleted:
            found = store.get_profile(record.pk, consistent=True)
            with METRICS_LOCK:  # its merge may publish a refusal
                updated = close_into(
                    found.profile if found else None,
                    closed,
                    window.late_props if remaining is None else {},
                    window.sent if remaining is None else (),
                    account_id=account_id,
                    uuid=uuid,
                    now_ms=now_ms,
                )
            if updated is not None:
                writes.append(PutProfile(updated, found.version if found else None))
        if remaining is not None:
            writes.append(PutSession(record.pk, remaining, current.timeout_ms, current.version))
        elif not deleted:
            writes.append(DeleteSession(record.pk, current.version))
        try:
            store.commit(writes)
        except Conflict:
            count(metrics, "CloseConflicts")
            if not deleted:
                current = store.get_session(record.pk, consistent=True)
                if current is None or current.deadline > now_ms:
                    return 0  # closed by another path, or changed by a new event
            backoff(attempt)
            continue
        if deleted or remaining is not None:
            count_closed(closed, path)  # a whole window deleted is counted where it is applied
        return len(closed)
    raise RuntimeError(f"could not close session after {MAX_ATTEMPTS} attempts")
