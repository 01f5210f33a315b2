"""Every 5 minutes (SweepSchedule): close open sessions whose deadline has passed.

TTL deletes expired items minutes to days late, so the sweeper is what makes
attributes update promptly; the TTL stream path is the safety net.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.metrics import published
from insights.services.core.sweep import sweep

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    remaining = context.get_remaining_time_in_millis() if context else 60_000
    summary = sweep(clock.now_ms(), budget_ms=max(remaining - 5_000, 1_000))
    logger.info("sweep done", extra=summary)
    return summary
