"""Meter a LocalCloud run: every DynamoDB request with its request units, and
every Lambda invocation with its duration, attributed to the function that made it.

DynamoDB calls are seen at botocore's ``BaseClient._make_api_call`` (pynamodb
and boto3 both go through it). Old and new item images come from moto's
in-memory backend, read just before and just after each write, so write units
use the larger of the two sizes as AWS does. Calls made outside a function
invocation are the harness (table creation, the simulated TTL process, stream
polling, account setup) and are counted apart, unbilled: AWS does not bill TTL
deletions or the stream reads of Lambda triggers.

An invocation's CPU is the process CPU time (time.process_time) it took, less
what is not the function's on AWS: moto answering (the server's side of each
call, timed inside moto's botocore stubber), the local stack's IAM check of
each call, and this meter's own bookkeeping (item images, unfiltered reads,
accounting). What stays is what the function's container spends: the
handler, pynamodb and botocore building, signing and parsing each request.
Process CPU, not wall time, so a busy shared machine does not inflate it.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
import botocore.exceptions

from benchmarks.capacity import gsi_writes, item_size, projected, read_units, write_units
from insights.local.aws import ACCOUNT_ID, REGION
from insights.local.cloud import LocalCloud

WRITE_OPS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
HARNESS = "(harness)"
# What one AWS call adds to a Lambda's billed duration on AWS, where moto's
# in-process answer is a network round trip. Modeled, not measured (there is
# no AWS here): DynamoDB's documented single-digit milliseconds for one item,
# more for requests of many items; other services (SQS, S3, CloudWatch) a
# typical in-region HTTPS call.
LATENCY_MS = {
    "GetItem": 4.0,
    "PutItem": 5.0,
    "UpdateItem": 5.0,
    "DeleteItem": 5.0,
    "Query": 6.0,
    "Scan": 8.0,
    "BatchGetItem": 8.0,
    "BatchWriteItem": 10.0,
    "TransactWriteItems": 12.0,
    "TransactGetItems": 10.0,
}
OTHER_SERVICE_LATENCY_MS = 15.0


@dataclass
class FunctionUsage:
    invocations: int = 0
    billed_ms: int = 0  # per-invocation wall time, rounded up to 1 ms as Lambda bills
    aws_ms: float = 0.0  # of which inside AWS SDK calls (moto here, the network on AWS)
    latency_total_ms: float = 0.0  # LATENCY_MS of those calls, summed
    # Per invocation: the function's own CPU (see the module's docstring) and the
    # modeled latency of its calls; pricing turns them into AWS's duration.
    cpu_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    durations_ms: list[float] = field(default_factory=list)
    started_ms: list[int] = field(default_factory=list)  # the stack clock at each invocation


@dataclass
class Usage:
    """What one metered run consumed."""

    requests: Counter = field(default_factory=Counter)  # (function, table, operation)
    wru: Counter = field(default_factory=Counter)  # (function, table or table/index)
    rru: Counter = field(default_factory=Counter)  # (function, table or table/index)
    functions: dict[str, FunctionUsage] = field(default_factory=lambda: defaultdict(FunctionUsage))
    other_calls: Counter = field(default_factory=Counter)  # (function, service, operation)
    item_bytes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    wru_by_op: Counter = field(default_factory=Counter)  # (function, table, operation)

    def write_requests(self, function: str) -> int:
        return sum(
            n for (f, _t, op), n in self.requests.items() if f == function and op in WRITE_OPS
        )

    def read_requests(self, function: str) -> int:
        return sum(
            n for (f, _t, op), n in self.requests.items() if f == function and op not in WRITE_OPS
        )


class Meter:
    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.usage = Usage()
        self.current: str | None = None
        self._lock = threading.Lock()
        # Process CPU seconds spent on what AWS would not bill the function for
        # (moto's side of each call, the IAM check, this meter's bookkeeping).
        self.excluded_cpu_s = 0.0
        self._excluding = 0
        self._indexes: dict[str, list[dict[str, Any]]] = {}
        self._keys = cloud.deployment.key_schemas
        for name in cloud.deployment.tables:
            props = cloud.template.resources[name]["Properties"]
            self._indexes[name] = props.get("GlobalSecondaryIndexes", [])
        from moto.dynamodb.models import dynamodb_backends

        self._backend = dynamodb_backends[ACCOUNT_ID][REGION]

    # ------------------------------------------------------------ installing
    @contextmanager
    def installed(self) -> Iterator[Meter]:
        original_call = botocore.client.BaseClient._make_api_call
        original_invoke = self.cloud.invoke
        meter = self

        def metered_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            return meter._call(original_call, client, operation, params)

        def metered_invoke(function: str, event: dict[str, Any]) -> Any:
            return meter._invoke(original_invoke, function, event)

        from moto.core.botocore_stubber import BotocoreStubber

        original_stub = BotocoreStubber.__call__
        original_check = self.cloud.iam.check

        def server_side(stubber: Any, *args: Any, **kwargs: Any) -> Any:
            with meter.excluded():
                return original_stub(stubber, *args, **kwargs)

        def checked(*args: Any, **kwargs: Any) -> Any:
            with meter.excluded():
                return original_check(*args, **kwargs)

        botocore.client.BaseClient._make_api_call = metered_call
        BotocoreStubber.__call__ = server_side  # type: ignore[method-assign]
        self.cloud.iam.check = checked
        self.cloud.invoke = metered_invoke  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = original_call
            BotocoreStubber.__call__ = original_stub  # type: ignore[method-assign]
            self.cloud.iam.check = original_check
            self.cloud.invoke = original_invoke  # type: ignore[method-assign]

    @contextmanager
    def excluded(self) -> Iterator[None]:
        """Time spent here is not the function's (moto, the IAM check, the meter)."""
        self._excluding += 1
        started = time.process_time()
        try:
            yield
        finally:
            self._excluding -= 1
            if not self._excluding:  # nested exclusions count once
                self.excluded_cpu_s += time.process_time() - started

    def _invoke(self, original: Any, function: str, event: dict[str, Any]) -> Any:
        from insights import clock

        previous, self.current = self.current, function
        usage = self.usage.functions[function]
        usage.started_ms.append(clock.now_ms())
        latency_before, excluded_before = usage.latency_total_ms, self.excluded_cpu_s
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            return original(function, event)
        finally:
            cpu_s = time.process_time() - cpu_started - (self.excluded_cpu_s - excluded_before)
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.current = previous
            usage.invocations += 1
            usage.billed_ms += max(1, math.ceil(elapsed_ms))
            usage.durations_ms.append(elapsed_ms)
            usage.cpu_ms.append(max(0.0, cpu_s * 1000))
            usage.latency_ms.append(usage.latency_total_ms - latency_before)

    # ---------------------------------------------------------------- calls
    def _call(self, original: Any, client: Any, operation: str, params: dict[str, Any]) -> Any:
        function = self.current or HARNESS
        service = client.meta.service_model.service_name
        if service != "dynamodb" or function == HARNESS:
            started = time.perf_counter()
            try:
                return original(client, operation, params)
            finally:
                self._count_other(function, service, operation, started)
        with self.excluded():
            before = self._images_before(operation, params)
            evaluated = None
            if operation in ("Query", "Scan") and "FilterExpression" in params:
                # Billed for every item read, not for those the filter keeps: ask moto
                # (unmetered) for the same page without the filter.
                evaluated = original(client, operation, _without_filter(params)).get("Items", [])
        started = time.perf_counter()
        failed = False
        try:
            response = original(client, operation, params)
        except botocore.exceptions.ClientError:
            failed = True
            response = None
            raise
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            with self._lock, self.excluded():
                used = self.usage.functions[function]
                used.aws_ms += elapsed
                used.latency_total_ms += LATENCY_MS.get(operation, OTHER_SERVICE_LATENCY_MS)
                self._account(function, operation, params, response, before, failed, evaluated)
        return response

    def _count_other(self, function: str, service: str, operation: str, started: float) -> None:
        with self._lock:
            self.usage.other_calls[(function, service, operation)] += 1
            if function != HARNESS:
                used = self.usage.functions[function]
                used.aws_ms += (time.perf_counter() - started) * 1000
                used.latency_total_ms += OTHER_SERVICE_LATENCY_MS

    # ----------------------------------------------------------- item images
    def _item(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        names = self._keys[table]
        found = self._backend.get_table(table).get_item(
            DynamoType(key[names[0]]), DynamoType(key[names[1]]) if len(names) > 1 else None
        )
        return found.to_json()["Attributes"] if found is not None else None

    def _key_of(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in self._keys[table]}

    def _writes(
        self, operation: str, params: dict[str, Any]
    ) -> list[tuple[str, dict, dict | None]]:
        """(table, key, new item if a put) of every item a write request touches."""
        if operation == "PutItem":
            table = params["TableName"]
            return [(table, self._key_of(table, params["Item"]), params["Item"])]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"], None)]
        if operation == "BatchWriteItem":
            found = []
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        found.append((table, self._key_of(table, item), item))
                    else:
                        found.append((table, request["DeleteRequest"]["Key"], None))
            return found
        if operation == "TransactWriteItems":
            found = []
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                table = body["TableName"]
                if kind == "Put":
                    found.append((table, self._key_of(table, body["Item"]), body["Item"]))
                else:
                    found.append((table, body["Key"], None))
            return found
        return []

    def _images_before(self, operation: str, params: dict[str, Any]) -> list[dict | None]:
        return [self._item(t, k) for t, k, _ in self._writes(operation, params)]

    # ------------------------------------------------------------- accounting
    def _account(
        self,
        function: str,
        operation: str,
        params: dict[str, Any],
        response: dict[str, Any] | None,
        before: list[dict | None],
        failed: bool,
        evaluated: list[dict[str, Any]] | None = None,
    ) -> None:
        usage = self.usage
        tables = _tables_of(operation, params)
        usage.requests[(function, "+".join(tables) or "-", operation)] += 1
        if operation in WRITE_OPS:
            transactional = operation == "TransactWriteItems"
            for (table, key, put), old in zip(self._writes(operation, params), before, strict=True):
                # A failed condition still costs the write (and writes no index).
                new = (put if put is not None else old) if failed else self._item(table, key)
                old_size, new_size = item_size(old), item_size(new)
                units = write_units(old_size, new_size, transactional=transactional)
                usage.wru[(function, table)] += units
                usage.wru_by_op[(function, table, operation)] += units
                if new is not None:
                    usage.item_bytes[table].append(new_size)
                if failed:
                    continue
                for index in self._indexes.get(table, []):
                    for units in gsi_writes(old, new, index, self._keys[table]):
                        usage.wru[(function, f"{table}/{index['IndexName']}")] += units
        elif operation == "GetItem":
            item = (response or {}).get("Item")
            full = self._item(params["TableName"], params["Key"]) if item else None
            usage.rru[(function, params["TableName"])] += read_units(
                item_size(full), consistent=bool(params.get("ConsistentRead"))
            )
        elif operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                consistent = bool(request.get("ConsistentRead"))
                # Each key is read as a GetItem: rounded up per item, 1 unit at least.
                for key in request["Keys"]:
                    usage.rru[(function, table)] += read_units(
                        item_size(self._item(table, key)), consistent=consistent
                    )
        elif operation in ("Query", "Scan"):
            table = params["TableName"]
            index_name = params.get("IndexName")
            total = 0
            read = evaluated if evaluated is not None else (response or {}).get("Items", [])
            for item in read:
                full = self._item(table, self._key_of(table, item))
                if index_name:
                    (index,) = [i for i in self._indexes[table] if i["IndexName"] == index_name]
                    full = projected(full, index, self._keys[table])
                total += item_size(full)
            where = f"{table}/{index_name}" if index_name else table
            usage.rru[(function, where)] += read_units(
                total, consistent=bool(params.get("ConsistentRead"))
            )
        elif operation == "TransactGetItems":
            for entry in params["TransactItems"]:
                body = entry["Get"]
                usage.rru[(function, body["TableName"])] += read_units(
                    item_size(self._item(body["TableName"], body["Key"])),
                    consistent=True,
                    transactional=True,
                )


def _without_filter(params: dict[str, Any]) -> dict[str, Any]:
    """The same Query or Scan page without FilterExpression and projection."""
    stripped = {
        k: v
        for k, v in params.items()
        if k not in ("FilterExpression", "ProjectionExpression", "Select")
        and not k.startswith("ExpressionAttribute")
    }
    used = set(re.findall(r"[#:][A-Za-z0-9_]+", params.get("KeyConditionExpression", "")))
    names = {k: v for k, v in params.get("ExpressionAttributeNames", {}).items() if k in used}
    values = {k: v for k, v in params.get("ExpressionAttributeValues", {}).items() if k in used}
    if names:
        stripped["ExpressionAttributeNames"] = names
    if values:
        stripped["ExpressionAttributeValues"] = values
    return stripped


def _tables_of(operation: str, params: dict[str, Any]) -> list[str]:
    if "TableName" in params:
        return [params["TableName"]]
    if "RequestItems" in params:
        return sorted(params["RequestItems"])
    if "TransactItems" in params:
        return sorted({next(iter(e.values()))["TableName"] for e in params["TransactItems"]})
    return []
