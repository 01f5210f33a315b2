"""Maintains segment index entries from UsersTable stream records of profile items."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.batch import Record, process_partial_response, stream_sequence_number
from insights.services.segment_index import apply_record

logger = Logger()
metrics = Metrics()


def index_record(record: Record) -> None:
    writes = apply_record(record)
    if writes:
        metrics.add_metric(name="SegmentIndexWrites", unit=MetricUnit.Count, value=writes)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event, index_record, stream_sequence_number, logger)
