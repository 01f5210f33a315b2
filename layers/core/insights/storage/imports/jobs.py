"""Import jobs in ImportsTable: one item per job, one marker per S3 object version.

Keys are scoped by account: pk is the account id, sk "job#<import id>" for a
job and "obj#<digest of bucket/key/etag/sequencer>" for the marker that
makes a duplicate S3 notification a no-op. Progress moves only by
conditional updates on the checkpoint (phase, offset), so two runners of the
same slice can never both count it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from insights.storage.aws import share
from insights.storage.core.models import _Meta
from insights.storage.core.store import _connection

JOB_PREFIX = "job#"
MARKER_PREFIX = "obj#"


class _ImportsMeta(_Meta):
    table_name = os.environ.get("IMPORTS_TABLE", "ImportsTable")


class ImportJobItem(Model):
    class Meta(_ImportsMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)  # account id
    sk = UnicodeAttribute(range_key=True)  # "job#<import id>"
    status = UnicodeAttribute()
    source = UnicodeAttribute()  # "s3" | "csv"
    filename = UnicodeAttribute()
    bucket = UnicodeAttribute()
    object_key = UnicodeAttribute()
    mapping = UnicodeAttribute()  # JSON
    created_at = NumberAttribute()
    expires_at = NumberAttribute()  # TTL, epoch seconds
    etag = UnicodeAttribute(null=True)
    sequencer = UnicodeAttribute(null=True)
    size = NumberAttribute(null=True)
    fmt = UnicodeAttribute(null=True)
    compressed = NumberAttribute(null=True)
    plan = UnicodeAttribute(null=True)  # JSON, once the header is read
    import_ts = NumberAttribute(null=True)
    started_at = NumberAttribute(null=True)
    finished_at = NumberAttribute(null=True)
    phase = UnicodeAttribute(null=True)  # "upload" | "validate" | "apply" | "done"
    offset = NumberAttribute(null=True)
    row = NumberAttribute(null=True)
    data_offset = NumberAttribute(null=True)
    data_row = NumberAttribute(null=True)
    seen_uuid = NumberAttribute(null=True)
    rows_total = NumberAttribute(null=True)
    rows_read = NumberAttribute(null=True)
    rows_imported = NumberAttribute(null=True)
    rows_rejected = NumberAttribute(null=True)
    rows_deleted = NumberAttribute(null=True)  # Salesforce: deleted records whose values went
    report_lines = NumberAttribute(null=True)
    report_key = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    invocations = NumberAttribute(null=True)
    last_from = UnicodeAttribute(null=True)  # the checkpoint the last slice started at
    checkpoint = UnicodeAttribute(null=True)  # JSON: a Salesforce sync's position


class ObjectMarkerItem(Model):
    class Meta(_ImportsMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)  # account id
    sk = UnicodeAttribute(range_key=True)  # "obj#<digest>"
    import_id = UnicodeAttribute()
    expires_at = NumberAttribute()


@dataclass(slots=True)
class Job:
    account_id: str
    import_id: str
    status: str
    source: str
    filename: str
    bucket: str
    object_key: str
    mapping: dict[str, Any]
    created_at: int
    expires_at: int
    etag: str | None = None
    sequencer: str | None = None
    size: int | None = None
    fmt: str | None = None
    compressed: bool = False
    plan: dict[str, Any] | None = None
    import_ts: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    phase: str | None = None
    offset: int = 0
    row: int = 0
    data_offset: int = 0
    data_row: int = 0
    seen_uuid: bool = False
    rows_total: int | None = None
    rows_read: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    rows_deleted: int | None = None
    report_lines: int = 0
    report_key: str | None = None
    error: str | None = None
    invocations: int = 0
    last_from: str | None = None
    checkpoint: dict[str, Any] | None = None


_JSON_FIELDS = ("mapping", "plan", "checkpoint")
_BOOL_FIELDS = ("compressed", "seen_uuid")


def _to_item(job: Job) -> ImportJobItem:
    attrs: dict[str, Any] = {}
    for f in fields(Job):
        if f.name in ("account_id", "import_id"):
            continue
        value = getattr(job, f.name)
        if f.name in _JSON_FIELDS and value is not None:
            value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        elif f.name in _BOOL_FIELDS:
            value = int(bool(value))
        attrs[f.name] = value
    return ImportJobItem(job.account_id, JOB_PREFIX + job.import_id, **attrs)


def _from_item(item: ImportJobItem) -> Job:
    values: dict[str, Any] = {}
    for f in fields(Job):
        if f.name in ("account_id", "import_id"):
            continue
        value = getattr(item, f.name)
        if value is None:
            continue
        if f.name in _JSON_FIELDS:
            value = json.loads(value)
        elif f.name in _BOOL_FIELDS:
            value = bool(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        values[f.name] = value
    return Job(account_id=item.pk, import_id=item.sk.removeprefix(JOB_PREFIX), **values)


def create_job(job: Job) -> None:
    _to_item(job).save(ImportJobItem.pk.does_not_exist())


def get_job(account_id: str, import_id: str) -> Job | None:
    try:
        return _from_item(
            ImportJobItem.get(account_id, JOB_PREFIX + import_id, consistent_read=True)
        )
    except ImportJobItem.DoesNotExist:
        return None


def list_jobs(account_id: str, limit: int, after: str | None = None) -> tuple[list[Job], bool]:
    """Newest first, after the job `after` if given; (jobs, whether more exist)."""
    if after is None:
        condition = ImportJobItem.sk.startswith(JOB_PREFIX)
    else:
        condition = ImportJobItem.sk.between(JOB_PREFIX, JOB_PREFIX + after)
    query = ImportJobItem.query(account_id, condition, scan_index_forward=False, limit=limit + 2)
    found = [_from_item(item) for item in query]
    found = [job for job in found if job.import_id != after]
    return found[:limit], len(found) > limit


class Duplicate(Exception):
    """This object version was registered before: carries the job it started."""

    def __init__(self, import_id: str) -> None:
        super().__init__(import_id)
        self.import_id = import_id


def register(marker_digest: str, job: Job, *, claim: Job | None = None) -> None:
    """Record an object version once: a marker plus a new job (or a claimed upload job).

    Raises Duplicate when the marker exists, ValueError when `claim` was
    already claimed by another object version.
    """
    marker = ObjectMarkerItem(
        job.account_id,
        MARKER_PREFIX + marker_digest,
        import_id=job.import_id,
        expires_at=job.expires_at,
    )
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(marker, condition=ObjectMarkerItem.pk.does_not_exist())
            if claim is None:
                tx.save(_to_item(job), condition=ImportJobItem.pk.does_not_exist())
            else:
                tx.save(_to_item(job), condition=ImportJobItem.phase == "upload")
    except TransactWriteError as exc:
        reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            existing = ObjectMarkerItem.get(
                job.account_id, MARKER_PREFIX + marker_digest, consistent_read=True
            )
            raise Duplicate(existing.import_id) from exc
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            raise ValueError("the upload was already claimed by another object") from exc
        raise


def advance(
    job: Job,
    expected: tuple[str | None, int],
    changes: dict[str, Any],
    *,
    statuses: tuple[str, ...] = ("pending", "running"),
) -> bool:
    """Move a job's checkpoint from `expected` (phase, offset); False if someone else did.

    `changes` are new values; counters named in ADDS are added to, not set.
    `statuses`: the job must be in one of them (a cancelled job's last slice
    still records what it did, with ("cancelled",)).
    """
    item, actions, condition = advance_update(job, expected, changes, statuses=statuses)
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def advance_update(
    job: Job,
    expected: tuple[str | None, int],
    changes: dict[str, Any],
    *,
    statuses: tuple[str, ...] = ("pending", "running"),
) -> tuple[ImportJobItem, list[Any], Any]:
    """`advance` as (item, actions, condition), to write in a transaction with another item."""
    item = ImportJobItem(job.account_id, JOB_PREFIX + job.import_id)
    actions = []
    for name, value in changes.items():
        attr = getattr(ImportJobItem, name)
        if name in ADDS:
            actions.append(attr.add(value))
        elif value is None:
            actions.append(attr.remove())
        else:
            if name in _JSON_FIELDS:
                value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            elif name in _BOOL_FIELDS:
                value = int(bool(value))
            actions.append(attr.set(value))
    phase, offset = expected
    condition = ImportJobItem.status.is_in(*statuses) & (ImportJobItem.offset == offset)
    if statuses == ("cancelled",):
        pass  # cancelling set the phase to "done": the offset alone is the checkpoint
    elif phase is not None:
        condition &= ImportJobItem.phase == phase
    else:
        condition &= ImportJobItem.phase.does_not_exist()
    return item, actions, condition


ADDS = frozenset(
    {"rows_read", "rows_imported", "rows_rejected", "report_lines", "invocations", "rows_total"}
    | {"rows_deleted"}
)


def cancel(account_id: str, import_id: str, now_ms: int, reason: str) -> bool:
    """Stop a pending or running job; False when it had already finished.

    The checkpoint (offset) is left as it is: a slice that is running now
    finds the status changed, stops, and records what it did against it.
    """
    item = ImportJobItem(account_id, JOB_PREFIX + import_id)
    try:
        item.update(
            actions=[
                ImportJobItem.status.set("cancelled"),
                ImportJobItem.phase.set("done"),
                ImportJobItem.finished_at.set(now_ms),
                ImportJobItem.error.set(reason),
            ],
            condition=ImportJobItem.status.is_in("pending", "running"),
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


# One botocore client per container for every model (storage/aws.py).
share(ImportJobItem, ObjectMarkerItem)
