"""Messages a function queues for later work (SQS through boto3, imported on first use)."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any


@cache
def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def send_backfill(message: dict[str, Any]) -> None:
    """A slice of a segment index backfill (services.segment_index.backfill)."""
    _sqs().send_message(
        QueueUrl=os.environ["SEGMENT_BACKFILL_QUEUE_URL"],
        MessageBody=json.dumps(message, separators=(",", ":")),
    )


def send_notify_rearm(message: dict[str, Any]) -> None:
    """An account's notify segments changed: re-arm its users' timers (services/notify.py)."""
    url = os.environ.get("NOTIFY_QUEUE_URL")
    if url:  # a stack without membership events has no queue
        _sqs().send_message(QueueUrl=url, MessageBody=json.dumps(message, separators=(",", ":")))
