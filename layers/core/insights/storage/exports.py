"""Exports' storage: reading profiles by scan, export files in S3, job records.

Profiles are read with a parallel, eventually consistent Scan of UsersTable:
DynamoDB bills a scan for the bytes it reads, rounded per 4 KB page, not per
item (0.5 RRU per 4 KB), the cheapest way to read every profile; the GSIs
either lack custom attributes or would need a read per user
(docs/sql.md, "Why a scan and gzipped JSON").
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from insights.config import load
from insights.domain.core.profile import CustomValue, Profile
from insights.domain.exports import PREFIX, Job, partition
from insights.storage import aws
from insights.storage.aws import share
from insights.storage.core.models import _Meta
from insights.storage.core.records import PROFILE_SK

_settings = load()
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


class ExportLeaseItem(Model):
    """The account's on-demand export in progress (pk "export#<account id>#running"):
    a lease its slices renew, so one that died stops holding the account."""

    class Meta(_Meta):
        table_name = _settings.accounts_table

    pk = UnicodeAttribute(hash_key=True)
    job = UnicodeAttribute()
    until = NumberAttribute()


class ExportJobItem(Model):
    """An on-demand export (pk "export#<account id>#<job id>") in AccountsTable."""

    class Meta(_Meta):
        table_name = _settings.accounts_table

    pk = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()
    created_at = NumberAttribute()
    dt = UnicodeAttribute()
    exported_at = NumberAttribute()
    finished_at = NumberAttribute(null=True)
    users = NumberAttribute(default=0)
    files = NumberAttribute(default=0)
    error = UnicodeAttribute(null=True)


def bucket() -> str:
    return os.environ.get("EXPORTS_BUCKET", "exportsbucket")


# ---------------------------------------------------------------- profiles
def scan_profiles(
    segment: int,
    total: int,
    after: dict[str, Any] | None,
    account_id: str | None = None,
) -> Iterator[tuple[Profile, dict[str, Any] | None]]:
    """(profile, the scan's position after it) from one scan segment, resuming after `after`.

    The filter costs nothing: a scan is billed for what it reads. Items are
    decoded here rather than through the pynamodb model: its decoding took
    two thirds of the export's CPU (330 us of ~500 us per user), and a million
    users are a million items (tests/exports check both decodings agree).
    """
    args: dict[str, Any] = {
        "TableName": _settings.users_table,
        "Segment": segment,
        "TotalSegments": total,
        "FilterExpression": "sk = :profile",
        "ExpressionAttributeValues": {":profile": {"S": PROFILE_SK}},
    }
    if account_id is not None:
        args["FilterExpression"] += " AND account_id = :account"
        args["ExpressionAttributeValues"][":account"] = {"S": account_id}
    while True:
        if after:
            args["ExclusiveStartKey"] = after
        page = aws.dynamodb().scan(**args)
        items = page.get("Items", [])
        after = page.get("LastEvaluatedKey")
        for index, raw in enumerate(items):
            # Mid-page, the position is the item's own key (a scan resumes after it).
            here = after if index == len(items) - 1 else {"pk": raw["pk"], "sk": raw["sk"]}
            yield profile_of(raw), here
        if not after:
            return


def profile_of(raw: dict[str, Any]) -> Profile:
    """A profile item as DynamoDB returns it (the fields profile_to_item writes)."""
    custom = {}
    for name, entry in (raw.get("custom") or {}).get("M", {}).items():
        fields = entry["M"]
        changed = fields.get("c")
        custom[name] = CustomValue(
            _plain(fields.get("v")),
            int(fields["t"]["N"]),
            fields["s"]["S"],
            None if changed is None or "N" not in changed else int(changed["N"]),
        )
    return Profile(
        account_id=raw["account_id"]["S"],
        uuid=raw["uuid"]["S"],
        created_at=int(raw["created_at"]["N"]),
        first_seen=_int(raw.get("first_seen")),
        last_seen=_int(raw.get("last_seen")),
        total_sessions=_int(raw.get("total_sessions")) or 0,
        total_duration_ms=_int(raw.get("total_duration_ms")) or 0,
        country=_text(raw.get("country")),
        region=_text(raw.get("region")),
        city=_text(raw.get("city")),
        browser_name=_text(raw.get("browser_name")),
        browser_version=_text(raw.get("browser_version")),
        custom=custom,
        erased_at=_int(raw.get("erased_at")),
    )


def _int(value: dict[str, Any] | None) -> int | None:
    return None if value is None or "N" not in value else int(Decimal(value["N"]))


def _text(value: dict[str, Any] | None) -> str | None:
    return None if value is None else value.get("S")


def _plain(value: dict[str, Any] | None) -> Any:
    if value is None or "NULL" in value:
        return None
    if "S" in value:
        return value["S"]
    if "BOOL" in value:
        return bool(value["BOOL"])
    if "N" in value:
        number = Decimal(value["N"])
        # Whole numbers stay whole, as profile_from_item keeps them.
        if number == number.to_integral_value() and abs(number) < 2**53:
            return int(number)
        return float(number)
    return _deserializer().deserialize(value)


@cache
def _deserializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


# ------------------------------------------------------------------ files
def _s3() -> Any:
    return aws.client("s3")


def put_file(key: str, data: bytes) -> None:
    _s3().put_object(
        Bucket=bucket(),
        Key=key,
        Body=data,
        ContentType="application/x-ndjson",
        ContentEncoding="gzip",
    )


def keys_under(prefix: str) -> list[str]:
    found = []
    for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket(), Prefix=prefix):
        found.extend(o["Key"] for o in page.get("Contents", []))
    return found


def accounts_exported() -> list[str]:
    """Account ids that have export partitions (the daily job's clean-up walks them)."""
    found = []
    pages = (
        _s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket(), Prefix=f"{PREFIX}account=", Delimiter="/")
    )
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            found.append(common["Prefix"][len(PREFIX) + len("account=") :].rstrip("/"))
    return found


def delete_files(keys: list[str]) -> None:
    for start in range(0, len(keys), DELETE_BATCH):
        chunk = keys[start : start + DELETE_BATCH]
        _s3().delete_objects(
            Bucket=bucket(), Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
        )


def partition_keys(account_id: str, dt: str) -> list[str]:
    return keys_under(partition(account_id, dt))


# -------------------------------------------------------------------- jobs
def _job_pk(account_id: str, job_id: str) -> str:
    return f"export#{account_id}#{job_id}"


def save_job(job: Job) -> None:
    ExportJobItem(
        _job_pk(job.account_id, job.id),
        status=job.status,
        created_at=job.created_at,
        dt=job.dt,
        exported_at=job.exported_at,
        finished_at=job.finished_at,
        users=job.users,
        files=job.files,
        error=job.error,
    ).save()


def load_job(account_id: str, job_id: str) -> Job | None:
    try:
        item = ExportJobItem.get(_job_pk(account_id, job_id), consistent_read=True)
    except ExportJobItem.DoesNotExist:
        return None
    return Job(
        id=job_id,
        account_id=account_id,
        status=item.status,
        created_at=int(item.created_at),
        dt=item.dt,
        exported_at=int(item.exported_at),
        finished_at=None if item.finished_at is None else int(item.finished_at),
        users=int(item.users or 0),
        files=int(item.files or 0),
        error=item.error,
    )


# ------------------------------------------------------------------ leases
def _lease_pk(account_id: str) -> str:
    return f"export#{account_id}#running"


def take_lease(account_id: str, job_id: str, now_ms: int, until_ms: int) -> str | None:
    """Hold the account's export lease for `job_id` (taken when free, expired, or
    already this job's): None when held, else the id of the job that holds it."""
    lease = ExportLeaseItem(_lease_pk(account_id), job=job_id, until=until_ms)
    while True:
        try:
            lease.save(
                ExportLeaseItem.pk.does_not_exist()
                | (ExportLeaseItem.until < now_ms)
                | (ExportLeaseItem.job == job_id)
            )
            return None
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
        try:
            held = ExportLeaseItem.get(lease.pk, consistent_read=True)
        except ExportLeaseItem.DoesNotExist:
            continue  # gone between the two calls: the account is free now
        if int(held.until) >= now_ms:
            return str(held.job)
        # Released (or lapsed) between the two calls: the account is free now.


def release_lease(account_id: str, job_id: str) -> None:
    """Free the account for its next export, if this job still holds it. A put of
    a lapsed lease, not a delete: ExportFunction may not delete AccountsTable items."""
    try:
        ExportLeaseItem(_lease_pk(account_id), job=job_id, until=0).save(
            ExportLeaseItem.job == job_id
        )
    except PutError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise


# ------------------------------------------------------------- next slice
def send_slice(message: dict[str, Any]) -> None:
    """Run a job's (next) slice in a new invocation of ExportFunction, asynchronously.

    Lambda retries a failed run twice, then records it in
    ExportsDeadLetterQueue; a queue trigger instead would poll while idle.
    """
    aws.client("lambda").invoke(
        FunctionName=os.environ["EXPORT_FUNCTION_NAME"],
        InvocationType="Event",
        Payload=json.dumps({"export_slice": message}, separators=(",", ":")).encode(),
    )


# One botocore client per container for every model (storage/aws.py).
share(ExportJobItem, ExportLeaseItem)
