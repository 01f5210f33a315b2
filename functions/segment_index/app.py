"""Maintains segment index entries from UsersTable stream records of profile items."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.services.segment_index import apply_record

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def index_record(record: DynamoDBRecord) -> None:
    writes = apply_record(record.raw_event)
    if writes:
        metrics.add_metric(name="SegmentIndexWrites", unit=MetricUnit.Count, value=writes)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=index_record, processor=processor, context=context
    )
