"""LocalCloud: what AWS would run, built from template.yaml on moto.

It creates the template's tables and queues, routes HTTP requests to the
functions by their HttpApi events (API Gateway HTTP API v2 payloads), feeds
DynamoDB stream records to stream functions with their filter criteria,
batch sizes, partial-failure reports and on-failure queues, runs schedules,
and simulates TTL: items past their TTL are deleted and their REMOVE records
carry the TTL service identity that moto leaves out. Handlers run unchanged;
they reach moto through the standard AWS endpoint settings.

Tests drive it in-process under moto's mock; the local server (server.py)
drives the same class against moto's threaded server.

Invocations run concurrently where AWS would run them concurrently: each
function has its own bound (its ReservedConcurrentExecutions, else
DEFAULT_CONCURRENCY), a stream shard is delivered one batch at a time, and
moto's DynamoDB is made safe for concurrent requests (motopatch.py).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextvars
import importlib.util
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid as uuidlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import boto3
from aws_lambda_powertools import Metrics
from boto3.dynamodb.types import TypeDeserializer
from moto.events.models import EventPattern

from insights import clock
from insights.local import motopatch
from insights.local.files import FileDelivery, S3Subscription, SqsSubscription
from insights.local.iam import AccessDenied, PolicyChecker
from insights.local.template import CONDITION, FunctionSpec, Template, resolve

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ROOT = Path(__file__).resolve().parents[4]
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/insights/local"
PSEUDO_PARAMETERS = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackId": STACK_ID,
    "AWS::StackName": "insights",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}

# What every function sees besides the template's own variables.
BASE_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


# Concurrent invocations of one function a function has no reserved concurrency.
# AWS's bound is the account's (1,000); locally the machine is the bound.
DEFAULT_CONCURRENCY = 8

# The function whose invocation is running in this thread. Threads a handler
# starts (the sweeper's parallel scan) are checked as that function too: the
# executor's submit is patched to carry the caller's context (_install_policy_check).
_current: contextvars.ContextVar[tuple[LocalCloud, str] | None] = contextvars.ContextVar(
    "insights_local_invocation", default=None
)
_patched = False


def _install_policy_check() -> None:
    """Check every botocore call made during an invocation against the policies."""
    global _patched
    if _patched:
        return
    import botocore.client
    from botocore.exceptions import ClientError

    original = botocore.client.BaseClient._make_api_call

    def checked(client: Any, operation: str, params: dict[str, Any]) -> Any:
        current = _current.get()
        if current is not None and not any(client is own for own in current[0].own_clients):
            cloud, function = current
            service = client.meta.service_model.service_name
            try:
                cloud.iam.check(function, service, operation, params, cloud.arn_of)
            except AccessDenied as exc:
                raise ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": str(exc)}}, operation
                ) from None
        return original(client, operation, params)

    botocore.client.BaseClient._make_api_call = checked  # type: ignore[method-assign]

    submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit_in_context(pool: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return submit(pool, contextvars.copy_context().run, fn, *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit_in_context  # type: ignore[method-assign]
    _patched = True


class FakeLambdaContext:
    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name = spec.logical_id
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = spec.memory
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.logical_id}"
        )
        self.aws_request_id = str(uuidlib.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.logical_id}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    function: str


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


@dataclass
class Schedule:
    name: str
    function: str
    expression: str


@dataclass
class Deployment:
    tables: dict[str, str] = field(default_factory=dict)  # logical id -> physical name
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> url
    buckets: dict[str, str] = field(default_factory=dict)  # logical id -> bucket name
    ttl_attributes: dict[str, str] = field(default_factory=dict)  # table -> attribute
    key_schemas: dict[str, list[str]] = field(default_factory=dict)


class LocalCloud(FileDelivery):
    def __init__(
        self,
        template_path: Path | None = None,
        *,
        on_error: Callable[[str], None] | None = None,
        trim_streams: bool = False,
    ) -> None:
        self.template = Template.load(template_path or ROOT / "template.yaml")
        self.functions = {spec.logical_id: spec for spec in self.template.functions()}
        self.deployment = Deployment()
        self.routes: list[Route] = []
        self.subscriptions: list[StreamSubscription] = []
        self.schedules: list[Schedule] = []
        self.cors: dict[str, Any] | None = None
        # Function URLs (FunctionUrlConfig): logical id -> its CORS settings.
        self.function_urls: dict[str, dict[str, Any]] = {}
        self._modules: dict[str, ModuleType] = {}
        self._ttl_pending: set[tuple[str, str]] = set()
        self._ttl_marked: set[tuple[str, str]] = set()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._running = threading.local()  # functions this thread is running (nesting)
        self._load_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._ttl_lock = threading.Lock()
        # The server trims read stream records (a long run would grow without
        # bound); tests keep the whole history to inspect it.
        self.trim_streams = trim_streams
        self.closes: dict[str, int] = {}  # sessions closed, by path ("sweep", "ttl")
        self._on_error = on_error or (lambda text: print(text, file=sys.stderr))
        self.invocations: dict[str, int] = {}
        self.s3_subscriptions: list[S3Subscription] = []
        self.sqs_subscriptions: list[SqsSubscription] = []
        self.s3_deliveries: list[dict[str, Any]] = []  # every S3 event delivered, in order
        self._sequencer = 0

    # ------------------------------------------------------------------ setup
    def deploy(self) -> LocalCloud:
        motopatch.install()
        os.environ.update(BASE_ENV)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(key, "local")
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.streams = boto3.client("dynamodbstreams", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        # The local cloud's own calls (stream polling, TTL scans) play AWS's
        # part, not a function's: they are exempt from the policy check.
        self.own_clients = [self.dynamodb, self.streams, self.sqs]
        for name, res in self.template.of_type("AWS::DynamoDB::Table").items():
            self._create_table(name, res["Properties"])
        for name in self.template.of_type("AWS::SQS::Queue"):
            self.deployment.queues[name] = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self._configure_queues()
        self._create_buckets()
        env: dict[str, str] = {}
        for spec in self.functions.values():
            for key, value in spec.environment.items():
                resolved = str(resolve(value, self._lookup))
                if env.get(key, resolved) != resolved:
                    raise ValueError(f"functions disagree on {key}; the local stack shares one env")
                env[key] = resolved
            self._wire_events(spec)
        self._wire_bucket_notifications()
        os.environ.update(env)
        self.iam = PolicyChecker(
            {name: spec.policies for name, spec in self.functions.items()},
            self.arn_of,
            lambda value: resolve(value, self._lookup),
        )
        _install_policy_check()
        self._observe_closes()
        for name in self.functions:
            props = self.template.resources[name].get("Properties", {})
            reserved = resolve(props.get("ReservedConcurrentExecutions"), self._lookup)
            limit = int(reserved) if reserved not in (None, "") else DEFAULT_CONCURRENCY
            self._slots[name] = threading.BoundedSemaphore(max(1, limit))
        apis = self.template.of_type("AWS::Serverless::HttpApi")
        for api in apis.values():
            self.cors = api.get("Properties", {}).get("CorsConfiguration")
        for name in self.functions:
            url = self.template.resources[name].get("Properties", {}).get("FunctionUrlConfig")
            if url is not None:
                self.function_urls[name] = url.get("Cors") or {}
        return self

    @staticmethod
    def arn_of(kind: str, name: str) -> str:
        if kind == "table":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        if kind == "bucket":
            return f"arn:aws:s3:::{name}"
        return f"arn:aws:{kind}:{REGION}:{ACCOUNT_ID}:{name}"

    def _lookup(self, name: str, attribute: str | None) -> Any:
        if attribute == CONDITION:
            return bool(resolve(self.template.body["Conditions"][name], self._lookup))
        params = self.template.parameter_defaults()
        if attribute is None and name in params:
            return params[name]
        if name in self.deployment.tables:
            table = self.deployment.tables[name]
            if attribute is None:
                return table
            if attribute == "Arn":
                return self.arn_of("table", table)
            if attribute == "StreamArn":
                return self.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        if name in self.deployment.queues:
            url = self.deployment.queues[name]
            if attribute == "Arn":
                return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
            return url if attribute is None else name
        if name in self.deployment.buckets:
            bucket = self.deployment.buckets[name]
            return f"arn:aws:s3:::{bucket}" if attribute == "Arn" else bucket
        if name.startswith("AWS::"):
            return PSEUDO_PARAMETERS.get(name, "local")
        return name  # layers, APIs: names are enough locally

    def _create_table(self, name: str, props: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if props.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        existing = self.dynamodb.list_tables()["TableNames"]
        if name not in existing:
            self.dynamodb.create_table(**args)
        self.deployment.tables[name] = name
        self.deployment.key_schemas[name] = [k["AttributeName"] for k in props["KeySchema"]]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            self.dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
            self.deployment.ttl_attributes[name] = ttl["AttributeName"]

    def _wire_events(self, spec: FunctionSpec) -> None:
        for event_name, event in spec.events.items():
            kind, props = event["Type"], event.get("Properties", {})
            if kind == "HttpApi":
                template = props["Path"]
                regex = re.escape(template)
                # {name+} is API Gateway's greedy parameter: the rest of the path.
                regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", regex)
                regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
                self.routes.append(
                    Route(
                        props["Method"].upper(), template, re.compile(f"^{regex}$"), spec.logical_id
                    )
                )
            elif kind == "DynamoDB":
                stream_arn = resolve(props["Stream"], self._lookup)
                table = stream_arn.split(":table/")[1].split("/")[0]
                filters = props.get("FilterCriteria", {}).get("Filters", [])
                destination = props.get("DestinationConfig", {}).get("OnFailure", {})
                queue = None
                if destination:
                    queue_arn = resolve(destination["Destination"], self._lookup)
                    queue = self.deployment.queues[queue_arn.rsplit(":", 1)[1]]
                self.subscriptions.append(
                    StreamSubscription(
                        function=spec.logical_id,
                        table=table,
                        stream_arn=stream_arn,
                        patterns=[EventPattern.load(f["Pattern"]) for f in filters],
                        batch_size=int(props.get("BatchSize", 100)),
                        max_retries=int(props.get("MaximumRetryAttempts", -1)),
                        report_failures="ReportBatchItemFailures"
                        in props.get("FunctionResponseTypes", []),
                        on_failure_queue=queue,
                    )
                )
            elif kind == "S3":
                self._wire_s3(spec, event_name, props)
            elif kind == "SQS":
                self._wire_sqs(spec, props)
            elif kind in ("Schedule", "ScheduleV2"):
                self.schedules.append(
                    Schedule(
                        event_name,
                        spec.logical_id,
                        str(resolve(props["ScheduleExpression"], self._lookup)),
                    )
                )

    # ------------------------------------------------------------- invocation
    @property
    def transactions_cancelled(self) -> int:
        """TransactWriteItems calls cancelled since the process started (moto rolled back)."""
        return motopatch.cancelled

    def _observe_closes(self) -> None:
        """Count sessions closed by each path, for `POST /_local/tick`'s answer.

        Observation only: the closing service runs unchanged; LocalCloud wraps
        its close counter to tally the path of every close that applied.
        """
        from insights.services.core import closing

        original = getattr(closing.count_closed, "__wrapped__", closing.count_closed)
        cloud = self

        # count_closed runs once per close that applied, where it applied: a
        # window the sweeper deletes is applied (and counted) by the stream
        # consumer, under the sweeper's path.
        def observed(closed: list[Any], path: str) -> None:
            original(closed, path)
            if closed and path in ("ttl", "sweep"):
                with cloud._count_lock:
                    cloud.closes[path] = cloud.closes.get(path, 0) + len(closed)

        observed.__wrapped__ = original  # type: ignore[attr-defined]
        closing.count_closed = observed  # type: ignore[assignment]

    def handler(self, function: str) -> Callable[[dict, Any], Any]:
        with self._load_lock:  # concurrent first invocations import the module once
            return self._load(function)

    def _load(self, function: str) -> Callable[[dict, Any], Any]:
        module = self._modules.get(function)
        if module is None:
            spec = self.functions[function]
            module_file, _, attr = spec.handler.rpartition(".")
            path = spec.code_dir / f"{module_file}.py"
            loader = importlib.util.spec_from_file_location(f"insights_fn_{function}", path)
            assert loader is not None and loader.loader is not None
            module = importlib.util.module_from_spec(loader)
            sys.modules[loader.name] = module
            loader.loader.exec_module(module)
            self._modules[function] = module
        _, _, attr = self.functions[function].handler.rpartition(".")
        return getattr(module, attr)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run one event, waiting for a free slot of the function's concurrency.

        AWS would throttle a synchronous call over the reserved concurrency
        (and retry an asynchronous one); locally the call waits its turn. A
        nested invoke of a function this thread already runs (a test calling
        in) takes no second slot.
        """
        handler = self.handler(function)
        running: set[str] = self._running.__dict__.setdefault("functions", set())
        nested = function in running
        slot = self._slots.get(function)
        if slot is not None and not nested:
            slot.acquire()
        running.add(function)
        token = _current.set((self, function))
        try:
            with self._count_lock:
                self.invocations[function] = self.invocations.get(function, 0) + 1
            return handler(event, FakeLambdaContext(self.functions[function]))
        finally:
            _current.reset(token)  # a nested invoke restores the caller
            if not nested:
                running.discard(function)
                if slot is not None:
                    slot.release()
            # Powertools skips the per-invocation flush when metrics are
            # disabled but still prints once 100 values pile up: drop them
            # as the flush would have.
            Metrics().clear_metrics()

    # ------------------------------------------------------------------ HTTP
    def http(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | dict | list | None = None,
        query: dict[str, str] | None = None,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        method, raw_path, params, headers, body = _request(method, path, query, headers, body)
        if method == "OPTIONS" and self.cors is not None:
            return HttpResponse(204, _cors_headers(self.cors, preflight=True), "")
        for route in self.routes:
            match = route.pattern.match(raw_path)
            if match and route.method in (method, "ANY"):
                params_in_path = {k: unquote(v) for k, v in match.groupdict().items()}
                event = self._http_event(
                    f"{route.method} {route.template}",
                    raw_path,
                    params_in_path,
                    method,
                    headers,
                    params,
                    body,
                    source_ip,
                )
                return self._serve_http(route.function, event, self.cors)
        return HttpResponse(
            404, {"content-type": "application/json"}, json.dumps({"message": "Not Found"})
        )

    def function_url(
        self,
        function: str,
        method: str,
        path: str = "/",
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | dict | list | None = None,
        query: dict[str, str] | None = None,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        """A request to a function's URL: every path reaches the function, as on AWS."""
        if function not in self.function_urls:
            raise KeyError(f"{function} has no FunctionUrlConfig in template.yaml")
        cors = self.function_urls[function]
        method, raw_path, params, headers, body = _request(method, path, query, headers, body)
        if method == "OPTIONS" and cors:
            return HttpResponse(204, _cors_headers(cors, preflight=True), "")
        event = self._http_event(
            "$default", raw_path or "/", {}, method, headers, params, body, source_ip
        )
        return self._serve_http(function, event, cors)

    def _serve_http(
        self, function: str, event: dict[str, Any], cors: dict[str, Any] | None
    ) -> HttpResponse:
        try:
            result = self.invoke(function, event)
        except Exception:
            self._on_error(
                f"{function} failed on {event['requestContext']['http']['method']} "
                f"{event['rawPath']}:\n{traceback.format_exc()}"
            )
            return HttpResponse(
                500,
                {"content-type": "application/json"},
                json.dumps({"message": "Internal Server Error"}),
            )
        return _http_result(result, cors)

    def _http_event(
        self,
        route_key: str,
        raw_path: str,
        path_params: dict[str, str],
        method: str,
        headers: dict[str, str],
        params: dict[str, str],
        body: bytes | str | None,
        source_ip: str,
    ) -> dict[str, Any]:
        encoded = False
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                body, encoded = base64.b64encode(body).decode(), True
        now = time.time()
        return {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": raw_path,
            "rawQueryString": urlencode(params),
            "headers": headers,
            "queryStringParameters": params or None,
            "pathParameters": path_params or None,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": "local",
                "domainName": "localhost",
                "domainPrefix": "localhost",
                "http": {
                    "method": method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuidlib.uuid4()),
                "routeKey": route_key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "body": body,
            "isBase64Encoded": encoded,
        }

    # --------------------------------------------------------------- streams
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

    def settle(self, rounds: int = 20) -> None:
        """Pump until quiet: a delivery may write items that stream again."""
        for _ in range(rounds):
            if not self.pump_streams() + self.pump_s3() + self.pump_sqs():
                return

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

    # ------------------------------------------------------------------- TTL
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

    # ------------------------------------------------------------- schedules
    def run_schedules(self, functions: Collection[str] | None = None) -> dict[str, Any]:
        """Run every schedule once now (or only those of `functions`)."""
        results = {}
        for schedule in self.schedules:
            if functions is not None and schedule.function not in functions:
                continue
            event = {
                "version": "0",
                "id": str(uuidlib.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.scheduler",
                "account": ACCOUNT_ID,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now_ms() / 1000)),
                "region": REGION,
                "resources": [],
                "detail": {},
            }
            try:
                results[schedule.name] = self.invoke(schedule.function, event)
            except Exception:
                self._on_error(
                    f"{schedule.function} failed on schedule {schedule.name}:\n"
                    + traceback.format_exc()
                )
        return results

    def drop_s3_notifications(self) -> None:
        """Discard S3 notifications not delivered yet (files restored from a snapshot)."""
        for sub in self.s3_subscriptions:
            self._drain(sub.queue_url)

    # ------------------------------------------------------------- inspection
    def items(self, table: str) -> list[dict[str, Any]]:
        deserializer = TypeDeserializer()
        found = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                found.append({k: deserializer.deserialize(v) for k, v in item.items()})
        return found


def _key_id(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)


def _request(
    method: str,
    path: str,
    query: dict[str, str] | None,
    headers: dict[str, str] | None,
    body: bytes | str | dict | list | None,
) -> tuple[str, str, dict[str, str], dict[str, str], bytes | str | None]:
    """A request as API Gateway and function URLs pass it on: upper-case method,
    path and query apart, lower-case header names, a JSON body serialized."""
    raw_path, _, raw_query = path.partition("?")
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    params.update(query or {})
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if isinstance(body, dict | list):
        body = json.dumps(body)
        lowered.setdefault("content-type", "application/json")
    return method.upper(), raw_path, params, lowered, body


def _http_result(result: Any, cors: dict[str, Any] | None) -> HttpResponse:
    if not isinstance(result, dict) or "statusCode" not in result:
        return HttpResponse(200, {"content-type": "application/json"}, json.dumps(result))
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = ", ".join(map(str, values))
    headers.update(_cors_headers(cors, preflight=False))
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return HttpResponse(int(result["statusCode"]), headers, body)


def _cors_headers(cors: dict[str, Any] | None, *, preflight: bool) -> dict[str, str]:
    if not cors:
        return {}
    headers = {"access-control-allow-origin": ",".join(cors.get("AllowOrigins", ["*"]))}
    if preflight:
        headers["access-control-allow-methods"] = ",".join(cors.get("AllowMethods", []))
        headers["access-control-allow-headers"] = ",".join(cors.get("AllowHeaders", []))
        headers["access-control-max-age"] = str(cors.get("MaxAge", 0))
    return headers
