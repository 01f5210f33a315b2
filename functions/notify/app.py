"""Membership events that time brings: fires due timers on a schedule (services/notify.py).

Re-arming an account's timers after its notify segments change runs in
SegmentIndexFunction, from the segment backfill queue."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.metrics import published
from insights.services import notify

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

    fired = notify.fire_due(clock.now_ms(), time_left)
    if fired.changes:
        metrics.add_metric(name="MembershipChanges", unit=MetricUnit.Count, value=fired.changes)
    logger.info("timers fired", extra={"timers": fired.timers, "changes": fired.changes})
    return {"timers": fired.timers, "changes": fired.changes}
