"""When TTL removes an expired profile, delete the rest of that user's items."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.batch import Record, process_partial_response, stream_sequence_number
from insights.metrics import published
from insights.services.core.retention import cascade_expired_profile

logger = Logger()
metrics = Metrics()


def cascade(record: Record) -> None:
    keys = record["dynamodb"]["Keys"]
    cascade_expired_profile(keys["pk"]["S"])


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event, cascade, stream_sequence_number, logger)
