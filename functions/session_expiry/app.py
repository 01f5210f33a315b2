"""Closes sessions that DynamoDB TTL deleted (the stream filter passes TTL deletions only)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.batch import Record, process_partial_response, stream_sequence_number
from insights.services.closing import close_deleted
from insights.storage.records import session_from_stream_image

logger = Logger()
metrics = Metrics()


def close_record(record: Record) -> None:
    image = record["dynamodb"].get("OldImage")
    if not image:
        logger.warning("TTL deletion without an old image; check StreamViewType")
        return
    close_deleted(session_from_stream_image(image), clock.now_ms())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event, close_record, stream_sequence_number, logger)
