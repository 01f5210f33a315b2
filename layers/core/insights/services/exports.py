"""Exports: every account's visible users to the exports bucket, for SQL (docs/sql.md).

A job reads UsersTable with a parallel scan (SEGMENTS threads), writes one
gzipped JSON Lines file per account and scan segment into the partition
`users/account=<id>/dt=<day>/`, and when it is done removes the files earlier
jobs left in the partitions it replaced: a partition holds one export. A job
that runs out of time hands its next slice, with the scan's positions, to a
new invocation of the function (storage/exports.send_slice).

The daily job (schedule) exports every account; an on-demand job
(`POST /v1/exports`) one account, with its status kept for `GET /v1/exports/{id}`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from insights import clock
from insights.domain.exports import (
    Job,
    day_of,
    export_of_key,
    line,
    new_job_id,
    part_key,
    row,
)
from insights.storage import exports as export_store

SEGMENTS = 4
CHECK_EVERY = 500  # profiles between two looks at the time left
# How long an account's on-demand export holds it without a slice starting:
# two 15-minute slices, so a slice Lambda retries after a failure still holds it.
LEASE_MS = 30 * 60_000


@dataclass(slots=True)
class _Buffer:
    """One account's rows of one scan segment, compressed as they come (a gzip member)."""

    users: int = 0
    chunks: list[bytes] = field(default_factory=list)
    packer: Any = field(default_factory=lambda: zlib.compressobj(6, zlib.DEFLATED, 31))

    def add(self, data: bytes) -> None:
        self.users += 1
        self.chunks.append(self.packer.compress(data))

    def finish(self) -> bytes:
        return b"".join([*self.chunks, self.packer.flush()])


class ExportRunning(Exception):
    """The account's last on-demand export has not finished: `job_id` is it."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


def start(account_id: str, now_ms: int) -> Job:
    """An on-demand export of one account, queued; its status is the job's.

    One at a time per account (ExportRunning otherwise): each scans the whole
    users table, so a client that POSTs in a loop would multiply the bill.
    """
    job = Job(new_job_id(), account_id, "queued", now_ms, day_of(now_ms), now_ms)
    holder = export_store.take_lease(account_id, job.id, now_ms, now_ms + LEASE_MS)
    if holder is not None:
        raise ExportRunning(holder)
    try:
        export_store.save_job(job)
        export_store.send_slice(
            {"job": job.id, "account": account_id, "dt": job.dt, "exported_at": now_ms}
        )
    except Exception as exc:
        # Never invoked, the job would sit queued and hold the account for a
        # whole lease: it failed, and the account is free for the next POST.
        export_store.release_lease(account_id, job.id)
        failed = replace(job, status="failed", finished_at=clock.now_ms(), error=str(exc)[:500])
        export_store.save_job(failed)
        raise
    return job


def get(account_id: str, job_id: str) -> Job | None:
    return export_store.load_job(account_id, job_id)


def daily(now_ms: int, time_left: Callable[[], bool]) -> dict[str, Any] | None:
    """The scheduled export of every account; the next slice's message if unfinished."""
    message = {"job": new_job_id(), "account": None, "dt": day_of(now_ms), "exported_at": now_ms}
    return run(message, time_left)


def run(message: dict[str, Any], time_left: Callable[[], bool]) -> dict[str, Any] | None:
    """One slice of a job; the message for the next slice, or None when the job is done."""
    job_id, account = str(message["job"]), message.get("account")
    dt, exported_at = str(message["dt"]), int(message["exported_at"])
    positions: list[Any] = message.get("positions") or [None] * SEGMENTS
    slice_number = int(message.get("slice", 0))
    job = export_store.load_job(account, job_id) if account else None
    if job is not None and job.status in ("failed", "succeeded"):
        # Lambda's retry (or a second delivery) of a finished job's slice: the
        # job said so and let the account go, perhaps to a newer export; running
        # again would scan beside it and rewrite the verdict the client read.
        return None
    if job is not None and job.status == "queued":
        job = replace(job, status="running")
        export_store.save_job(job)
    if account:  # each slice renews the account's lease; a dead job's runs out
        now = clock.now_ms()
        export_store.take_lease(account, job_id, now, now + LEASE_MS)
    try:
        with ThreadPoolExecutor(max_workers=SEGMENTS) as pool:
            results = list(
                pool.map(
                    lambda s: _scan(s, positions[s], account, exported_at, time_left),
                    range(SEGMENTS),
                )
            )
        users, files, accounts = (
            int(message.get("users", 0)),
            int(message.get("files", 0)),
            set(message.get("accounts") or []),
        )
        for segment, (_, buffers) in enumerate(results):
            for account_id, buffer in buffers.items():
                key = part_key(account_id, dt, job_id, f"{slice_number}-{segment}", exported_at)
                export_store.put_file(key, buffer.finish())
                users, files = users + buffer.users, files + 1
                accounts.add(account_id)
        positions = [position for position, _ in results]
        if any(p != "done" for p in positions):
            return {
                **message,
                "positions": positions,
                "slice": slice_number + 1,
                "users": users,
                "files": files,
                "accounts": sorted(accounts),
            }
        _replace_partitions(job_id, exported_at, dt, [account] if account else None)
    except Exception as exc:
        if job is not None:
            failed = replace(job, status="failed", finished_at=clock.now_ms(), error=str(exc)[:500])
            export_store.save_job(failed)
        if account:
            export_store.release_lease(account, job_id)
        raise
    if job is not None:
        done = replace(
            job, status="succeeded", finished_at=clock.now_ms(), users=users, files=files
        )
        export_store.save_job(done)
    if account:
        export_store.release_lease(account, job_id)
    return None


def _scan(
    segment: int,
    after: Any,
    account: str | None,
    exported_at: int,
    time_left: Callable[[], bool],
) -> tuple[Any, dict[str, _Buffer]]:
    """Rows from one scan segment until it ends ("done") or time runs short (its position)."""
    buffers: dict[str, _Buffer] = {}
    if after == "done":
        return "done", buffers
    scan = export_store.scan_profiles(segment, SEGMENTS, after, account)
    for seen, (profile, position) in enumerate(scan, start=1):
        values = row(profile, exported_at)
        if values is not None:
            buffers.setdefault(profile.account_id, _Buffer()).add(line(values))
        if seen % CHECK_EVERY == 0 and not time_left() and position is not None:
            return position, buffers
    return "done", buffers


def _replace_partitions(job_id: str, exported_at: int, dt: str, accounts: list[str] | None) -> None:
    """Make each partition this job wrote (all accounts' of the day for the daily job)
    hold one export: the latest by its moment.

    Exports of a partition may run at once (two POSTs, the daily job and a POST).
    Removing every file but its own, each removed the other's: both said
    succeeded over an empty partition. So a job removes only earlier exports'
    files; when a later export has written files here, this one is replaced:
    it removes its own (the later one removes any it writes after this).
    """
    this = (exported_at, job_id)
    for account_id in accounts if accounts is not None else export_store.accounts_exported():
        keys = export_store.partition_keys(account_id, dt)
        if any(export_of_key(k) > this for k in keys):
            stale = [k for k in keys if export_of_key(k) == this]
        else:
            stale = [k for k in keys if export_of_key(k) < this]
        if stale:
            export_store.delete_files(stale)
