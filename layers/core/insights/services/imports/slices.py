"""Running an import: each SQS message is one slice, from the job's checkpoint.

A slice reads the file from the checkpoint, stops when the invocation's time
runs low, and moves the checkpoint with a conditional update that also adds
the slice's counters, then queues the next slice. A slice that crashes or
loses the race is simply run again from the same checkpoint: rows are
applied by most-recent-wins, so applying one again changes nothing and
writes nothing. `validate` reads the whole file once first, so a file that
is unusable (header, encoding, CSV/JSON syntax) changes nothing; `apply`
reads it again and writes the rows.
"""

from __future__ import annotations

import io
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights import clock
from insights.domain.core.attributes import Rejection, Row
from insights.domain.imports import pace
from insights.domain.imports.filerows import (
    Readable,
    Record,
    decompressed,
    is_blank,
    open_stream,
    records,
)
from insights.domain.imports.files import (
    FileError,
    Plan,
    check_csv_row,
    check_row,
    parse_mapping,
    plan_csv,
    plan_jsonl,
    status_of,
)
from insights.services.core.attributes import Throttled, apply_rows
from insights.services.imports.jobs import (
    FINAL,
    Budget,
    queue,
)
from insights.services.imports.report import (
    MAX_REPORT_LINES,
    assemble_report,
    cleanup,
    report_key,
    write_part,
)
from insights.storage.imports import jobs, objects
from insights.storage.imports.jobs import Job

logger = Logger(child=True)
metrics = Metrics()

# A file may not hold more than this, decompressed, nor more rows (blank
# lines included): a small gzip of newlines would otherwise keep slices busy
# for hours. Each gzip slice decompresses again up to its checkpoint (a
# deflate stream cannot be entered in the middle), so the size cap also
# bounds that cost to a few seconds per slice.
MAX_FILE_BYTES = 2 * 1024**3
MAX_FILE_ROWS = 10_000_000
# A running slice looks for a cancellation this often (one read each time).
CANCEL_CHECK_SECONDS = 5.0
# Profile writes in flight within a slice. One at a time, a slice spent 5 of
# every 6.5 ms per row waiting on DynamoDB (~154 rows/s, benchmarks part 9);
# with 8 side by side the handler's own CPU (~1.4 ms a row) binds instead, at
# ~700 rows/s. More would only queue behind the CPU.
IMPORT_WRITE_CONCURRENCY = 8
# Profile writes a second one import may make, so that the GSI keys its rows
# feed stay under their share of a partition (domain/imports/pace.py).
IMPORT_ROWS_PER_SECOND = pace.rows_per_second_cap()
# A slice whose writes DynamoDB keeps throttling past the retries stops at its
# last whole batch and queues the rest this much later, instead of failing
# (which would spend one of the message's five receives, then the job).
THROTTLED_DELAY_SECONDS = 60


def run_message(message: dict[str, Any], budget: Budget) -> str:
    """One queued slice; stale or repeated messages do nothing."""
    job = jobs.get_job(str(message["account_id"]), str(message["import_id"]))
    if job is not None and job.status == "cancelled":
        objects.tag_processed(job.bucket, job.object_key)
        cleanup(job)
        return "cancelled"
    if job is None or job.status in FINAL or job.phase not in ("validate", "apply"):
        return "stale"
    token = (message.get("phase"), message.get("offset"))
    if (job.phase, job.offset) != token:
        if job.last_from == _token_text(token):
            # The slice that moved the job here died before queueing the
            # next one: queue it now (at most one extra message per slice).
            queue(job)
            return "requeued"
        return "stale"
    return run_slice(job, budget)


def give_up(message: dict[str, Any], attempts: int) -> bool:
    """A slice failed on its last delivery: fail the job rather than leave it running."""
    job = jobs.get_job(str(message["account_id"]), str(message["import_id"]))
    if job is None or job.status in FINAL:
        return False
    if (job.phase, job.offset) != (message.get("phase"), message.get("offset")):
        return False
    reason = f"the import stopped after {attempts} failed attempts at row {job.row + 1}"
    if job.phase == "apply" and job.rows_read:
        reason += f" (the first {job.rows_read} rows had been processed)"
    changes = {**_failure(job, reason), "invocations": 1}
    return jobs.advance(job, (job.phase, job.offset), changes)


def _token_text(token: tuple[Any, Any]) -> str:
    return f"{token[0]}:{token[1]}"


def run_slice(job: Job, budget: Budget) -> str:
    expected = (job.phase, job.offset)
    started: dict[str, Any] = {"invocations": 1}
    if job.status == "pending":
        started.update(status="running", started_at=clock.now_ms())
    delay = 0
    try:
        if job.phase == "validate":
            changes = _validate(job, budget)
        else:
            changes, delay = _apply(job, budget)
    except FileError as exc:
        reason = str(exc)
        if job.phase == "apply" and job.rows_read:
            reason += f" (the first {job.rows_read} rows had been processed)"
        changes = _failure(job, reason)
    changes = {**started, **changes, "last_from": _token_text(expected)}
    if not jobs.advance(job, expected, changes):
        return _lost_or_cancelled(job, expected, changes)
    if changes.get("status") in FINAL:
        cleanup(job)
        metrics.add_metric(name="ImportsFinished", unit=MetricUnit.Count, value=1)
        logger.info(
            "import finished", extra={"import_id": job.import_id, "status": changes["status"]}
        )
        return str(changes["status"])
    job.phase = changes.get("phase", job.phase)
    job.offset = changes["offset"]
    queue(job, delay_seconds=delay)
    return "backed off" if delay else "continued"


def _lost_or_cancelled(job: Job, expected: tuple[Any, Any], changes: dict[str, Any]) -> str:
    current = jobs.get_job(job.account_id, job.import_id)
    if current is None or current.status != "cancelled":
        return "lost"  # another runner of this slice moved the checkpoint first
    # Cancelled while this slice ran: its rows were applied, so count them.
    done = {k: v for k, v in changes.items() if k in jobs.ADDS or k in ("offset", "row")}
    jobs.advance(job, expected, done, statuses=("cancelled",))
    objects.tag_processed(job.bucket, job.object_key)
    cleanup(job)
    return "cancelled"


def _failure(job: Job, reason: str) -> dict[str, Any]:
    objects.tag_processed(job.bucket, job.object_key)
    return {
        "status": "failed",
        "error": reason,
        "phase": "done",
        "finished_at": clock.now_ms(),
        "offset": job.offset,
    }


def _open(job: Job, offset: int) -> Readable:
    if job.compressed:
        return decompressed(
            objects.open_object(job.bucket, job.object_key, job.etag or ""), skip=offset
        )
    if offset >= (job.size or 0):
        return io.BytesIO(b"")
    return objects.open_object(job.bucket, job.object_key, job.etag or "", start=offset)


def _validate(job: Job, budget: Budget) -> dict[str, Any]:
    """Check the whole file before anything changes; count its rows."""
    changes: dict[str, Any] = {}
    mapping = parse_mapping(job.mapping)
    fmt = job.fmt or "csv"
    if job.offset == 0 and job.row == 0:
        stream, job.compressed = open_stream(
            objects.open_object(job.bucket, job.object_key, job.etag or "")
        )
        changes["compressed"] = job.compressed
    else:
        stream = _open(job, job.offset)
    rows = records(stream, fmt, offset=job.offset, row=job.row)  # type: ignore[arg-type]
    plan = Plan.from_dict(job.plan) if job.plan else None
    last = (job.offset, job.row)
    if plan is None:
        if fmt == "csv":
            header = next(rows, None)
            if header is None:
                raise FileError("the file is empty: the first row must name the columns")
            plan = plan_csv(header.data, mapping)
            changes.update(data_offset=header.end, data_row=header.row)
            last = (header.end, header.row)
        else:
            plan = plan_jsonl(mapping)
            changes.update(data_offset=0, data_row=0)
        changes["plan"] = plan.as_dict()
    counted, seen_uuid, done = 0, job.seen_uuid, True
    for n, record in enumerate(rows, start=1):
        last = (record.end, record.row)
        _check_caps(record)
        if not is_blank(record):
            counted += 1
            if fmt == "jsonl" and plan.uuid in record.data:
                seen_uuid = True
        if n % budget.batch_rows == 0 and budget.low():
            done = False
            break
    changes.update(rows_total=counted, seen_uuid=seen_uuid)
    if not done:
        changes.update(offset=last[0], row=last[1])
        return changes
    if fmt == "jsonl":
        if (job.rows_total or 0) + counted == 0:
            raise FileError("the file is empty: no lines")
        if not seen_uuid:
            raise FileError(f"no line has a {plan.uuid!r} key: it identifies the users")
    data_offset = changes.get("data_offset", job.data_offset)
    data_row = changes.get("data_row", job.data_row)
    changes.update(phase="apply", offset=data_offset, row=data_row)
    return changes


def _check_caps(record: Record) -> None:
    if record.end > MAX_FILE_BYTES:
        raise FileError(
            f"the file is larger than {MAX_FILE_BYTES // 1024**2} MiB (decompressed): "
            "split it into smaller files"
        )
    if record.row > MAX_FILE_ROWS:
        raise FileError(
            f"the file has more than {MAX_FILE_ROWS:,} rows (blank lines included): "
            "split it into smaller files"
        )


class _CancelWatch:
    """Whether the job was cancelled, asked at most every CANCEL_CHECK_SECONDS."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.next_check = time.monotonic() + CANCEL_CHECK_SECONDS

    def cancelled(self) -> bool:
        now = time.monotonic()
        if now < self.next_check:
            return False
        self.next_check = now + CANCEL_CHECK_SECONDS
        current = jobs.get_job(self.job.account_id, self.job.import_id)
        return current is not None and current.status == "cancelled"


def _apply(job: Job, budget: Budget) -> tuple[dict[str, Any], int]:
    """Apply rows from the checkpoint; the changes to record, and the seconds to wait
    before the next slice (0, or THROTTLED_DELAY_SECONDS when DynamoDB kept throttling)."""
    assert job.plan is not None and job.import_ts is not None
    plan = Plan.from_dict(job.plan)
    stream = _open(job, job.offset)
    rows = records(stream, job.fmt or "csv", offset=job.offset, row=job.row)  # type: ignore[arg-type]
    room = max(0, MAX_REPORT_LINES - job.report_lines)
    lines: list[Rejection] = []
    good: list[Row] = []
    # What the slice has applied for good, up to `mark` (offset, row): every
    # counter and report line is of rows before it. A throttled batch is
    # dropped whole and read again by the next slice, so each row is counted
    # once, judged when it is finally applied.
    read = imported = rejected = 0
    mark = last = (job.offset, job.row)
    batch_read = batch_rejected = kept_lines = 0
    done = True
    delay = 0
    watch = _CancelWatch(job)
    started, writes, waited = time.monotonic(), 0, 0.0

    def flush() -> bool:
        """Apply the batch's good rows; False when DynamoDB kept throttling them."""
        nonlocal read, imported, rejected, batch_read, batch_rejected, good, mark, writes
        nonlocal kept_lines
        try:
            written = apply_rows(
                job.account_id,
                good,
                job.source,
                concurrency=IMPORT_WRITE_CONCURRENCY,
                # Half the reserve: enough to record the checkpoint and queue the rest.
                deadline=time.monotonic() + (budget.remaining_ms() - budget.reserve_ms / 2) / 1000,
            )
        except Throttled:
            del lines[kept_lines:]
            return False
        # Rows the per-user caps refuse come back as rejections, not failures.
        lines.extend(written.refused[: max(0, room - len(lines))])
        read += batch_read
        imported += len(good) - len(written.refused)
        rejected += batch_rejected + len(written.refused)
        writes += written.writes
        good, batch_read, batch_rejected, mark = [], 0, 0, last
        kept_lines = len(lines)
        return True

    # The budget is checked every batch_rows records, blank ones included:
    # a file of blank lines must stop on time as surely as one of rows.
    for n, record in enumerate(rows, start=1):
        last = (record.end, record.row)
        if not is_blank(record):
            batch_read += 1
            verdict = _check(record, plan, job)
            if isinstance(verdict, Rejection):
                batch_rejected += 1
                if len(lines) < room:
                    lines.append(verdict)
            else:
                good.append(verdict)
        if n % budget.batch_rows == 0:
            if not flush():
                done, delay = False, THROTTLED_DELAY_SECONDS
                break
            waited += _keep_pace(writes, started, IMPORT_ROWS_PER_SECOND, budget)
            if budget.low() or watch.cancelled():
                done = False
                break
    else:
        if not flush():
            done, delay = False, THROTTLED_DELAY_SECONDS
    if waited:
        metrics.add_metric(name="ImportPacedSeconds", unit=MetricUnit.Seconds, value=waited)
    if delay:
        metrics.add_metric(name="ImportBackedOff", unit=MetricUnit.Count, value=1)
        logger.warning(
            "DynamoDB kept throttling: the import waits and goes on",
            extra={"import_id": job.import_id, "row": mark[1], "delay_s": delay},
        )
    lines.sort(key=lambda line: line.row)
    if mark != (job.offset, job.row) or not delay:
        write_part(job, job.row, mark[1], lines)
    changes: dict[str, Any] = {
        "offset": mark[0],
        "row": mark[1],
        "rows_read": read,
        "rows_imported": imported,
        "rows_rejected": rejected,
        "report_lines": len(lines),
    }
    if done:
        total_imported = job.rows_imported + imported
        total_rejected = job.rows_rejected + rejected
        status = status_of(total_imported, total_rejected)
        if total_rejected:
            assemble_report(job, job.data_row, mark[1], total_rejected)
            changes["report_key"] = report_key(job)
        objects.tag_processed(job.bucket, job.object_key)
        changes.update(
            status=status,
            phase="done",
            finished_at=clock.now_ms(),
            error="every row was rejected: see the error report" if status == "failed" else None,
        )
    return changes, delay


def _keep_pace(writes: int, started: float, rate: float, budget: Budget) -> float:
    """Wait, if the slice's writes ran ahead of the import's rate (never past the budget);
    the seconds waited."""
    wait = pace.pause_seconds(writes, time.monotonic() - started, rate, burst=budget.batch_rows)
    wait = min(wait, (budget.remaining_ms() - budget.reserve_ms) / 1000)
    if wait <= 0:
        return 0.0
    time.sleep(wait)
    return wait


def _check(record: Record, plan: Plan, job: Job) -> Row | Rejection:
    now = clock.now_ms()
    assert job.import_ts is not None
    if isinstance(record.data, list):
        return check_csv_row(record.row, record.data, plan, import_ts=job.import_ts, now_ms=now)
    return check_row(record.row, record.data, plan, import_ts=job.import_ts, now_ms=now)
