"""Segment index entries: kept in step from UsersTable stream records of profile items,
and backfilled from SQS messages when a segment starts needing a new index.

The same records carry membership events of `notify` segments (services/notify.py):
a DynamoDB stream serves two readers per shard without throttling, and
UserRetentionFunction is the other one."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.batch import Record, process_partial_response, sqs_message_id, stream_sequence_number
from insights.metrics import published
from insights.services import notify
from insights.services.console import aggregates as console_aggregates
from insights.services.segments import index as segment_index
from insights.storage.core import queues

logger = Logger()
metrics = Metrics()
# Time kept back for writing the checkpoint and queueing the next slice.
RESERVE_MS = 30_000


def index_record(record: Record) -> None:
    writes = segment_index.apply_record(record)
    if writes:
        metrics.add_metric(name="SegmentIndexWrites", unit=MetricUnit.Count, value=writes)
    # After the entries: a failure here retries the record, whose entries are
    # then written again unchanged and whose events keep their ids.
    changes = notify.apply_record(record)
    if changes:
        metrics.add_metric(name="MembershipChanges", unit=MetricUnit.Count, value=changes)


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    segment_index.new_invocation()
    notify.new_invocation()
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":

        def backfill(record: Record) -> None:
            message = json.loads(record["body"])

            def time_left() -> bool:
                return context.get_remaining_time_in_millis() > RESERVE_MS

            if message.get("kind") == queues.NOTIFY_REARM:
                # An account's notify segments changed: its users' timers follow.
                rearmed = notify.rearm(message, time_left)
                if rearmed is not None:
                    queues.send_notify_rearm(rearmed)
                return
            more = segment_index.backfill(message, time_left)
            if more is not None:
                queues.send_backfill(more)

        return process_partial_response(event, backfill, sqs_message_id, logger)
    result = process_partial_response(event, index_record, stream_sequence_number, logger)
    # The console's aggregates, once per batch, from the records before the
    # first failed one (Lambda redelivers that one and every later one).
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    done = []
    for record in records:
        if stream_sequence_number(record) in failed:
            break
        done.append(record)
    # No metric of its own: AggregatesTable's consumed write units (free) say it.
    console_aggregates.apply_records(done, clock.now_ms())
    return result
