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
