"""What a real bill adds to DynamoDB and Lambda: logs, INIT, custom metrics, alarms (issue 18).

Measured during a cost replay, not assumed:

- **Logs**: the bytes the handlers write, counted as they are written (the
  Powertools logger at the template's default level, INFO, and the EMF
  lines the metrics flush prints), plus the Lambda platform's START, END and
  REPORT lines of each invocation (PLATFORM_LOG_BYTES, their size on AWS),
  priced at CloudWatch Logs ingestion.
- **Custom metrics**: every (namespace, metric, dimensions) an EMF line
  publishes, and the simulated hours in which it was published. CloudWatch
  prorates a custom metric by the hour: one published in h of a month's 730
  hours costs h/730 of the monthly price.
- **Cold starts** (issue 26): which invocations start a new container comes
  from each function's invocation timeline (``cold_flags``): a container
  serves one invocation at a time, stays warm IDLE_MINUTES after its last
  one and is then reclaimed (Lambda does not document how long; see there);
  an invocation that finds no warm idle container starts one. Stream and
  schedule consumers run one batch at a time (one shard, one schedule), the
  tracking function as requests overlap. Each cold start bills, since
  August 2025 as duration: the runtime's start (first_call.RUNTIME_START_MS),
  the handler's import (INIT) and the extra CPU of the container's first
  invocation (clients, parsers and caches built lazily), both measured per
  function in fresh interpreters (benchmarks/first_call.py) and slowed by
  the memory's CPU share like any CPU.
- **Duration as AWS bills it**: the handler's time outside AWS calls (its
  CPU on this machine) slowed by the CPU share its memory buys (one vCPU at
  1,769 MB, proportionally less below), plus a modeled round trip for each
  AWS call (meter.LATENCY_MS) instead of moto's in-process answer, rounded
  up to 1 ms per invocation.
- **Fixed per month**: alarms and dashboards declared in template.yaml (only with
  their parameters set), and the idle long polls of every SQS queue trigger.
"""

from __future__ import annotations

import io
import json
import logging
import math
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

FULL_VCPU_MB = 1769  # Lambda's memory size with one full vCPU
PLATFORM_LOG_BYTES = 360  # START + END + REPORT lines of one invocation, ARM64, as AWS prints them
# How long an idle container stays warm. AWS does not say; published
# observations range from about 5 to 15 minutes and more, and a 5-minute
# schedule is commonly kept warm by its own runs, so it must be more than 5.
# 10 is a middle estimate; part 1 prints the cold share it gives per function.
IDLE_MINUTES = 10
MONTH_HOURS = 730
HOUR_MS = 3_600_000


@dataclass
class Extras:
    """What one replay wrote to CloudWatch, by function."""

    log_bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # The EMF lines of custom metrics, apart: a stack prints them only when
    # metrics are on (the template turns them off unless someone watches).
    emf_bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # (namespace, metric name, dimensions) -> simulated hours it was published in
    metric_hours: dict[tuple[str, str, str], set[int]] = field(
        default_factory=lambda: defaultdict(set)
    )


class _Sink(io.TextIOBase):
    """A stream that counts what each function writes (and keeps none of it)."""

    def __init__(self, extras: Extras, meter: Any) -> None:
        self.extras = extras
        self.meter = meter

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        function = self.meter.current
        if function is not None:
            if text.startswith('{"_aws"'):
                self.extras.emf_bytes[function] += len(text.encode())
                self._metrics(text)
            else:
                self.extras.log_bytes[function] += len(text.encode())
        return len(text)

    def _metrics(self, line: str) -> None:
        from insights import clock

        record = json.loads(line)
        hour = clock.now_ms() // HOUR_MS
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"] or [[]]:
                values = ",".join(f"{d}={record.get(d)}" for d in dimensions)
                for metric in directive["Metrics"]:
                    key = (directive["Namespace"], metric["Name"], values)
                    self.extras.metric_hours[key].add(hour)


@contextmanager
def counted(meter: Any, level: str = "INFO") -> Iterator[Extras]:
    """Count logs and metrics of every invocation the meter sees, as Lambda would ship them."""
    import os

    extras = Extras()
    sink = _Sink(extras, meter)
    insights_logger = logging.getLogger("insights")
    streams = [(h, h.setStream(sink)) for h in insights_logger.handlers if hasattr(h, "setStream")]
    saved_level = insights_logger.level
    saved_disabled = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    insights_logger.setLevel(level)
    # Metrics on, whatever the stack says, to see what a monitored stack would
    # publish; pricing counts them only where the template turns them on.
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
    saved_stdout, sys.stdout = sys.stdout, sink  # EMF lines are printed
    try:
        yield extras
    finally:
        sys.stdout = saved_stdout
        insights_logger.setLevel(saved_level)
        for handler, stream in streams:
            handler.setStream(stream)
        if saved_disabled is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = saved_disabled


def aws_durations_ms(used: Any, memory_mb: int) -> list[int]:
    """Each invocation's billed duration on AWS (see the module's "Duration")."""
    slower = max(1.0, FULL_VCPU_MB / memory_mb)
    return [
        max(1, math.ceil(cpu * slower + wait))
        for cpu, wait in zip(used.cpu_ms, used.latency_ms, strict=True)
    ]


def log_settings(template: Any) -> tuple[str, int]:
    """(the functions' log level, platform bytes per invocation) with the template's defaults.

    Lambda writes START, END and REPORT for every invocation only when the
    system log level (Globals' LoggingConfig, the SystemLogLevel parameter) is
    INFO or DEBUG; the functions' own logs are filtered at LogLevel.
    """
    params = template.parameter_defaults()
    system = params.get("SystemLogLevel", "INFO")
    platform = PLATFORM_LOG_BYTES if system in ("INFO", "DEBUG") else 0
    return str(params.get("LogLevel", "INFO")), platform


def slowdown(memory_mb: int) -> float:
    """How much slower CPU runs at this memory than on one full vCPU."""
    return max(1.0, FULL_VCPU_MB / memory_mb)


def cold_flags(
    started_ms: list[int],
    durations_ms: list[int],
    *,
    serial: bool,
    warm_at_start: bool = False,
    idle_minutes: float = IDLE_MINUTES,
) -> list[bool]:
    """For each invocation (in time order), whether it started a new container.

    A container runs one invocation at a time and is reclaimed after
    idle_minutes without one; an invocation takes the most recently freed
    warm container, else starts a new one. `serial`: the function's
    invocations never overlap (a stream shard's batches, a schedule), each
    starts when the one before has ended. `warm_at_start`: a container is
    already warm when the timeline starts (a slice of steady traffic).
    """
    idle_ms = idle_minutes * 60_000
    free: list[float] = []  # when each live container last became free
    flags: list[bool] = []
    last_end = float("-inf")
    for at, took in zip(started_ms, durations_ms, strict=True):
        begin = max(float(at), last_end) if serial else float(at)
        free = [f for f in free if begin - f < idle_ms]
        ready = [f for f in free if f <= begin]
        if ready:
            free.remove(max(ready))
            flags.append(False)
        else:
            flags.append(not (warm_at_start and not flags))
        last_end = begin + took
        free.append(last_end)
    return flags


# Lambda polls an SQS queue it is triggered by with long polls (20 s) from
# several pollers even when the queue is empty: about 15 ReceiveMessage calls
# a minute per trigger (the README's estimate, ~657,000 a month).
SQS_IDLE_RECEIVES_PER_MINUTE = 15
MONTH_MINUTES = 30 * 24 * 60


def template_fixed_monthly(
    template: Any, prices: dict[str, Any], *, monitored: bool = False
) -> dict[str, float]:
    """What the template's resources cost a month whatever the traffic, $.

    Default parameters: alarms exist only with an AlarmTopicArn and the
    dashboard only with CreateDashboard=true; `monitored` prices both (and
    the sweeper's backlog metric, published only then).
    """
    cloudwatch = prices["cloudwatch"]

    def exists(resource: dict[str, Any]) -> bool:
        condition = resource.get("Condition")
        return monitored or condition is None

    alarm_metrics = 0
    for name in template.of_type("AWS::CloudWatch::Alarm"):
        resource = template.resources[name]
        if not exists(resource):
            continue
        metrics = resource.get("Properties", {}).get("Metrics")
        alarm_metrics += sum(1 for m in metrics if "MetricStat" in m) if metrics else 1
    dashboards = sum(
        1
        for name in template.of_type("AWS::CloudWatch::Dashboard")
        if exists(template.resources[name])
    )
    sqs_triggers = sum(
        1
        for function in template.functions()
        for event in function.events.values()
        if event.get("Type") == "SQS"
    )
    fixed = {
        "CloudWatch alarms": alarm_metrics * cloudwatch["alarm_metric_per_month"],
        "CloudWatch dashboards": dashboards * cloudwatch["dashboard_per_month"],
        f"SQS: {sqs_triggers} queue triggers' idle long polls": sqs_triggers
        * SQS_IDLE_RECEIVES_PER_MINUTE
        * MONTH_MINUTES
        * prices["sqs"]["requests_per_million"]
        / 1e6,
    }
    if monitored:
        fixed["Backlog metric (OldestDueSessionAge)"] = cloudwatch["custom_metric_per_month"]
    return fixed


def metrics_usd(extras: Extras, cloudwatch: dict[str, float]) -> float:
    """Custom metrics published during the replay, prorated by the hour."""
    hours = sum(len(h) for h in extras.metric_hours.values())
    return hours / MONTH_HOURS * cloudwatch["custom_metric_per_month"]
