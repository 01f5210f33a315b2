"""LocalCloud: what AWS would run, built from template.yaml on moto.

It creates the template's tables, queues and buckets, wires every function's
events, and runs schedules. Each AWS service it plays has its own module:
Lambda (lambdas.py), API Gateway and function URLs (gateway.py), DynamoDB
Streams and TTL (streams.py), S3 notifications and SQS event sources
(files.py). Handlers run unchanged; they reach moto through the standard AWS
endpoint settings.

Tests drive it in-process under moto's mock; the local server (server.py)
drives the same class against moto's threaded server.

Invocations run concurrently where AWS would run them concurrently: each
function has its own bound (its ReservedConcurrentExecutions, else
DEFAULT_CONCURRENCY), a stream shard is delivered one batch at a time, and
moto's DynamoDB is made safe for concurrent requests (motopatch.py).
"""

from __future__ import annotations

import os
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

from boto3.dynamodb.types import TypeDeserializer
from moto.events.models import EventPattern

from insights import clock
from insights.local import aws, motopatch
from insights.local.aws import ACCOUNT_ID, BASE_ENV, PSEUDO_PARAMETERS, REGION
from insights.local.events import EventDelivery
from insights.local.files import FileDelivery, S3Subscription, SqsSubscription
from insights.local.gateway import HttpGateway, Route, route_of
from insights.local.iam import PolicyChecker
from insights.local.lambdas import (
    DEFAULT_CONCURRENCY,
    LambdaRuntime,
    install_invocation_logging,
    install_policy_check,
)
from insights.local.streams import StreamDelivery, StreamSubscription
from insights.local.template import CONDITION, FunctionSpec, Template, rate_minutes, resolve

ROOT = Path(__file__).resolve().parents[4]
# Parameters the local stack sets unlike a deployment's defaults: the example
# consumer of membership events exists, so there is a queue to read them from.
LOCAL_PARAMETERS = {"CreateMembershipEventsQueue": "true"}
# Schedules this far apart or more (the daily export) run only when named: a
# tick of the local stack stands for minutes, not days.
LONG_SCHEDULE_MINUTES = 24 * 60


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
    buses: dict[str, str] = field(default_factory=dict)  # logical id -> bus name
    bus_logs: dict[str, str] = field(default_factory=dict)  # bus name -> its log queue url


class LocalCloud(LambdaRuntime, HttpGateway, StreamDelivery, FileDelivery, EventDelivery):
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
        self.function_names: dict[str, str] = {}
        self.async_pending: list[tuple[str, dict[str, Any]]] = []
        self.bus_events: list[dict[str, Any]] = []  # the local bus log (events.py)
        self.bus_dropped = 0
        self._bus_lock = threading.Lock()

    # ------------------------------------------------------------------ setup
    def deploy(self) -> LocalCloud:
        motopatch.install()
        os.environ.update(BASE_ENV)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(key, "local")
        self.dynamodb = aws.client("dynamodb")
        self.streams = aws.client("dynamodbstreams")
        self.sqs = aws.client("sqs")
        # The local cloud's own calls (stream polling, TTL scans) play AWS's
        # part, not a function's: they are exempt from the policy check.
        self.own_clients = [self.dynamodb, self.streams, self.sqs]
        for name, res in self.template.of_type("AWS::DynamoDB::Table").items():
            self._create_table(name, res["Properties"])
        for name in self.template.of_type("AWS::SQS::Queue"):
            self.deployment.queues[name] = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self._configure_queues()
        self._create_buckets()
        self._create_event_buses()
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
        install_policy_check()
        install_invocation_logging()
        self._observe_closes()
        for name in self.functions:
            props = self.template.resources[name].get("Properties", {})
            self.function_names[name] = name
            if props.get("FunctionName"):
                self.function_names[str(resolve(props["FunctionName"], self._lookup))] = name
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

    arn_of = staticmethod(aws.arn_of)

    def _lookup(self, name: str, attribute: str | None) -> Any:
        if attribute == CONDITION:
            return bool(resolve(self.template.body["Conditions"][name], self._lookup))
        params = {**self.template.parameter_defaults(), **LOCAL_PARAMETERS}
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
        if name in self.deployment.buses:
            bus = self.deployment.buses[name]
            return self.bus_arn(bus) if attribute == "Arn" else bus
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
                self.routes.append(route_of(props["Path"], props["Method"], spec.logical_id))
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

    # ------------------------------------------------------------------ HTTP

    # --------------------------------------------------------------- streams

    def settle(self, rounds: int = 20) -> None:
        """Pump until quiet: a delivery may write items that stream again."""
        for _ in range(rounds):
            delivered = self.pump_streams() + self.pump_s3() + self.pump_sqs()
            if not delivered + self.pump_async() + self.pump_events():
                return

    # ------------------------------------------------------------------- TTL

    # ------------------------------------------------------------- schedules
    def run_schedules(self, functions: Collection[str] | None = None) -> dict[str, Any]:
        """Run every schedule once now (or only those of `functions`).

        Daily schedules (the export) run only when their function is named.
        """
        results = {}
        for schedule in self.schedules:
            if functions is not None and schedule.function not in functions:
                continue
            if functions is None and _minutes(schedule.expression) >= LONG_SCHEDULE_MINUTES:
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

    def daily_functions(self) -> list[str]:
        """Functions whose schedule runs once a day or less (run_schedules leaves them out)."""
        return [
            s.function for s in self.schedules if _minutes(s.expression) >= LONG_SCHEDULE_MINUTES
        ]

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


def _minutes(expression: str) -> int:
    """How often a schedule runs; a cron expression counts as daily."""
    return rate_minutes(expression) if expression.startswith("rate(") else LONG_SCHEDULE_MINUTES
