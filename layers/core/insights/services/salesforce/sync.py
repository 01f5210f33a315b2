"""Salesforce syncs, run in checkpointed slices like file imports.

A tick (every few minutes) starts a sync for each connection that is due:
an import job (``source: salesforce``) and one SQS message for its first
slice. A slice signs in, checks the mapping against the object's describe,
and reads records in (SystemModstamp, Id) order from the job's cursor:

- incrementally with the REST query API: ``SystemModstamp > watermark`` (or
  equal with a greater Id), oldest first, ``nextRecordsUrl`` pages;
- for a first sync or a resync of an object with more than
  ``SALESFORCE_BULK_THRESHOLD`` records, with a Bulk API 2.0 query job, page
  (locator) by page; its records come unordered, so the cursor it leaves is
  the greatest (SystemModstamp, Id) it applied.

Records become rows with the file import's typing and go through
``write_attributes(account, rows, "salesforce")`` stamped with their
SystemModstamp. The checkpoint (cursor, bulk job and locator) and the job's
counters move together in one conditional update, after the rows were
written, so a slice that dies or runs out of time is run again from the last
checkpoint: rows it had written are written again, which changes nothing
(most recent wins, same time and value), and nothing is counted twice. The
connection's watermark moves to the job's cursor when the sync ends, so it
only ever passes what was applied.

API limits: the client reads ``Sforce-Limit-Info``; a slice pauses the sync
when the org has used ``SALESFORCE_MAX_API_PERCENT`` of its daily calls or
Salesforce answers ``REQUEST_LIMIT_EXCEEDED``, and the tick resumes it after
``SALESFORCE_LIMIT_BACKOFF_SECONDS``.
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights import clock
from insights.domain.core.attributes import Rejection, Row
from insights.domain.core.timefmt import MINUTE_MS, format_time
from insights.domain.imports.files import Plan, status_of
from insights.domain.salesforce.connection import Connection
from insights.domain.salesforce.records import (
    Cursor,
    bulk_query,
    check_describe,
    count_query,
    deletion_row,
    follows_deletions,
    incremental_query,
    is_deleted,
    plan_for,
    record_row,
)
from insights.services.core.attributes import NO_USER_RECORDS, write_attributes
from insights.services.imports.jobs import FINAL, Budget
from insights.services.imports.report import (
    MAX_REPORT_LINES,
    assemble_report,
    cleanup,
    report_key,
    write_part,
)
from insights.services.salesforce.client import Client, SalesforceProblem
from insights.services.salesforce.connection import (
    SOURCE,
    Refused,
    queue,
    start,
    stored_credentials,
)
from insights.storage.core.accounts import Account, get_account
from insights.storage.imports import jobs
from insights.storage.imports.jobs import Job
from insights.storage.salesforce import connections as integrations
from insights.storage.salesforce.connections import Calls, Integration

logger = Logger(child=True)
metrics = Metrics()

STALL_MS = 15 * MINUTE_MS  # a running sync with no checkpoint for this long is queued again
PAUSED = "paused"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def bulk_threshold() -> int:
    return _env_int("SALESFORCE_BULK_THRESHOLD", 10_000)


def bulk_page_records() -> int:
    return _env_int("SALESFORCE_BULK_PAGE_RECORDS", 10_000)


def bulk_poll_seconds() -> int:
    return _env_int("SALESFORCE_BULK_POLL_SECONDS", 10)


def limit_backoff_ms() -> int:
    return _env_int("SALESFORCE_LIMIT_BACKOFF_SECONDS", 3600) * 1000


def max_api_percent() -> int:
    return _env_int("SALESFORCE_MAX_API_PERCENT", 90)


class SyncFailed(Exception):
    """The sync cannot go on until someone fixes the connection."""


# --------------------------------------------------------------------- tick
def tick(now: int) -> dict[str, int]:
    """Start due syncs, resume paused or stalled ones."""
    started = resumed = released = 0
    for found in integrations.all_connected():
        if found.running is not None:
            job = jobs.get_job(found.account_id, found.running)
            if job is None or job.status in FINAL:
                # The slice that ended it died before releasing the connection.
                integrations.finish(
                    found.account_id,
                    found.running,
                    now,
                    watermark=None,
                    error=None,
                    succeeded=False,
                )
                released += 1
                continue
            last = int((job.checkpoint or {}).get("at") or job.created_at)
            if (found.resume_at is not None and found.resume_at <= now) or (
                found.resume_at is None and now - last > STALL_MS
            ):
                queue(job)
                resumed += 1
            continue
        if found.next_due_at <= now and start(found, now) is not None:
            started += 1
    return {"started": started, "resumed": resumed, "released": released}


# ------------------------------------------------------------------- slices
def run_message(message: dict[str, Any], budget: Budget) -> str:
    job = jobs.get_job(str(message["account_id"]), str(message["import_id"]))
    if job is None or job.status in FINAL or job.phase != "sync":
        return "stale"
    if job.offset != message.get("offset"):
        return "stale"  # an older message of a slice that has moved on
    return run_slice(job, budget)


@dataclass
class Tally:
    row: int
    read: int = 0
    imported: int = 0
    rejected: int = 0
    deleted: int = 0  # records deleted in Salesforce: their values withdrawn
    lines: list[Rejection] = field(default_factory=list)
    cursor: Cursor | None = None  # the last record read (REST: in order)
    top: Cursor | None = None  # the greatest record read (Bulk: unordered)


class Progress:
    """What a slice has read and written; `commit` marks what the checkpoint may count."""

    def __init__(
        self, job: Job, account: Account, plan: Plan, batch_rows: int, *, deletions: bool
    ) -> None:
        self.account = account
        self.plan = plan
        self.deletions = deletions  # read with queryAll: deleted records come too
        self.batch_rows = batch_rows
        self.checkpoint: dict[str, Any] = dict(job.checkpoint or {})
        self.staged = Tally(
            row=job.row,
            cursor=Cursor.from_list(self.checkpoint.get("cursor")),
            top=Cursor.from_list(self.checkpoint.get("top")),
        )
        self.committed = replace(self.staged, lines=[])
        self.room = max(0, MAX_REPORT_LINES - job.report_lines)
        self.rows: list[Row] = []
        self.record_ids: dict[int, str] = {}  # row number -> Id, for the pending rows
        self.deletions_pending: set[int] = set()  # counted as deleted, not imported

    def add(self, record: dict[str, Any]) -> None:
        staged = self.staged
        staged.row += 1
        staged.read += 1
        verdict: Row | Rejection | None
        if self.deletions and is_deleted(record):
            staged.deleted += 1
            verdict, cursor = deletion_row(staged.row, record, self.plan, now_ms=clock.now_ms())
            self.deletions_pending.add(staged.row)
        else:
            verdict, cursor = record_row(staged.row, record, self.plan, now_ms=clock.now_ms())
        if verdict is None:
            pass  # a deleted record that set nothing
        elif isinstance(verdict, Rejection):
            staged.rejected += 1
            if len(staged.lines) < self.room:
                staged.lines.append(verdict)
        else:
            self.rows.append(verdict)
            self.record_ids[verdict.number] = str(record.get("Id") or "")
        if cursor is not None:
            staged.cursor = cursor
            if cursor.after(staged.top):
                staged.top = cursor
        if len(self.rows) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            # Records the per-user caps refuse are rejected in the sync report, like file rows.
            refused = write_attributes(self.account, self.rows, SOURCE).refused
            staged = self.staged
            gone = {line.row for line in refused} | self.deletions_pending
            staged.imported += sum(1 for row in self.rows if row.number not in gone)
            staged.rejected += len(refused)
            for line in refused:
                if len(staged.lines) < self.room:
                    record = self.record_ids.get(line.row, "")
                    staged.lines.append(replace(line, reason=f"record {record}: {line.reason}"))
            if refused:
                staged.lines.sort(key=lambda line: line.row)
            self.rows = []
            self.record_ids = {}
            self.deletions_pending = set()

    def commit(self, **checkpoint: Any) -> None:
        self.flush()
        self.committed = replace(self.staged, lines=list(self.staged.lines))
        if self.staged.cursor is not None:
            self.checkpoint["cursor"] = self.staged.cursor.as_list()
        if self.staged.top is not None:
            self.checkpoint["top"] = self.staged.top.as_list()
        self.checkpoint.update(checkpoint)


def run_slice(job: Job, budget: Budget) -> str:
    now = clock.now_ms()
    expected = (job.phase, job.offset)
    found = integrations.get(job.account_id)
    changes: dict[str, Any] = {"invocations": 1}
    if job.status == "pending":
        changes.update(status="running", started_at=now)
    progress: Progress | None = None
    client: Client | None = None
    outcome, error, delay = "more", None, 0
    try:
        if found is None or found.running != job.import_id:
            raise SyncFailed("the Salesforce connection was removed or replaced during the sync")
        account = get_account(job.account_id)
        if account is None or not account.settings.unique_user_ids:
            raise SyncFailed(NO_USER_RECORDS)
        connection = Connection.from_dict(job.mapping)
        try:
            credentials = stored_credentials(found)
        except Refused as exc:
            raise SyncFailed(exc.message) from None
        client = Client(connection.login_host, credentials)
        describe = client.describe(connection.object)
        problems = check_describe(connection, describe)
        if problems:
            raise SyncFailed("; ".join(p.message for p in problems))
        progress = Progress(
            job,
            account,
            plan_for(connection, describe),
            budget.batch_rows,
            deletions=follows_deletions(describe),
        )
        full = bool(job.mapping.get("full")) or not found.watermark
        outcome = _run(found, full, connection, client, progress, budget)
        if outcome == "wait":
            outcome, delay = "more", bulk_poll_seconds()
    except SalesforceProblem as exc:
        if exc.code == "unavailable":
            raise  # SQS delivers the slice again; nothing was checkpointed
        if exc.code == "limit_exceeded":
            outcome, error = PAUSED, exc.message
        else:
            outcome, error = "failed", exc.message
    except SyncFailed as exc:
        outcome, error = "failed", str(exc)
    tally = progress.committed if progress is not None else Tally(row=job.row)
    checkpoint = dict(progress.checkpoint if progress is not None else job.checkpoint or {})
    if client is not None and client.usage and outcome == "more":
        used, limit = client.usage
        if limit and used * 100 >= limit * max_api_percent():
            outcome = PAUSED
            error = f"the org has used {used} of its {limit} daily API calls"
    checkpoint["at"] = now
    changes.update(
        offset=job.offset + 1,
        row=tally.row,
        rows_read=tally.read,
        rows_total=tally.read,
        rows_imported=tally.imported,
        rows_rejected=tally.rejected,
        rows_deleted=tally.deleted,
        report_lines=len(tally.lines),
        checkpoint=checkpoint,
        last_from=f"sync:{job.offset}",
    )
    if tally.row > job.row:
        write_part(job, job.row, tally.row, tally.lines)
    resume_at = None
    calls = None
    if client is not None:
        calls = Calls(client.calls, client.usage, now if client.signed_in else None)
    if outcome == PAUSED:
        resume_at = now + limit_backoff_ms()
        changes["error"] = f"paused until {format_time(resume_at)}: {error}"
    elif outcome in ("done", "failed"):
        # A deletion applied counts as applied: a sync that only withdrew values succeeded.
        applied = job.rows_imported + tally.imported + (job.rows_deleted or 0) + tally.deleted
        rejected = job.rows_rejected + tally.rejected
        status = "failed" if outcome == "failed" else status_of(applied, rejected)
        if rejected:
            assemble_report(job, job.data_row, tally.row, rejected)
            changes["report_key"] = report_key(job)
        if status == "failed" and error is None:
            error = "every record was rejected: see the error report"
        # When the job really ended, not when its slice began (a one-slice
        # sync of 167 s showed a duration of 0).
        finished = clock.now_ms()
        changes.update(status=status, phase="done", finished_at=finished, error=error)
        if not _finish(job, expected, changes, found, checkpoint, finished, calls):
            return "lost"  # another runner of this slice checkpointed first
        return str(status)
    if not jobs.advance(job, expected, changes):
        return "lost"  # another runner of this slice checkpointed first
    if calls is not None:
        integrations.record_progress(
            job.account_id,
            job.import_id,
            api_calls=calls.api_calls,
            usage=calls.usage,
            resume_at=resume_at,
            credentials_worked_at=calls.credentials_worked_at,
        )
    if outcome == PAUSED:
        logger.warning("salesforce sync paused", extra={"import_id": job.import_id})
        if found is not None:
            integrations.record_error(job.account_id, str(changes["error"]), now)
        return PAUSED
    job.offset += 1
    queue(job, delay_seconds=delay)
    return "continued"


def _finish(
    job: Job,
    expected: tuple[str | None, int],
    changes: dict[str, Any],
    found: Integration | None,
    checkpoint: dict[str, Any],
    now: int,
    calls: Calls | None,
) -> bool:
    """Write the job's final record and release the connection, together; False if lost."""
    status = str(changes["status"])
    watermark: list[Any] | None = None
    if checkpoint.get("mode") == "bulk":
        # Unordered: only a finished job says nothing older is still to come.
        watermark = checkpoint.get("top") if status != "failed" else None
    else:
        watermark = checkpoint.get("cursor")
    if watermark is None and found is not None and status != "failed":
        watermark = found.watermark
    if found is not None and found.full_sync and found.updated_at > job.created_at:
        watermark = None  # the mapping changed during the sync: the next one reads all again
    written = integrations.finish_with_job(
        jobs.advance_update(job, expected, changes),
        job.account_id,
        job.import_id,
        now,
        watermark=watermark,
        error=changes.get("error"),
        succeeded=status != "failed",
        calls=calls,
    )
    if not written:
        return False
    cleanup(job)
    metrics.add_metric(name="SalesforceSyncsFinished", unit=MetricUnit.Count, value=1)
    logger.info("salesforce sync finished", extra={"import_id": job.import_id, "status": status})
    return True


def _run(
    found: Integration,
    full: bool,
    connection: Connection,
    client: Client,
    progress: Progress,
    budget: Budget,
) -> str:
    mode = progress.checkpoint.get("mode")
    if mode is None:
        mode = "rest"
        if full and client.count(count_query(connection, None)) > bulk_threshold():
            mode = "bulk"
        cursor = None if full else Cursor.from_list(found.watermark)
        progress.checkpoint["mode"] = mode
        progress.staged.cursor = cursor
        progress.commit()
    if mode == "bulk":
        return _run_bulk(connection, client, progress, budget)
    return _run_rest(connection, client, progress, budget)


def _near_limit(client: Client) -> bool:
    if not client.usage:
        return False
    used, limit = client.usage
    return bool(limit) and used * 100 >= limit * max_api_percent()


def _run_rest(connection: Connection, client: Client, progress: Progress, budget: Budget) -> str:
    deleted = progress.deletions
    soql = incremental_query(connection, progress.staged.cursor, deleted=deleted)
    page = client.query(soql, deleted=deleted)
    while True:
        for record in page.get("records") or []:
            progress.add(record)
            if not progress.rows and budget.low():  # a batch was just written
                progress.commit()
                return "more"
        progress.commit()
        if page.get("done", True) or not page.get("nextRecordsUrl"):
            return "done"
        if budget.low() or _near_limit(client):
            return "more"
        page = client.query_more(page["nextRecordsUrl"])


def _run_bulk(connection: Connection, client: Client, progress: Progress, budget: Budget) -> str:
    sobject = connection.object
    job_id = progress.checkpoint.get("bulk_job")
    if not job_id:
        deleted = progress.deletions
        job_id = client.bulk_create(
            sobject, bulk_query(connection, deleted=deleted), deleted=deleted
        )
        progress.commit(bulk_job=job_id, locator="")
    state, message = client.bulk_state(sobject, job_id)
    while state != "JobComplete":
        if state in ("Failed", "Aborted"):
            raise SyncFailed(f"the Bulk API query job {job_id} {state.lower()}: {message}")
        if budget.low() or bulk_poll_seconds() == 0:
            return "wait"
        time.sleep(bulk_poll_seconds())
        state, message = client.bulk_state(sobject, job_id)
    locator = str(progress.checkpoint.get("locator") or "")
    while True:
        text, next_locator = client.bulk_page(sobject, job_id, locator, bulk_page_records())
        for record in csv.DictReader(io.StringIO(text)):
            progress.add(record)
        # A page counts only once it is all written: the checkpoint is its locator.
        progress.commit(locator=next_locator)
        if not next_locator:
            return "done"
        locator = next_locator
        if budget.low() or _near_limit(client):
            return "more"


def give_up(message: dict[str, Any], attempts: int) -> bool:
    """A slice failed on its last delivery: fail the sync rather than leave it running."""
    job = jobs.get_job(str(message["account_id"]), str(message["import_id"]))
    if job is None or job.status in FINAL or job.offset != message.get("offset"):
        return False
    now = clock.now_ms()
    reason = f"the sync stopped after {attempts} failed attempts (Salesforce unreachable?)"
    changes = {
        "status": "failed",
        "error": reason,
        "phase": "done",
        "finished_at": now,
        "offset": job.offset + 1,
        "invocations": 1,
    }
    found = integrations.get(job.account_id)
    expected = (job.phase, job.offset)
    return _finish(job, expected, changes, found, dict(job.checkpoint or {}), now, None)
