"""Closes the session windows deleted from SessionsTable: by TTL, or by the sweeper.

The sweeper only deletes a due window; applying it happens here, from the
stream's old image, as for TTL. An erasure marks the window before deleting
it, and a marked window is never applied.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.batch import Record, process_partial_response, stream_sequence_number
from insights.metrics import published
from insights.services.core.closing import close_deleted
from insights.storage.core.records import session_from_stream_image

logger = Logger()
metrics = Metrics()


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


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event, close_record, stream_sequence_number, logger)
