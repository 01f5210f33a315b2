"""The imports bucket and the continuation queue (S3 and SQS through boto3).

boto3 is imported by the first call that makes a client: over the botocore
pynamodb already loads it costs about a tenth of ``import boto3`` again, and
the Imports API needs it only to presign an upload (benchmarks, part 2).
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from insights.domain.imports.files import FileError

PROCESSED_TAG = ("insights-import", "processed")


def bucket_name() -> str:
    return os.environ.get("IMPORTS_BUCKET", "insights-imports-local")


@cache
def _s3() -> Any:
    from insights.storage import aws

    # SigV4 for presigned POSTs and GETs: SigV2 is refused by newer regions.
    return aws.client("s3", signature_version="s3v4", retries={"mode": "standard"})


@cache
def _sqs() -> Any:
    from insights.storage import aws

    return aws.client("sqs")


def open_object(bucket: str, key: str, etag: str, *, start: int = 0) -> Any:
    """A streaming body of the object version `etag`, from byte `start`."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": key, "IfMatch": f'"{etag}"'}
    if start:
        args["Range"] = f"bytes={start}-"
    try:
        return _s3().get_object(**args)["Body"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("PreconditionFailed", "412"):
            raise FileError("the file was replaced while it was being imported") from None
        if code in ("NoSuchKey", "404"):
            raise FileError("the file was deleted before it could be imported") from None
        raise


def read_small(bucket: str, key: str, limit: int) -> bytes | None:
    """A small object whole (mapping.json), None if absent; FileError if too big."""
    try:
        response = _s3().get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    if int(response.get("ContentLength") or 0) > limit:
        raise FileError(f"{key.rsplit('/', 1)[-1]} is larger than {limit} bytes")
    return bytes(response["Body"].read())


def put_text(bucket: str, key: str, text: str, content_type: str = "text/csv") -> None:
    _s3().put_object(
        Bucket=bucket, Key=key, Body=text.encode(), ContentType=f"{content_type}; charset=utf-8"
    )


def read_text(bucket: str, key: str) -> str:
    return bytes(_s3().get_object(Bucket=bucket, Key=key)["Body"].read()).decode()


def list_keys(bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def delete_keys(bucket: str, keys: list[str]) -> None:
    # One DeleteObject per key: a job has few report parts, and the
    # multi-object DeleteObjects needs a grant on the whole bucket.
    for key in keys:
        _s3().delete_object(Bucket=bucket, Key=key)


def tag_processed(bucket: str, key: str) -> None:
    """The lifecycle rule expires objects with this tag after the retention period."""
    try:
        _s3().put_object_tagging(
            Bucket=bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": PROCESSED_TAG[0], "Value": PROCESSED_TAG[1]}]},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise


def presigned_post(bucket: str, key: str, *, max_bytes: int, expires: int) -> dict[str, Any]:
    """A form upload that S3 accepts for exactly this key and at most max_bytes."""
    return dict(
        _s3().generate_presigned_post(
            Bucket=bucket,
            Key=key,
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=expires,
        )
    )


def presigned_get(bucket: str, key: str, *, expires: int) -> str:
    return str(
        _s3().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
        )
    )


def send_continuation(message: dict[str, Any], *, delay_seconds: int = 0) -> None:
    """Queue the next slice, visible after `delay_seconds` (SQS allows up to 900)."""
    _sqs().send_message(
        QueueUrl=os.environ["IMPORTS_QUEUE_URL"],
        MessageBody=json.dumps(message, separators=(",", ":")),
        DelaySeconds=delay_seconds,
    )
