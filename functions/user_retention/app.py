"""When TTL removes an expired profile, delete the rest of that user's items."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.services.retention import cascade_expired_profile

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def cascade(record: DynamoDBRecord) -> None:
    keys = record.raw_event["dynamodb"]["Keys"]
    cascade_expired_profile(keys["pk"]["S"])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=cascade, processor=processor, context=context
    )
