"""Membership events that time brings: fires due timers on a schedule, and re-arms an
account's users from NotifyQueue when its notify segments change (services/notify.py)."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.batch import Record, process_partial_response, sqs_message_id
from insights.metrics import published
from insights.services import notify
from insights.storage.core import queues

logger = Logger()
metrics = Metrics()
# Time kept back to queue the next slice or end the run cleanly.
RESERVE_MS = 10_000


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    notify.new_invocation()

    def time_left() -> bool:
        return context.get_remaining_time_in_millis() > RESERVE_MS

    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":

        def rearm(record: Record) -> None:
            more = notify.rearm(json.loads(record["body"]), time_left)
            if more is not None:
                queues.send_notify_rearm(more)

        return process_partial_response(event, rearm, sqs_message_id, logger)
    fired = notify.fire_due(clock.now_ms(), time_left)
    if fired.changes:
        metrics.add_metric(name="MembershipChanges", unit=MetricUnit.Count, value=fired.changes)
    logger.info("timers fired", extra={"timers": fired.timers, "changes": fired.changes})
    return {"timers": fired.timers, "changes": fired.changes}
