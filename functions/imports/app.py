"""File imports: S3 ObjectCreated notifications register a job; SQS messages run its slices."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.batch import process_slices
from insights.metrics import published
from insights.services.imports.jobs import Budget, ObjectEvent, register
from insights.services.imports.slices import give_up, run_message

logger = Logger()
metrics = Metrics()


def max_receives() -> int:
    """The queue's maxReceiveCount: on the last delivery a failing slice fails its job."""
    return int(os.environ.get("IMPORT_MAX_RECEIVES", "5"))


def _notifications(event: dict[str, Any]) -> None:
    for record in event.get("Records") or []:
        if record.get("eventSource") != "aws:s3":
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        job = register(ObjectEvent.from_record(record))
        if job is not None:
            logger.info(
                "import registered", extra={"import_id": job.import_id, "status": job.status}
            )


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        budget = Budget.from_context(context)
        return process_slices(
            event,
            lambda message: run_message(message, budget),
            give_up,
            max_receives=max_receives(),
            logger=logger,
            what="import",
        )
    _notifications(event)  # S3 (a test event without Records is ignored)
    return {}
