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

import json
from collections.abc import Callable
from typing import Any, Protocol

Record = dict[str, Any]


class Warns(Protocol):
    """Powertools' Logger or a logging.Logger."""

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...

    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


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


def process_slices(
    event: dict[str, Any],
    run: Callable[[dict[str, Any]], str],
    give_up: Callable[[dict[str, Any], int], bool],
    *,
    max_receives: int,
    logger: Warns,
    what: str,
) -> dict[str, list[dict[str, str]]]:
    """SQS messages that each run one checkpointed slice of a job (an import, a sync).

    A failing slice is reported for retry, so SQS delivers it again from the
    same checkpoint; on its last delivery (the queue's maxReceiveCount) the
    job is given up, failed with a reason, instead of being left running
    while its message goes to the dead-letter queue.
    """

    def handle(record: Record) -> None:
        message = json.loads(record["body"])
        try:
            outcome = run(message)
        except Exception:
            attempts = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
            if attempts < max_receives:
                raise
            logger.exception(f"{what} slice failed on its last attempt")
            give_up(message, attempts)
            return
        logger.info(f"{what} slice", extra={"outcome": outcome})

    return process_partial_response(event, handle, sqs_message_id, logger)
