"""Messages a function queues for later work (SQS through boto3, imported on first use)."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any


@cache
def _sqs() -> Any:
    from insights.storage import aws

    return aws.client("sqs")


def send_backfill(message: dict[str, Any]) -> None:
    """A slice of a segment index backfill (services.segment_index.backfill)."""
    _sqs().send_message(
        QueueUrl=os.environ["SEGMENT_BACKFILL_QUEUE_URL"],
        MessageBody=json.dumps(message, separators=(",", ":")),
    )


NOTIFY_REARM = "notify_rearm"


def send_notify_rearm(message: dict[str, Any]) -> None:
    """An account's notify segments changed: re-arm its users' timers (services/notify.py).

    On the backfill queue, whose consumer (SegmentIndexFunction) also runs
    membership events: a queue of its own would poll while idle ($0.26 a month).
    """
    send_backfill({**message, "kind": NOTIFY_REARM})
