"""Import jobs: the upload API, registering an S3 object once, listing and cancelling.

An S3 notification only registers the object (a conditional put keyed by
bucket/key/etag/sequencer, so a duplicate notification is a no-op) and
queues the first slice; slices.py runs them.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights import clock
from insights.domain.core.events import RequestError, decode_json
from insights.domain.core.timefmt import DAY_MS, format_time
from insights.domain.imports.files import (
    FileError,
    Mapping,
    MappingError,
    check_filename,
    file_format,
    parse_mapping,
)
from insights.storage.core.accounts import Account, get_account
from insights.storage.imports import jobs, objects
from insights.storage.imports.jobs import Duplicate, Job

logger = Logger(child=True)
metrics = Metrics()

SOURCE_DROP = "s3"
SOURCE_UPLOAD = "csv"
MAPPING_FILE = "mapping.json"
MAPPING_MAX_BYTES = 64 * 1024
UPLOAD_EXPIRES_SECONDS = 3600
REPORT_LINK_SECONDS = 3600
FINAL = ("succeeded", "partially_succeeded", "failed", "cancelled")
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
    if job.source == "salesforce":
        # Records deleted in Salesforce whose values the sync withdrew (docs/salesforce.md).
        body["rows"]["deleted"] = job.rows_deleted or 0
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
            queue(existing)  # the first delivery may have died before queueing
        return existing
    if job.status == "pending":
        queue(job)
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


def queue(job: Job, *, delay_seconds: int = 0) -> None:
    objects.send_continuation(
        {
            "account_id": job.account_id,
            "import_id": job.import_id,
            "phase": job.phase,
            "offset": job.offset,
        },
        delay_seconds=delay_seconds,
    )


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
