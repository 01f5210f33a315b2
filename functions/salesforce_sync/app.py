"""Salesforce syncs: the schedule starts due ones, SQS messages run their slices."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.batch import process_slices
from insights.metrics import published
from insights.services.imports.jobs import Budget
from insights.services.salesforce.sync import give_up, run_message, tick

logger = Logger()
metrics = Metrics()


def max_receives() -> int:
    """The queue's maxReceiveCount: a slice failing on its last delivery fails the sync."""
    return int(os.environ.get("SALESFORCE_MAX_RECEIVES", "5"))


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    if not records:  # the schedule
        summary = tick(clock.now_ms())
        logger.info("salesforce tick", extra=summary)
        return summary
    budget = Budget.from_context(context)
    return process_slices(
        event,
        lambda message: run_message(message, budget),
        give_up,
        max_receives=max_receives(),
        logger=logger,
        what="salesforce",
    )
