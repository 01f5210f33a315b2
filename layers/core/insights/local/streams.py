"""DynamoDB Streams and TTL, locally: records delivered to stream functions as Lambda does.

Filter criteria, batch sizes, partial-failure reports, retries and on-failure
queues come from the functions' DynamoDB events in template.yaml. TTL is
simulated: items past their TTL are deleted, and their REMOVE records carry
the TTL service identity that moto leaves out.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.events.models import EventPattern

from insights import clock
from insights.local import motopatch
from insights.local.aws import REGION

if TYPE_CHECKING:
    from insights.local.template import Template

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@dataclass
class StreamSubscription:
    function: str
    table: str
    stream_arn: str
    patterns: list[EventPattern]
    batch_size: int
    max_retries: int
    report_failures: bool
    on_failure_queue: str | None
    iterator: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    # The last sequence number read, and the shard object it was read from:
    # to re-open the iterator at the same place if moto replaces the shard.
    last_sequence: int | None = None
    shard: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class StreamDelivery:
    """LocalCloud's stream pollers and TTL process."""

    subscriptions: list[StreamSubscription]
    deployment: Any
    template: Template
    trim_streams: bool
    dynamodb: Any
    streams: Any
    sqs: Any
    _ttl_pending: set[tuple[str, str]]
    _ttl_marked: set[tuple[str, str]]
    _ttl_lock: threading.Lock
    _on_error: Callable[[str], None]
    invoke: Callable[[str, dict[str, Any]], Any]

    def pump_streams(self) -> int:
        """Deliver every stream record written so far; returns records delivered.

        A shard is delivered one batch at a time, in order, as Lambda's poller
        does: a second caller (a `tick` beside the background loop) waits.
        """
        delivered = 0
        for sub in self.subscriptions:
            with sub.lock:
                delivered += self._pump(sub)
        if self.trim_streams:
            self._trim_streams()
        return delivered

    def _trim_streams(self) -> None:
        """Drop stream records every consumer of the table has read (AWS keeps 24 h)."""
        by_table: dict[str, list[StreamSubscription]] = {}
        for sub in self.subscriptions:
            by_table.setdefault(sub.table, []).append(sub)
        for table, subs in by_table.items():
            if all(s.last_sequence is not None and not s.pending for s in subs):
                motopatch.trim_stream(table, min(s.last_sequence or 0 for s in subs) + 1)

    def _fetch(self, sub: StreamSubscription) -> None:
        shard_now = motopatch.backend().tables[sub.table].stream_shard
        if sub.iterator is not None and sub.shard is not shard_now:
            # moto replaced the table's stream shard object: an iterator on the
            # old one would never see another record. Re-open after the last
            # record read (motopatch keeps this from happening on rollbacks;
            # this keeps any other replacement from making a consumer deaf).
            sub.iterator = None
        if sub.iterator is None:
            shard = self.streams.describe_stream(StreamArn=sub.stream_arn)["StreamDescription"][
                "Shards"
            ][0]
            position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
            if sub.last_sequence is not None:
                position = {
                    "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                    "SequenceNumber": str(sub.last_sequence),
                }
            sub.iterator = self.streams.get_shard_iterator(
                StreamArn=sub.stream_arn, ShardId=shard["ShardId"], **position
            )["ShardIterator"]
            sub.shard = shard_now
        while True:
            page = self.streams.get_records(ShardIterator=sub.iterator, Limit=1000)
            sub.iterator = page["NextShardIterator"]
            if not page["Records"]:
                return
            sub.last_sequence = int(page["Records"][-1]["dynamodb"]["SequenceNumber"])
            for record in page["Records"]:
                record = self._as_lambda_record(sub, record)
                if not sub.patterns or any(p.matches_event(record) for p in sub.patterns):
                    sub.pending.append(record)

    def _as_lambda_record(self, sub: StreamSubscription, record: dict[str, Any]) -> dict[str, Any]:
        record = json.loads(json.dumps(record, default=str))
        # Epoch seconds, as Lambda delivers it, on the stack's clock (moto
        # stamps wall time): records are read as soon as they are written.
        record["dynamodb"]["ApproximateCreationDateTime"] = clock.now_ms() // 1000
        record["eventSourceARN"] = sub.stream_arn
        record["awsRegion"] = REGION
        if record["eventName"] == "REMOVE":
            mark = (sub.table, record["dynamodb"]["SequenceNumber"])
            image = record["dynamodb"].get("OldImage") or record["dynamodb"]["Keys"]
            key = (sub.table, _key_id(image))
            with self._ttl_lock:
                if key in self._ttl_pending:
                    self._ttl_pending.discard(key)
                    self._ttl_marked.add(mark)
            if mark in self._ttl_marked:
                record["userIdentity"] = dict(TTL_IDENTITY)
        return record

    def _pump(self, sub: StreamSubscription) -> int:
        self._fetch(sub)
        delivered = 0
        while sub.pending:
            batch = sub.pending[: sub.batch_size]
            failed_from = self._deliver(sub, batch)
            if failed_from is None:
                del sub.pending[: len(batch)]
                sub.attempts = 0
                delivered += len(batch)
                continue
            delivered += failed_from
            del sub.pending[:failed_from]
            sub.attempts += 1
            if 0 <= sub.max_retries < sub.attempts:
                self._to_failure_queue(sub, sub.pending[: sub.batch_size])
                del sub.pending[: sub.batch_size]
                sub.attempts = 0
            else:
                break  # retried on the next pump, as Lambda retries the shard
        return delivered

    def _deliver(self, sub: StreamSubscription, batch: list[dict[str, Any]]) -> int | None:
        """Invoke; None when all succeeded, else the index of the first failed record."""
        try:
            result = self.invoke(sub.function, {"Records": batch})
        except Exception:
            self._on_error(
                f"{sub.function} failed on a batch of {len(batch)}:\n{traceback.format_exc()}"
            )
            return 0
        failures = (result or {}).get("batchItemFailures") if sub.report_failures else None
        if not failures:
            return None
        failed = {f["itemIdentifier"] for f in failures}
        for index, record in enumerate(batch):
            if record["dynamodb"]["SequenceNumber"] in failed:
                return index
        return 0

    def _to_failure_queue(self, sub: StreamSubscription, batch: list[dict[str, Any]]) -> None:
        if sub.on_failure_queue is None or not batch:
            return
        seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
        message = {
            "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": sub.function},
            "DDBStreamBatchInfo": {
                "streamArn": sub.stream_arn,
                "startSequenceNumber": seqs[0],
                "endSequenceNumber": seqs[-1],
                "batchSize": len(batch),
            },
        }
        self.sqs.send_message(QueueUrl=sub.on_failure_queue, MessageBody=json.dumps(message))

    def expire_ttl(self) -> int:
        """Delete every item whose TTL has passed, as DynamoDB's TTL process does."""
        now_s = clock.now_ms() // 1000
        deleted = 0
        for table, attribute in self.deployment.ttl_attributes.items():
            keys = self.deployment.key_schemas[table]
            paginator = self.dynamodb.get_paginator("scan")
            for page in paginator.paginate(
                TableName=table,
                FilterExpression="#t <= :now",
                ExpressionAttributeNames={"#t": attribute},
                ExpressionAttributeValues={":now": {"N": str(now_s)}},
            ):
                for item in page["Items"]:
                    key = {k: item[k] for k in keys}
                    try:
                        self.dynamodb.delete_item(
                            TableName=table,
                            Key=key,
                            ConditionExpression="#t <= :now",
                            ExpressionAttributeNames={"#t": attribute},
                            ExpressionAttributeValues={":now": {"N": str(now_s)}},
                        )
                    except self.dynamodb.exceptions.ConditionalCheckFailedException:
                        continue
                    # Known by its whole old image: the same key may be
                    # deleted by other paths earlier in the stream.
                    with self._ttl_lock:
                        self._ttl_pending.add(
                            (table, _key_id(item if self._has_old_image(table) else key))
                        )
                    deleted += 1
        return deleted

    def _has_old_image(self, table: str) -> bool:
        spec = self.template.resources[table]["Properties"].get("StreamSpecification", {})
        return spec.get("StreamViewType") in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")


def _key_id(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)
