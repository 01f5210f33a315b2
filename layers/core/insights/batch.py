"""Partial batch responses for the SQS and DynamoDB Streams handlers.

Lambda retries only the records a handler reports in ``batchItemFailures``
(``ReportBatchItemFailures`` on the event source mappings). This is what
Powertools' ``BatchProcessor`` with ``process_partial_response`` does for
these two sources, as plain functions over the event's dicts: importing that
utility loads asyncio and every Powertools event data class, about 0.15x
``import boto3`` of CPU on each cold start, which put SegmentIndexFunction
over the 1.5x goal (benchmarks, part 2). The semantics are Powertools':
every record is tried, failed ones are reported by their id, and when all of
them fail the invocation fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Record = dict[str, Any]


class Warns(Protocol):
    """Powertools' Logger or a logging.Logger."""

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


class BatchFailed(Exception):
    """Every record of the batch failed: the whole invocation is retried."""


def sqs_message_id(record: Record) -> str:
    return str(record["messageId"])


def stream_sequence_number(record: Record) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def process_partial_response(
    event: dict[str, Any],
    handle: Callable[[Record], object],
    identify: Callable[[Record], str],
    logger: Warns | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Run ``handle`` on each record; the failed ones' ids as Lambda expects them."""
    records = event.get("Records")
    if not records or not isinstance(records, list):
        raise ValueError("not a batch event: expected a non-empty 'Records' list")
    failures: list[dict[str, str]] = []
    first: Exception | None = None
    for record in records:
        try:
            handle(record)
        except Exception as exc:
            first = first or exc
            failures.append({"itemIdentifier": identify(record)})
            if logger is not None:
                logger.warning("record failed; reported for retry", exc_info=True)
    if failures and len(failures) == len(records):
        raise BatchFailed(f"all {len(records)} records of the batch failed") from first
    return {"batchItemFailures": failures}
