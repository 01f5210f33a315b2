"""File imports: register an S3 object once, then process it in checkpointed slices.

An S3 notification only registers the object (a conditional put keyed by
bucket/key/etag/sequencer, so a duplicate notification is a no-op) and
queues the first slice. Every slice is one SQS message: it reads the file
from the job's checkpoint, stops when the invocation's time runs low, and
moves the checkpoint with a conditional update that also adds the slice's
counters, then queues the next slice. A slice that crashes or loses the
race is simply run again from the same checkpoint: rows are applied by
most-recent-wins, so applying one again changes nothing and writes nothing.

Two passes: `validate` reads the whole file once to check what makes a file
unusable (header, encoding, CSV/JSON syntax) so a bad file changes nothing;
`apply` reads it again and writes the rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights import clock
from insights.domain.core.events import RequestError, decode_json
from insights.domain.core.timefmt import DAY_MS, format_time
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
    Mapping,
    MappingError,
    Plan,
    Rejection,
    Row,
    check_csv_row,
    check_filename,
    check_row,
    file_format,
    parse_mapping,
    plan_csv,
    plan_jsonl,
    status_of,
)
from insights.services.core.attributes import apply_rows
from insights.storage.core.accounts import Account, get_account
from insights.storage.imports import jobs, objects
from insights.storage.imports.jobs import Duplicate, Job

logger = Logger(child=True)
metrics = Metrics()

SOURCE_DROP = "s3"
SOURCE_UPLOAD = "csv"
MAPPING_FILE = "mapping.json"
MAPPING_MAX_BYTES = 64 * 1024
MAX_REPORT_LINES = 10_000
REPORT_HEADER = ("row", "column", "reason")
UPLOAD_EXPIRES_SECONDS = 3600
REPORT_LINK_SECONDS = 3600
FINAL = ("succeeded", "partially_succeeded", "failed", "cancelled")
# A file may not hold more than this, decompressed, nor more rows (blank
# lines included): a small gzip of newlines would otherwise keep slices busy
# for hours. Each gzip slice decompresses again up to its checkpoint (a
# deflate stream cannot be entered in the middle), so the size cap also
# bounds that cost to a few seconds per slice.
MAX_FILE_BYTES = 2 * 1024**3
MAX_FILE_ROWS = 10_000_000
# A running slice looks for a cancellation this often (one read each time).
CANCEL_CHECK_SECONDS = 5.0
CANCELLED_BY_USER = "cancelled by the user"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def retention_days() -> int:
    return _env_int("IMPORT_RETENTION_DAYS", 30)


def max_upload_bytes() -> int:
    return _env_int("IMPORT_MAX_UPLOAD_BYTES", 100 * 1024 * 1024)


@dataclass(frozen=True)
class Budget:
    """How long this invocation may keep going: stop when less than `reserve_ms` is left."""

    remaining_ms: Callable[[], int]
    reserve_ms: int
    batch_rows: int

    @classmethod
    def from_context(cls, context: Any) -> Budget:
        return cls(
            remaining_ms=context.get_remaining_time_in_millis,
            reserve_ms=_env_int("IMPORT_RESERVE_MS", 30_000),
            batch_rows=max(1, _env_int("IMPORT_BATCH_ROWS", 100)),
        )

    def low(self) -> bool:
        return self.remaining_ms() < self.reserve_ms


def new_import_id(now_ms: int) -> str:
    # Time first, so the newest jobs sort first in a descending query.
    return f"imp_{now_ms:011x}{secrets.token_hex(5)}"


_IMPORT_ID = re.compile(r"^imp_[0-9a-f]{11,16}[0-9a-f]{10}$")


def is_import_id(text: str) -> bool:
    """What new_import_id makes; anything else names no import (and is never looked up)."""
    return bool(_IMPORT_ID.match(text))


def _expires(now_ms: int) -> int:
    return (now_ms + retention_days() * DAY_MS) // 1000


def report_key(job: Job) -> str:
    return f"reports/{job.account_id}/{job.import_id}.csv"


def _parts_prefix(job: Job) -> str:
    return f"reports/{job.account_id}/{job.import_id}/parts/"


# ------------------------------------------------------------------ uploads
UPLOAD_FIELDS = frozenset({"filename", "mapping"})


def create_upload(account: Account, body: Any) -> dict[str, Any]:
    """POST /v1/imports: a pending job and a form upload S3 accepts for its key only."""
    if not isinstance(body, dict):
        raise MappingError('send {"filename": ..., "mapping": {...}}')
    unknown = sorted(set(body) - UPLOAD_FIELDS)
    if unknown:
        raise MappingError(f"unknown field {unknown[0]!r}; known: filename, mapping")
    if not account.settings.unique_user_ids:
        raise MappingError(
            "unique_user_ids is off for this account: there are no user records to import into"
        )
    filename = check_filename(body.get("filename"))
    mapping = parse_mapping(body.get("mapping"))
    now = clock.now_ms()
    import_id = new_import_id(now)
    # The key is built here, from the caller's account: the client names
    # nothing but the file's base name, and the signed policy pins the key.
    key = f"imports/{account.account_id}/uploads/{import_id}/{filename}"
    job = Job(
        account_id=account.account_id,
        import_id=import_id,
        status="pending",
        source=SOURCE_UPLOAD,
        filename=filename,
        bucket=objects.bucket_name(),
        object_key=key,
        mapping=mapping.as_dict(),
        created_at=now,
        expires_at=_expires(now),
        phase="upload",
    )
    jobs.create_job(job)
    limit = max_upload_bytes()
    form = objects.presigned_post(job.bucket, key, max_bytes=limit, expires=UPLOAD_EXPIRES_SECONDS)
    body_out = public(job)
    body_out["upload"] = {
        "url": form["url"],
        "fields": form["fields"],
        "max_bytes": limit,
        "expires_at": format_time(now + UPLOAD_EXPIRES_SECONDS * 1000),
    }
    return body_out


def public(job: Job) -> dict[str, Any]:
    """A job as the API shows it."""
    body: dict[str, Any] = {
        "id": job.import_id,
        "status": job.status,
        "source": job.source,
        "filename": job.filename,
        "mapping": job.mapping,
        "rows": {
            "total": job.rows_total if job.phase in ("apply", "done") else None,
            "read": job.rows_read,
            "imported": job.rows_imported,
            "rejected": job.rows_rejected,
        },
        "phase": job.phase,
        "created_at": format_time(job.created_at),
        "started_at": format_time(job.started_at),
        "finished_at": format_time(job.finished_at),
        "duration_seconds": None
        if job.finished_at is None or job.started_at is None
        else round((job.finished_at - job.started_at) / 1000, 3),
        "error": job.error,
        "invocations": job.invocations,
        "error_report": None,
    }
    if job.report_key:
        body["error_report"] = {
            "url": objects.presigned_get(job.bucket, job.report_key, expires=REPORT_LINK_SECONDS),
            "lines": job.report_lines,
            "expires_in_seconds": REPORT_LINK_SECONDS,
        }
    return body


def list_imports(account_id: str, limit: int = 50, after: str | None = None) -> dict[str, Any]:
    found, more = jobs.list_jobs(account_id, limit, after)
    return {
        "imports": [public(job) for job in found],
        "next": found[-1].import_id if more and found else None,
    }


def get_import(account_id: str, import_id: str) -> dict[str, Any] | None:
    job = jobs.get_job(account_id, import_id)
    return None if job is None else public(job)


# ------------------------------------------------------------- registration
@dataclass(frozen=True)
class ObjectEvent:
    bucket: str
    key: str
    etag: str
    size: int
    sequencer: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ObjectEvent:
        s3 = record["s3"]
        return cls(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(s3["object"]["key"]),
            etag=str(s3["object"].get("eTag", "")).strip('"'),
            size=int(s3["object"].get("size", 0)),
            sequencer=str(s3["object"].get("sequencer", "")),
        )

    @property
    def digest(self) -> str:
        identity = f"{self.bucket}/{self.key}/{self.etag}/{self.sequencer}"
        return hashlib.sha256(identity.encode()).hexdigest()


def register(event: ObjectEvent) -> Job | None:
    """A new object under imports/<account id>/: its job, once per object version."""
    parts = event.key.split("/")
    if len(parts) < 3 or parts[0] != "imports" or not parts[1] or not parts[-1]:
        logger.warning("object outside imports/<account id>/<name>: ignored")
        objects.tag_processed(event.bucket, event.key)  # expires like a processed file
        return None
    account_id, rest = parts[1], parts[2:]
    if rest == [MAPPING_FILE]:
        logger.info("an account's default mapping was updated")
        return None
    account = get_account(account_id)
    if account is None:
        logger.warning("object for an unknown account: ignored", extra={"account_id": account_id})
        objects.tag_processed(event.bucket, event.key)
        return None
    now = clock.now_ms()
    claim = None
    if len(rest) == 3 and rest[0] == "uploads":
        candidate = jobs.get_job(account_id, rest[1])
        if candidate is not None and candidate.object_key == event.key:
            claim = candidate  # the key was issued for this account's upload job
    if claim is not None and claim.status == "cancelled":
        objects.tag_processed(event.bucket, event.key)  # cancelled before its file came
        return claim
    try:
        if claim is not None and claim.phase == "upload":
            job = _new_job(account, event, now, claim)
            try:
                jobs.register(event.digest, job, claim=claim)
            except ValueError:  # claimed a moment ago by another version of the file
                job = _new_job(account, event, now, claim, fresh_id=True)
                jobs.register(event.digest, job)
        else:
            # A drop, or an upload form used a second time: its own import.
            job = _new_job(account, event, now, claim, fresh_id=True)
            jobs.register(event.digest, job)
    except Duplicate as dup:
        metrics.add_metric(name="ImportDuplicateNotifications", unit=MetricUnit.Count, value=1)
        existing = jobs.get_job(account_id, dup.import_id)
        if existing is not None and existing.status == "pending":
            _queue(existing)  # the first delivery may have died before queueing
        return existing
    if job.status == "pending":
        _queue(job)
    else:
        objects.tag_processed(event.bucket, event.key)
    return job


def _new_job(
    account: Account, event: ObjectEvent, now: int, claim: Job | None, *, fresh_id: bool = False
) -> Job:
    name = event.key.rsplit("/", 1)[-1]
    job = Job(
        account_id=account.account_id,
        import_id=claim.import_id if claim and not fresh_id else new_import_id(now),
        status="pending",
        source=claim.source if claim else SOURCE_DROP,
        filename=claim.filename if claim else name,
        bucket=event.bucket,
        object_key=event.key,
        mapping=claim.mapping if claim else {},
        created_at=claim.created_at if claim and not fresh_id else now,
        expires_at=_expires(now),
        etag=event.etag,
        sequencer=event.sequencer,
        size=event.size,
        import_ts=now,
        phase="validate",
    )
    try:
        if not account.settings.unique_user_ids:
            raise FileError(
                "unique_user_ids is off for this account: there are no user records to import into"
            )
        job.fmt = file_format(name)[0]
        if claim is None:
            job.mapping = _account_mapping(account.account_id, event.bucket).as_dict()
    except (FileError, MappingError) as exc:
        job.status, job.error, job.finished_at, job.phase = "failed", str(exc), now, "done"
    return job


def _account_mapping(account_id: str, bucket: str) -> Mapping:
    raw = objects.read_small(bucket, f"imports/{account_id}/{MAPPING_FILE}", MAPPING_MAX_BYTES)
    if raw is None:
        return Mapping()
    try:
        decoded = decode_json(raw)
    except RequestError as exc:
        raise MappingError(f"{MAPPING_FILE}: {exc.message}") from None
    try:
        return parse_mapping(decoded)
    except MappingError as exc:
        raise MappingError(f"{MAPPING_FILE}: {exc}") from None


def _queue(job: Job) -> None:
    objects.send_continuation(
        {
            "account_id": job.account_id,
            "import_id": job.import_id,
            "phase": job.phase,
            "offset": job.offset,
        }
    )


# ------------------------------------------------------------------ slices
def run_message(message: dict[str, Any], budget: Budget) -> str:
    """One queued slice; stale or repeated messages do nothing."""
    job = jobs.get_job(str(message["account_id"]), str(message["import_id"]))
    if job is not None and job.status == "cancelled":
        objects.tag_processed(job.bucket, job.object_key)
        _cleanup(job)
        return "cancelled"
    if job is None or job.status in FINAL or job.phase not in ("validate", "apply"):
        return "stale"
    token = (message.get("phase"), message.get("offset"))
    if (job.phase, job.offset) != token:
        if job.last_from == _token_text(token):
            # The slice that moved the job here died before queueing the
            # next one: queue it now (at most one extra message per slice).
            _queue(job)
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
    try:
        changes = _validate(job, budget) if job.phase == "validate" else _apply(job, budget)
    except FileError as exc:
        reason = str(exc)
        if job.phase == "apply" and job.rows_read:
            reason += f" (the first {job.rows_read} rows had been processed)"
        changes = _failure(job, reason)
    changes = {**started, **changes, "last_from": _token_text(expected)}
    if not jobs.advance(job, expected, changes):
        return _lost_or_cancelled(job, expected, changes)
    if changes.get("status") in FINAL:
        _cleanup(job)
        metrics.add_metric(name="ImportsFinished", unit=MetricUnit.Count, value=1)
        logger.info(
            "import finished", extra={"import_id": job.import_id, "status": changes["status"]}
        )
        return str(changes["status"])
    job.phase = changes.get("phase", job.phase)
    job.offset = changes["offset"]
    _queue(job)
    return "continued"


def _lost_or_cancelled(job: Job, expected: tuple[Any, Any], changes: dict[str, Any]) -> str:
    current = jobs.get_job(job.account_id, job.import_id)
    if current is None or current.status != "cancelled":
        return "lost"  # another runner of this slice moved the checkpoint first
    # Cancelled while this slice ran: its rows were applied, so count them.
    done = {k: v for k, v in changes.items() if k in jobs.ADDS or k in ("offset", "row")}
    jobs.advance(job, expected, done, statuses=("cancelled",))
    objects.tag_processed(job.bucket, job.object_key)
    _cleanup(job)
    return "cancelled"


def cancel_import(account_id: str, import_id: str) -> dict[str, Any] | None:
    """POST /v1/imports/{id}/cancel: stop a pending or running import.

    None when there is no such import; a SegmentError-like ImportFinished
    when it had already finished. Rows applied before the cancel stay.
    """
    job = jobs.get_job(account_id, import_id)
    if job is None:
        return None
    if not jobs.cancel(account_id, import_id, clock.now_ms(), CANCELLED_BY_USER):
        raise ImportFinished(jobs.get_job(account_id, import_id) or job)
    found = jobs.get_job(account_id, import_id)
    return public(found or job)


class ImportFinished(Exception):
    def __init__(self, job: Job) -> None:
        super().__init__(f"the import has already finished ({job.status})")
        self.job = job


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


def _apply(job: Job, budget: Budget) -> dict[str, Any]:
    assert job.plan is not None and job.import_ts is not None
    plan = Plan.from_dict(job.plan)
    stream = _open(job, job.offset)
    rows = records(stream, job.fmt or "csv", offset=job.offset, row=job.row)  # type: ignore[arg-type]
    room = max(0, MAX_REPORT_LINES - job.report_lines)
    lines: list[Rejection] = []
    good: list[Row] = []
    read = imported = rejected = 0
    last = (job.offset, job.row)
    done = True
    watch = _CancelWatch(job)
    refused: list[Rejection] = []

    def flush() -> int:
        # Rows the per-user caps refuse come back as rejections, not failures.
        refused.clear()
        apply_rows(job.account_id, good, job.source, rejected=refused)
        lines.extend(refused[: max(0, room - len(lines))])
        return len(good) - len(refused)

    # The budget is checked every batch_rows records, blank ones included:
    # a file of blank lines must stop on time as surely as one of rows.
    for n, record in enumerate(rows, start=1):
        last = (record.end, record.row)
        if not is_blank(record):
            read += 1
            verdict = _check(record, plan, job)
            if isinstance(verdict, Rejection):
                rejected += 1
                if len(lines) < room:
                    lines.append(verdict)
            else:
                good.append(verdict)
        if n % budget.batch_rows == 0:
            kept = flush()
            imported += kept
            rejected += len(good) - kept
            good = []
            if budget.low() or watch.cancelled():
                done = False
                break
    kept = flush()
    imported += kept
    rejected += len(good) - kept
    lines.sort(key=lambda line: line.row)
    _write_part(job, job.row, last[1], lines)
    changes: dict[str, Any] = {
        "offset": last[0],
        "row": last[1],
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
            _assemble_report(job, job.data_row, last[1], total_rejected)
            changes["report_key"] = report_key(job)
        objects.tag_processed(job.bucket, job.object_key)
        changes.update(
            status=status,
            phase="done",
            finished_at=clock.now_ms(),
            error="every row was rejected: see the error report" if status == "failed" else None,
        )
    return changes


def _check(record: Record, plan: Plan, job: Job) -> Row | Rejection:
    now = clock.now_ms()
    assert job.import_ts is not None
    if isinstance(record.data, list):
        return check_csv_row(record.row, record.data, plan, import_ts=job.import_ts, now_ms=now)
    return check_row(record.row, record.data, plan, import_ts=job.import_ts, now_ms=now)


# ------------------------------------------------------------------ reports
def _lines_csv(lines: list[Rejection], header: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(REPORT_HEADER)
    for line in lines:
        writer.writerow((line.row, _cell(line.column), _cell(line.reason)))
    return out.getvalue()


def _cell(text: str) -> str:
    """Column names come from the file: keep spreadsheets from running them as formulas."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _write_part(job: Job, start_row: int, end_row: int, lines: list[Rejection]) -> None:
    """Every slice leaves a part named by its row range, even an empty one.

    Two runners of the same slice may stop at different rows; only the one
    whose checkpoint won continues the chain, and the report follows the
    chain of parts from the first data row to the last (any path gives the
    same lines: a row's verdict does not depend on who read it).
    """
    key = f"{_parts_prefix(job)}{start_row:012d}-{end_row:012d}.csv"
    objects.put_text(job.bucket, key, _lines_csv(lines))


def _assemble_report(job: Job, first_row: int, last_row: int, total_rejected: int) -> None:
    edges: dict[int, list[tuple[int, str]]] = {}
    for key in objects.list_keys(job.bucket, _parts_prefix(job)):
        name = key.rsplit("/", 1)[-1].removesuffix(".csv")
        start, _, end = name.partition("-")
        edges.setdefault(int(start), []).append((int(end), key))
    path = _chain(edges, first_row, last_row)
    out = io.StringIO()
    out.write(_lines_csv([], header=True))
    written = 0
    for key in path:
        for line in objects.read_text(job.bucket, key).splitlines(keepends=True):
            if written >= MAX_REPORT_LINES:
                break
            out.write(line)
            written += 1
    if total_rejected > written:
        out.write(
            _lines_csv(
                [Rejection(0, "", f"{total_rejected - written} more rejected rows not listed")]
            )
        )
    objects.put_text(job.bucket, report_key(job), out.getvalue())


def _chain(edges: dict[int, list[tuple[int, str]]], start: int, end: int) -> list[str]:
    """Part keys from `start` to `end` row (depth-first: stale parts lead nowhere)."""
    stack: list[tuple[int, list[str]]] = [(start, [])]
    seen: set[int] = set()
    while stack:
        row, path = stack.pop()
        if row == end and (path or start == end):
            return path
        if row in seen:
            continue
        seen.add(row)
        for next_row, key in sorted(edges.get(row, [])):
            if next_row > row or (next_row == end and not path):
                stack.append((next_row, [*path, key]))
    raise RuntimeError("the report's parts do not cover the file: slices are missing")


def _cleanup(job: Job) -> None:
    try:
        objects.delete_keys(job.bucket, objects.list_keys(job.bucket, _parts_prefix(job)))
    except Exception:  # parts expire with the reports anyway
        logger.exception("could not delete report parts")
