"""SessionCloseFunction: the two background paths that close sessions.

- On the SweepSchedule (every 5 minutes by default): close open sessions
  whose inactivity deadline has passed. TTL deletes expired items minutes to
  days late, so the sweep is what makes attributes update promptly.
- On SessionsTable's stream (deletions only): apply each deleted window, from
  the record's old image, whether the sweep or TTL deleted it. The sweep only
  deletes a due window; applying it happens here. An erasure marks the window
  before deleting it, and a marked window is never applied.

One function, not two, because a sweep's deletions reach the stream about a
second after it: the container the sweep ran in, kept warm by the schedule,
takes the batch, so the stream path seldom starts a container of its own
(each start bills the runtime and the import: benchmarks/RESULTS.md, part 1).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.batch import Record, process_partial_response, stream_sequence_number
from insights.metrics import published
from insights.services.core.closing import close_deleted
from insights.services.core.sweep import sweep
from insights.storage.core.records import session_from_stream_image

logger = Logger()
metrics = Metrics()
# What the sweep keeps back of its timeout to finish the closes in flight
# and report.
SWEEP_RESERVE_MS = 5_000


def close_record(record: Record) -> None:
    image = record["dynamodb"].get("OldImage")
    if not image:
        logger.warning("deletion without an old image; check StreamViewType")
        return
    if "erasing" in image:
        return  # DELETE /v1/users: the user is gone, nothing to apply
    identity = record.get("userIdentity") or {}
    path = "ttl" if identity.get("principalId") == "dynamodb.amazonaws.com" else "sweep"
    close_deleted(session_from_stream_image(image), clock.now_ms(), path=path)


def run_sweep(context: LambdaContext | None) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() if context else 60_000
    summary = sweep(clock.now_ms(), budget_ms=max(remaining - SWEEP_RESERVE_MS, 1_000))
    logger.info("sweep done", extra=summary)
    return summary


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    # A stream batch always carries Records; the scheduler's event never does.
    if "Records" in event:
        return process_partial_response(event, close_record, stream_sequence_number, logger)
    return run_sweep(context)
