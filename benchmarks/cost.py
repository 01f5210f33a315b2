"""Part 1: cost per million events.

Replays the reference traffic model (benchmarks/traffic.py) through the real
handlers on LocalCloud (moto, in-process) in time order on a frozen clock:
the schedules run at their rate in every simulated minute in which a
session is open, stream records are delivered after each run (as Lambda's
poller would, within the second), TTL expiry runs every simulated hour.
Every DynamoDB request is metered with request units computed from item
sizes (benchmarks/meter.py), every Lambda invocation with its wall time, and
the lot is priced with benchmarks/prices.json.

Every schedule runs at its template rate all month (the sweeper's is the
SweepSchedule parameter's default). Runs in minutes in which SessionsTable
is empty (checked by reading moto's table directly, unmetered) are not
simulated one by one: the run would be the same scan of an empty table, so
they are counted and priced at the measured cost of an idle run (measured at
the start of each replay). Every other run is simulated, since the
sweeper's scan is billed for the bytes of every open session, due or not.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.allin import (
    FULL_VCPU_MB,
    IDLE_MINUTES,
    PLATFORM_LOG_BYTES,
    Extras,
    aws_durations_ms,
    cold_flags,
    counted,
    log_settings,
    metrics_usd,
    slowdown,
    template_fixed_monthly,
)
from benchmarks.core import Config, Figure, PartResult, Table, fmt
from benchmarks.fastmoto import light_transaction_backups
from benchmarks.first_call import RUNTIME_START_MS
from benchmarks.meter import HARNESS, Meter, Usage
from benchmarks.pricing import load_prices
from benchmarks.traffic import SHAPES, Request, TrafficModel, generate_with_prelude

NAME = "cost"
TITLE = "Part 1: cost per million events (reference traffic model, real handlers on moto)"
OUT = Path(__file__).with_name("out")
T0_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z
MINUTE_MS = 60_000
TTL_EVERY_MINUTES = 60
IDLE_PROBES = 5
MONTH_MINUTES = 30 * 24 * 60


@dataclass
class Replay:
    seed: int
    model: TrafficModel
    requests: int = 0
    events: int = 0
    request_users: int = 0  # (request, user) pairs
    sessions: int = 0
    empty_sessions: int = 0
    first_closes: int = 0  # users with a non-empty session: each has one first close
    metrics_on: bool = False  # the template publishes custom metrics with default parameters
    sweeper_minutes: int = 0  # every minute of the replayed window
    sweeper_simulated: int = 0
    # Runs of each scheduled function simulated (minutes with a session open,
    # at the schedule's own rate), and its rate in minutes.
    schedule_runs: Counter = field(default_factory=Counter)
    schedule_rates: dict[str, int] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    idle: Usage = field(default_factory=Usage)  # IDLE_PROBES idle sweeper runs
    statuses: Counter = field(default_factory=Counter)
    extras: Extras = field(default_factory=Extras)  # logs and metrics (benchmarks/allin.py)
    idle_extras: Extras = field(default_factory=Extras)
    # A slice of steady traffic (the 10,000-user figures): containers are warm
    # when it starts; `label` names the replay in the tables.
    warm_at_start: bool = False
    label: str = ""
    prelude_requests: int = 0  # sent before the window, unmetered (saas_month)
    segments_saved: int = 0
    # Lambda's START/END/REPORT bytes per invocation at the template's SystemLogLevel.
    platform_log_bytes: int = PLATFORM_LOG_BYTES


def geo_database() -> Path:
    from insights.local import geodb

    path = OUT / "sample-City.mmdb"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        geodb.build(path)
    return path


def memory_mb(template: Any, function: str) -> int:
    props = template.resources[function].get("Properties", {})
    default = template.body.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
    return int(props.get("MemorySize", default))


def replay(
    model: TrafficModel, seed: int, window: tuple[int, int] | None = None, label: str = ""
) -> tuple[Replay, dict[str, int]]:
    """One replay of the model; returns the metered run and each function's memory.

    `window` (offset from the model's start, length; ms) replays only the
    requests sent in that slice, with containers warm when it opens: the
    steady state of a large account (the 10,000-user figures).
    """
    from moto import mock_aws

    from benchmarks.first_call import SEGMENTS
    from insights import clock
    from insights.local.cloud import LocalCloud
    from insights.local.template import rate_minutes, resolve
    from insights.services.core import auth, enrich
    from insights.services.core.accounts import create_account

    prelude, requests = generate_with_prelude(model, T0_MS, seed)
    start_ms = T0_MS
    if window is not None:
        start_ms = T0_MS + window[0]
        requests = [r for r in requests if start_ms <= r.at_ms < start_ms + window[1]]
        prelude = []  # a slice's returning users are new to it (see RESULTS' method)
    run = Replay(seed, model, warm_at_start=window is not None, label=label)
    run.prelude_requests = len(prelude)
    run.requests = len(requests)
    run.events = sum(len(r.events) for r in requests)
    run.request_users = sum(len({e["uuid"] for e in r.events}) for r in requests)
    sessions = _sessions(requests)
    run.sessions = len(sessions)
    run.empty_sessions = sum(1 for interactive in sessions.values() if not interactive)
    seen_before = {r.uuid for r in prelude}  # their first close was before the window
    run.first_closes = len(
        {u for (u, _i), interactive in sessions.items() if interactive and u not in seen_before}
    )
    # The account exists before anything it is sent (the prelude is up to 30 days old).
    clock.freeze(start_ms - 31 * 24 * 60 * MINUTE_MS)
    saved_env: dict[str, str | None] = {}
    try:
        with mock_aws(), light_transaction_backups():
            cloud = LocalCloud().deploy()
            # As the template sets it with default parameters (counted() turns
            # metrics on for the replay, to see what a monitored stack publishes).
            run.metrics_on = os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() != "true"
            os.environ["GEOIP_DATABASE_PATH"] = str(geo_database())
            os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # keep the table readable
            enrich.geo.cache_clear()
            auth._cache.clear()
            memory = {name: memory_mb(cloud.template, name) for name in cloud.functions}
            # LocalCloud shares one process environment; the sweeper's own
            # variables (BACKLOG_METRIC: off with default parameters) are set
            # as Lambda would set them.
            sweeper = cloud.template.resources["SessionCloseFunction"]["Properties"]
            for key, value in sweeper.get("Environment", {}).get("Variables", {}).items():
                saved_env.setdefault(key, os.environ.get(key))
                os.environ[key] = str(resolve(value, cloud._lookup))
            for name in cloud.functions:  # import every handler: warm containers
                cloud.handler(name)
            account = create_account("Benchmark")
            headers = {"X-Insights-Key": account.write_key}
            # A segmentation product's account has segments: the spec's four questions.
            secret = {"Authorization": f"Bearer {account.secret_key}"}
            for name, rules in SEGMENTS.items():
                saved = cloud.http(
                    "POST", "/v1/segments", headers=secret, body={"name": name, "rules": rules}
                )
                if saved.status != 201:
                    raise RuntimeError(f"saving segment {name!r}: {saved.status} {saved.body}")
                run.segments_saved += 1
            cloud.settle()
            # Users seen before the window (unmetered): their sessions close before it opens.
            for request in prelude:
                clock.freeze(request.at_ms)
                cloud.function_url(
                    "TrackFunction",
                    "POST",
                    "/",
                    headers=headers,
                    body=request.body(),
                    source_ip=request.ip,
                )
            clock.freeze(start_ms)
            while prelude and _moto_table(cloud, "SessionsTable").all_items():
                cloud.run_schedules({"SessionCloseFunction"})
                cloud.settle()

            run.schedule_rates = {
                schedule.function: rate_minutes(schedule.expression) for schedule in cloud.schedules
            }
            level, run.platform_log_bytes = log_settings(cloud.template)
            with Meter(cloud).installed() as idle_meter, counted(idle_meter, level) as idle_extras:
                for _ in range(IDLE_PROBES):
                    cloud.run_schedules()
            run.idle, run.idle_extras = idle_meter.usage, idle_extras

            def sessions_open() -> bool:
                return bool(_moto_table(cloud, "SessionsTable").items)

            now = start_ms
            level, run.platform_log_bytes = log_settings(cloud.template)
            with Meter(cloud).installed() as meter, counted(meter, level) as extras:

                def tick_until(until_ms: int) -> None:
                    nonlocal now
                    while now + MINUTE_MS <= until_ms:
                        now += MINUTE_MS
                        clock.freeze(now)
                        run.sweeper_minutes += 1
                        if sessions_open():
                            run.sweeper_simulated += 1
                            due = {
                                function
                                for function, rate in run.schedule_rates.items()
                                if run.sweeper_minutes % rate == 0
                            }
                            run.schedule_runs.update(due)
                            cloud.run_schedules(due)
                            # DynamoDB streams deliver within about a second: the
                            # closes of this run (and the minutes' lazy closes)
                            # reach their consumers now, in batches of that size.
                            if due:
                                cloud.settle()
                        if run.sweeper_minutes % TTL_EVERY_MINUTES == 0:
                            cloud.expire_ttl()
                            cloud.settle()

                for request in requests:
                    tick_until(request.at_ms)
                    clock.freeze(request.at_ms)
                    # The SDK's endpoint is the tracking function URL (README);
                    # the API Gateway route's price is reported beside it.
                    response = cloud.function_url(
                        "TrackFunction",
                        "POST",
                        "/",
                        headers=headers,
                        body=request.body(),
                        source_ip=request.ip,
                    )
                    run.statuses[response.status] += 1
                # Drain: time runs on until every session has closed.
                while _moto_table(cloud, "SessionsTable").all_items():
                    tick_until(now + MINUTE_MS)
                tick_until(
                    (now // (TTL_EVERY_MINUTES * MINUTE_MS) + 1) * TTL_EVERY_MINUTES * MINUTE_MS
                )
            run.usage, run.extras = meter.usage, extras
    finally:
        clock.reset()
        for key, saved in saved_env.items():  # the process may run tests next
            if saved is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = saved
    return run, memory


def _moto_table(cloud: Any, name: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    from insights.local.aws import ACCOUNT_ID, REGION

    return dynamodb_backends[ACCOUNT_ID][REGION].get_table(cloud.deployment.tables[name])


def _sessions(requests: list[Request]) -> dict[tuple[str, int], bool]:
    """Planned sessions (user, index) and whether each has an interactive event."""
    from insights.domain.core.timefmt import parse_time

    found: dict[tuple[str, int], bool] = {}
    last: dict[str, tuple[int, int]] = {}
    for request in sorted(requests, key=lambda r: (r.uuid, r.at_ms)):
        for event in request.events:
            ts = parse_time(event["timestamp"])
            index, prev = last.get(request.uuid, (-1, -(10**15)))
            if ts - prev >= 30 * MINUTE_MS:
                index += 1
            last[request.uuid] = (index, ts)
            key = (request.uuid, index)
            found[key] = found.get(key, False) or event["interactive"]
    return found


# ------------------------------------------------------------------ pricing
@dataclass
class Priced:
    total: float
    components: dict[str, float]
    by_function: dict[str, dict[str, float]]
    idle_run_usd: float
    simulated_sweeper_runs: int
    api_route_usd: float  # what API Gateway would add if the SDK posted to /v1/events
    idle_month_usd: dict[str, float] = field(default_factory=dict)  # a month with no traffic
    # The idle stack's own cost over the replayed window (idle_month_usd, prorated):
    # total minus this is what the traffic adds.
    idle_window_usd: float = 0.0
    # What custom metrics (prorated by hour) and their EMF log lines cost or
    # would cost with monitoring on; in total only if the template turns them on.
    monitoring_usd: float = 0.0
    cold: dict[str, tuple[int, int]] = field(default_factory=dict)  # (cold starts, invocations)

    @property
    def traffic_usd(self) -> float:
        return self.total - self.idle_window_usd


# The replays' only function invoked over HTTP, whose invocations may overlap;
# the others take stream batches or schedules one at a time. SessionCloseFunction
# takes both, in turn: the replay delivers a sweep's deletions after the sweep, as
# the stream does on AWS about a second later (its batching window), when a small
# account's sweep has long ended; a busy account's overlap finds warm containers.
HTTP_FUNCTIONS = frozenset({"TrackFunction"})


def cold_of(
    run: Replay, function: str, memory_mb: int, idle_minutes: float = IDLE_MINUTES
) -> list[bool]:
    used = run.usage.functions[function]
    return cold_flags(
        used.started_ms,
        aws_durations_ms(used, memory_mb),
        serial=function not in HTTP_FUNCTIONS,
        warm_at_start=run.warm_at_start,
        idle_minutes=idle_minutes,
    )


def cold_start_ms(
    function: str, memory_mb: int, first_call: dict[str, dict[str, float]]
) -> dict[str, float]:
    """What one cold start of the function bills, ms: INIT (runtime start and import) and
    the first invocation's extra CPU, both slowed by the memory's CPU share."""
    measured = first_call.get(function)
    if measured is None:  # not measured: the slowest measured function's figures
        measured = max(first_call.values(), key=lambda m: m["init_ms"] + m["extra_ms"])
    slower = slowdown(memory_mb)
    return {
        "Lambda INIT": RUNTIME_START_MS + measured["init_ms"] * slower,
        "Lambda first call": measured["extra_ms"] * slower,
    }


def price(
    run: Replay,
    memory: dict[str, int],
    prices: dict[str, Any],
    first_call: dict[str, dict[str, float]] | None = None,
    fixed_monthly: dict[str, float] | None = None,
    idle_minutes: float = IDLE_MINUTES,
) -> Priced:
    """The replay's bill. first_call: each function's cold-start figures
    (benchmarks/first_call.py); fixed_monthly: alarms, dashboards."""
    ddb, lam = prices["dynamodb"], prices["lambda"]
    wru_usd = ddb["write_request_unit_per_million"] / 1e6
    rru_usd = ddb["read_request_unit_per_million"] / 1e6
    gb_s_usd = lam["arm64_gb_second"]
    invoke_usd = lam["requests_per_million"] / 1e6
    api_usd = prices["api_gateway_http"]["requests_per_million"] / 1e6
    schedule_usd = prices["scheduler"]["invocations_per_million"] / 1e6

    by_function: dict[str, dict[str, float]] = {}

    def add(function: str, component: str, usd: float) -> None:
        by_function.setdefault(function, {}).setdefault(component, 0.0)
        by_function[function][component] += usd

    for (function, _table), units in run.usage.wru.items():
        add(function, "DynamoDB writes", units * wru_usd)
    for (function, _table), units in run.usage.rru.items():
        add(function, "DynamoDB reads", units * rru_usd)
    for function, used in run.usage.functions.items():
        add(function, "Lambda requests", used.invocations * invoke_usd)
        billed_ms = sum(aws_durations_ms(used, memory[function]))
        add(function, "Lambda duration", billed_ms / 1000 * memory[function] / 1024 * gb_s_usd)
    track = run.usage.functions.get("TrackFunction")
    # Requests go to the function URL, which has no per-request charge.
    add("TrackFunction", "API Gateway", 0.0)
    api_route_usd = (track.invocations if track else 0) * api_usd
    for function, runs in run.schedule_runs.items():
        add(function, "Scheduler", runs * schedule_usd)
    add("(S3)", "S3 requests", 0.0)  # no function reads or writes S3 yet

    # Scheduled runs in minutes with no session open: priced at the measured
    # cost of one idle run of each scheduled function (its probes).
    cloudwatch = prices["cloudwatch"]
    log_usd = cloudwatch["logs_ingested_per_gb"] / 1e9

    def idle_run_of(function: str) -> dict[str, float]:
        probe = run.idle.functions.get(function)
        probes = probe.invocations if probe else 1
        idle_ms = statistics.median(aws_durations_ms(probe, memory[function])) if probe else 1
        logs = run.idle_extras.log_bytes.get(function, 0) / probes + run.platform_log_bytes
        return {
            "DynamoDB reads": sum(u for (f, _t), u in run.idle.rru.items() if f == function)
            / probes
            * rru_usd,
            "DynamoDB writes": sum(u for (f, _t), u in run.idle.wru.items() if f == function)
            / probes
            * wru_usd,
            "Lambda requests": invoke_usd,
            "Lambda duration": idle_ms / 1000 * memory[function] / 1024 * gb_s_usd,
            "Scheduler": schedule_usd,
            "CloudWatch Logs": logs * log_usd,
        }

    idle_runs = {f: idle_run_of(f) for f in run.schedule_rates}
    for function, rate in run.schedule_rates.items():
        unsimulated = run.sweeper_minutes // rate - run.schedule_runs.get(function, 0)
        for component, usd in idle_runs[function].items():
            add(f"{function} (idle minutes)", component, usd * max(0, unsimulated))
    idle_run = idle_runs.get("SessionCloseFunction", {})

    # What a real bill adds (benchmarks/allin.py).
    cold: dict[str, tuple[int, int]] = {}
    for function, used in run.usage.functions.items():
        written = run.extras.log_bytes.get(function, 0) + run.platform_log_bytes * used.invocations
        if run.metrics_on:
            written += run.extras.emf_bytes.get(function, 0)
        add(function, "CloudWatch Logs", written * log_usd)
        if first_call:
            starts = sum(cold_of(run, function, memory[function], idle_minutes))
            cold[function] = (starts, used.invocations)
            for component, ms in cold_start_ms(function, memory[function], first_call).items():
                add(function, component, starts * ms / 1000 * memory[function] / 1024 * gb_s_usd)
    monitoring = metrics_usd(run.extras, cloudwatch) + sum(run.extras.emf_bytes.values()) * log_usd
    if run.metrics_on:
        add("(CloudWatch)", "Custom metrics", metrics_usd(run.extras, cloudwatch))
    window = run.sweeper_minutes / MONTH_MINUTES
    fixed = fixed_monthly or {}
    for component, usd in fixed.items():
        add("(fixed)", component, usd * window)
    idle_month = {
        **{
            f"{function} every {rate} min (invocation, reads, schedule, logs)": sum(
                idle_runs[function].values()
            )
            * MONTH_MINUTES
            / rate
            for function, rate in run.schedule_rates.items()
        },
        # What an idle stack publishes every hour of the month.
        "Custom metrics": len(run.idle_extras.metric_hours)
        * cloudwatch["custom_metric_per_month"]
        * run.metrics_on,
        **fixed,
    }

    components: dict[str, float] = {}
    for parts in by_function.values():
        for component, usd in parts.items():
            components[component] = components.get(component, 0.0) + usd
    return Priced(
        total=sum(components.values()),
        components=components,
        by_function=by_function,
        idle_run_usd=sum(idle_run.values()),
        api_route_usd=api_route_usd,
        simulated_sweeper_runs=run.sweeper_simulated,
        idle_month_usd=idle_month,
        idle_window_usd=sum(idle_month.values()) * window,
        monitoring_usd=monitoring,
        cold=cold,
    )


# The functions a session's close runs through: SessionCloseFunction's sweep
# (the delete) and its stream batch (the profile's write), then the segment
# index and console aggregates.
CLOSE_PATH = ("SessionCloseFunction", "SegmentIndexFunction")


def close_wru(run: Replay) -> float:
    """Write units of the close path per closed (non-empty) session, all tables and indexes."""
    closes = run.sessions - run.empty_sessions
    units = sum(u for (function, _t), u in run.usage.wru.items() if function in CLOSE_PATH)
    return units / max(1, closes)


def sweeper_runs(run: Replay) -> int:
    """Sweeper runs in the replayed window at the template's schedule."""
    return run.sweeper_minutes // run.schedule_rates["SessionCloseFunction"]


def first_close_share(run: Replay) -> float:
    return 100 * run.first_closes / max(1, run.sessions - run.empty_sessions)


# --------------------------------------------------------------------- part
SMOKE = {"users": 6, "days": 1, "max_sessions": 3, "max_events": 12}
# Goals of issue 26, $ per million events all-in (on top of an idle stack), at 250 users.
SHAPE_GOALS = {"reference": 0.40, "product": 0.80, "bounce": 1.50, "sdk": 0.80, "saas_month": 0.80}
# A new container's first request, beyond its import (issue 26): ms of CPU.
FIRST_CALL_GOALS = {"TrackFunction": 150.0, "TrackFunction sdk/segments": 150.0}
# The large account: an hour of steady traffic of 10,000 users (a week into the
# window), replayed with containers warm, its stream batches as large as that
# traffic makes them. Smoke: a smaller slice of a small model.
LARGE_USERS = 10_000
HOUR_MS = 60 * MINUTE_MS
LARGE_WINDOW = (7 * 24 * HOUR_MS, HOUR_MS)
SMOKE_LARGE = {"users": 30}
SMOKE_LARGE_WINDOW = (6 * HOUR_MS, 2 * HOUR_MS)


def _job(
    args: tuple[TrafficModel, int, tuple[int, int] | None, str],
) -> tuple[Replay, dict[str, int]]:
    return replay(*args)


def run(config: Config) -> PartResult:
    from dataclasses import replace as with_changes

    from benchmarks import first_call as first_call_part
    from insights.local.template import Template

    prices = load_prices()
    reference = SHAPES["reference"]
    if config.smoke:
        model, seeds = with_changes(reference, **SMOKE), [1]
    else:
        model, seeds = reference, list(range(1, min(config.runs, 3) + 1))
    chosen = [n for n in SHAPES if config.cost_shapes is None or n in config.cost_shapes]
    shapes = {
        name: with_changes(SHAPES[name], **SMOKE) if config.smoke else SHAPES[name]
        for name in chosen
        if name != "reference"
    }
    if config.cost_users is not None and not config.smoke:
        model = with_changes(model, users=config.cost_users)
        shapes = {n: with_changes(s, users=config.cost_users) for n, s in shapes.items()}
    large = {
        name: with_changes(
            shape, **(SMOKE | SMOKE_LARGE) if config.smoke else {"users": LARGE_USERS}
        )
        for name, shape in SHAPES.items()
        if name == "reference" or name in chosen
    }
    window = SMOKE_LARGE_WINDOW if config.smoke else LARGE_WINDOW
    jobs: list[tuple[TrafficModel, int, tuple[int, int] | None, str]] = [
        (model, seed, None, "reference") for seed in seeds
    ]
    jobs += [(shape, 1, None, name) for name, shape in shapes.items()]
    jobs += [(shape, 1, window, name) for name, shape in large.items()]
    # Each replay owns a process: moto's backend is process-wide state, and the
    # replays are independent, so they run side by side on a multi-core machine.
    # The largest first, so the pool does not end on one long replay.
    workers = min(len(jobs), config.jobs or os.cpu_count() or 1)
    # The SDK-batched shapes send 8-9 times the requests of the others: they go
    # first, so no worker is left with one of them at the end.
    order = sorted(
        range(len(jobs)), key=lambda i: (jobs[i][2] is not None, not jobs[i][0].sdk_policy)
    )
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            ran = list(pool.map(_job, [jobs[i] for i in order]))
    else:
        ran = [_job(jobs[i]) for i in order]
    done = [ran[order.index(i)] for i in range(len(jobs))]
    replays = done[: len(seeds)]
    by_shape = dict(zip(shapes, done[len(seeds) : len(seeds) + len(shapes)], strict=True))
    by_large = dict(zip(large, done[len(seeds) + len(shapes) :], strict=True))
    first_call = first_call_part.measure(1 if config.smoke else 3)
    by_function = {kind: m for kind, m in first_call.items() if " " not in kind}
    template = Template.load(Path(__file__).resolve().parents[1] / "template.yaml")
    fixed = template_fixed_monthly(template, prices)
    monitored = template_fixed_monthly(template, prices, monitored=True)
    runs = list(zip(replays, seeds, strict=True))
    priced = [price(r, memory, prices, by_function, fixed) for (r, memory), _ in runs]
    shape_priced = {
        name: (r, price(r, memory, prices, by_function, fixed))
        for name, (r, memory) in by_shape.items()
    }
    large_priced = {
        name: (r, price(r, memory, prices, by_function, fixed))
        for name, (r, memory) in by_large.items()
    }

    def figure(key: str, label: str, unit: str, values: list[float], **kw: Any) -> Figure:
        return Figure(f"cost.{key}", label, unit, values, **kw)

    reps = [r for (r, _m), _ in runs]
    figures = [
        figure(
            "usd_per_million_events",
            "All-in cost per million events (what the traffic adds to an idle stack)",
            "$",
            [p.traffic_usd / r.events * 1e6 for p, r in zip(priced, reps, strict=True)],
            goal=SHAPE_GOALS["reference"],
        ),
        figure(
            "usd_per_million_events_with_idle_stack",
            "All-in cost per million events, the idle stack's own cost prorated over the window",
            "$",
            [p.total / r.events * 1e6 for p, r in zip(priced, reps, strict=True)],
        ),
        figure(
            "usd_per_million_events_monitoring",
            "Monitoring on (AlarmTopicArn or dashboard): custom metrics and their log lines add",
            "$",
            [
                p.monitoring_usd * (not r.metrics_on) / r.events * 1e6
                for p, r in zip(priced, reps, strict=True)
            ],
        ),
        figure(
            "usd_per_million_events_api_route",
            "All-in cost per million events, tracking through the API Gateway route",
            "$",
            [
                (p.traffic_usd + p.api_route_usd) / r.events * 1e6
                for p, r in zip(priced, reps, strict=True)
            ],
        ),
        figure(
            "ingest_writes_per_request_user",
            "DynamoDB write requests per (request, user) on ingest",
            "requests",
            [r.usage.write_requests("TrackFunction") / r.request_users for r in reps],
            goal=1.1,
        ),
        figure(
            "ingest_reads_per_request_user",
            "DynamoDB read requests per (request, user) on ingest",
            "requests",
            [r.usage.read_requests("TrackFunction") / r.request_users for r in reps],
        ),
        figure(
            "usd_per_million_requests",
            "All-in cost per million tracking requests",
            "$",
            [p.traffic_usd / r.requests * 1e6 for p, r in zip(priced, reps, strict=True)],
        ),
        figure(
            "events_per_request",
            "Events per tracking request (traffic model)",
            "events",
            [r.events / r.requests for r in reps],
        ),
        figure(
            "wru_per_event",
            "DynamoDB write units per event",
            "WRU",
            [sum(r.usage.wru.values()) / r.events for r in reps],
        ),
        figure(
            "rru_per_event",
            "DynamoDB read units per event",
            "RRU",
            [sum(r.usage.rru.values()) / r.events for r in reps],
        ),
        figure(
            "track_ms_per_invocation",
            "Track handler CPU per request (process CPU, moto's side excluded)",
            "ms",
            [statistics.median(r.usage.functions["TrackFunction"].cpu_ms) for r in reps],
        ),
        figure(
            "close_wru",
            "Close-path WRU per closed session (sweeper, profile, segment index, aggregates)",
            "WRU",
            [close_wru(r) for r in reps],
        ),
        figure(
            "first_close_share",
            "Closes that are a user's first",
            "%",
            [first_close_share(r) for r in reps],
        ),
        figure(
            "session_item_bytes_p99",
            "Session item size, 99th percentile of writes",
            "bytes",
            [_percentile(r.usage.item_bytes.get("SessionsTable", [0]), 99) for r in reps],
        ),
        figure(
            "sweeper_idle_usd_per_month",
            "Idle sweeper, a 30-day month at its schedule",
            "$",
            [
                p.idle_run_usd * MONTH_MINUTES / r.schedule_rates["SessionCloseFunction"]
                for p, r in zip(priced, reps, strict=True)
            ],
        ),
        figure(
            "idle_stack_usd_per_month",
            "Idle stack per month, default parameters (schedules, logs, metrics, queue polls)",
            "$",
            [sum(p.idle_month_usd.values()) for p in priced],
            goal=1.0,
        ),
        figure(
            "idle_stack_monitored_usd_per_month",
            "Idle stack with alarms (AlarmTopicArn set) and the dashboard (CreateDashboard=true)",
            "$",
            [
                sum(p.idle_month_usd.values()) - sum(fixed.values()) + sum(monitored.values())
                for p in priced
            ],
        ),
        figure(
            "large.usd_per_million_events",
            f"Reference at {large['reference'].users:,} users (an hour, warm): all-in per "
            "million events",
            "$",
            [large_priced["reference"][1].traffic_usd / large_priced["reference"][0].events * 1e6],
        ),
    ]
    for kind, measured in first_call.items():
        key = kind.replace(" ", "_").replace("/", "_")
        figures.append(
            figure(
                f"first_call.{key}",
                f"New container, {kind}: first invocation's CPU beyond a warm one (here)",
                "ms",
                [measured["extra_ms"]],
                goal=FIRST_CALL_GOALS.get(kind),
            )
        )
        figures.append(
            figure(
                f"first_call.{key}_init",
                f"New container, {kind}: the handler's import (INIT, CPU here)",
                "ms",
                [measured["init_ms"]],
            )
        )
    for name, (shape_run, shape_cost) in shape_priced.items():
        large_run, large_cost = large_priced[name]
        figures += [
            figure(
                f"{name}.usd_per_million_events",
                f"Shape '{name}': all-in cost per million events (on top of an idle stack)",
                "$",
                [shape_cost.traffic_usd / shape_run.events * 1e6],
                goal=SHAPE_GOALS.get(name),
            ),
            figure(
                f"{name}.usd_per_million_events_large",
                f"Shape '{name}' at {large_run.model.users:,} users (an hour, warm): per "
                "million events",
                "$",
                [large_cost.traffic_usd / large_run.events * 1e6],
            ),
            figure(
                f"{name}.usd_per_million_events_with_idle_stack",
                f"Shape '{name}': the same with the idle stack's own cost prorated",
                "$",
                [shape_cost.total / shape_run.events * 1e6],
            ),
            figure(
                f"{name}.usd_per_million_requests",
                f"Shape '{name}': all-in cost per million tracking requests",
                "$",
                [shape_cost.traffic_usd / shape_run.requests * 1e6],
            ),
            figure(
                f"{name}.events_per_request",
                f"Shape '{name}': events per tracking request",
                "events",
                [shape_run.events / shape_run.requests],
            ),
            figure(
                f"{name}.close_wru",
                f"Shape '{name}': close-path WRU per closed session, as the replay batched them",
                "WRU",
                [close_wru(shape_run)],
            ),
            figure(
                f"{name}.first_close_share",
                f"Shape '{name}': closes that are a user's first",
                "%",
                [first_close_share(shape_run)],
            ),
        ]
    middle = sorted(range(len(priced)), key=lambda i: priced[i].total / reps[i].events)
    pick = middle[len(middle) // 2]
    rep, cost = reps[pick], priced[pick]
    result = PartResult(NAME, TITLE, figures)
    result.parameters = {
        "model": vars(model),
        "seeds": seeds,
        "prices_date": prices["date"],
        "breakdown_seed": rep.seed,
        "large_users": large["reference"].users,
        "large_window_ms": list(window),
        "idle_minutes": IDLE_MINUTES,
        "runtime_start_ms": RUNTIME_START_MS,
        "first_call": first_call,
    }
    memory = runs[pick][0][1]
    all_small = {"reference": (rep, cost), **shape_priced}
    result.tables = [_summary_table(all_small, large_priced, config.smoke)]
    result.tables += [_first_call_table(first_call, memory)]
    result.tables += [_cold_table(all_small, large_priced)]
    curve_run, curve_memory = by_shape.get("sdk", (rep, memory))
    result.tables += [
        _memory_table(curve_run, memory_curve(curve_run, curve_memory, prices, first_call))
    ]
    result.tables += _tables(rep, cost, memory)
    result.tables += _shape_tables(all_small)
    result.tables += _shape_tables(large_priced, f" at {large['reference'].users:,} users")
    result.notes = _notes(rep, cost)
    return result


# Lambda Power Tuning's method on the replay's own invocations: the same
# invocations at each memory size, billed duration (CPU slowed by the memory's
# share, plus the modeled AWS round trips) times the price, cold starts
# included. Below one vCPU the CPU part costs the same at any size (half the
# CPU for twice the time), so the curve falls with memory until the waits and
# the 1 ms rounding dominate; the floor is the memory the function needs.
POWER_TUNING_MB = (128, 256, 512, 768, 1024, 1536, 1769)
# Headroom over the peak RSS measured in a fresh interpreter (first_call):
# larger stream batches, the runtime's own memory.
RSS_HEADROOM = 1.5
# Work the replays do not show, which sets a floor of its own: the segment
# index's backfill slices (a queue of 100 profiles at a time) and Salesforce
# syncs (simple-salesforce, pages of records) run in these functions too.
MEMORY_FLOOR_MB = {"SegmentIndexFunction": 256, "SalesforceSyncFunction": 512}
# HTTP functions answer people: the smallest size whose warm median and cold
# start stay under these (in-app targeting waits on GET /v1/sdk/segments).
HTTP_WARM_MEDIAN_MS = 100.0
HTTP_COLD_START_MS = 1_500.0


@dataclass
class MemoryChoice:
    function: str
    usd_by_mb: dict[int, float]  # the replay's invocations of the function at each size
    warm_median_ms: dict[int, float]
    cold_start_ms: dict[int, float]
    floor_mb: float
    chosen_mb: int
    current_mb: int


def memory_curve(
    run: Replay,
    memory: dict[str, int],
    prices: dict[str, Any],
    first_call: dict[str, dict[str, float]],
) -> list[MemoryChoice]:
    gb_s_usd = prices["lambda"]["arm64_gb_second"]
    choices = []
    for function, used in sorted(run.usage.functions.items()):
        measured = first_call.get(function, {})
        floor = max(
            128.0,
            measured.get("rss_mb", 0.0) * RSS_HEADROOM,
            float(MEMORY_FLOOR_MB.get(function, 0)),
        )
        usd, warm, cold = {}, {}, {}
        for mb in POWER_TUNING_MB:
            billed = aws_durations_ms(used, mb)
            starts = sum(
                cold_flags(
                    used.started_ms,
                    billed,
                    serial=function not in HTTP_FUNCTIONS,
                    warm_at_start=run.warm_at_start,
                )
            )
            per_cold = sum(cold_start_ms(function, mb, first_call).values()) if first_call else 0.0
            usd[mb] = (sum(billed) + starts * per_cold) / 1000 * mb / 1024 * gb_s_usd
            warm[mb] = statistics.median(billed)
            cold[mb] = per_cold
        allowed = [mb for mb in POWER_TUNING_MB if mb >= floor]
        if function in HTTP_FUNCTIONS:
            fast = [
                mb
                for mb in allowed
                if warm[mb] <= HTTP_WARM_MEDIAN_MS and cold[mb] <= HTTP_COLD_START_MS
            ]
            allowed = fast or allowed[-1:]
        chosen = min(allowed, key=lambda mb: (usd[mb], mb))
        choices.append(
            MemoryChoice(function, usd, warm, cold, floor, chosen, memory.get(function, 0))
        )
    return choices


def _memory_table(run: Replay, choices: list[MemoryChoice]) -> Table:
    per_m = 1e6 / run.events
    return Table(
        f"Memory per function: Lambda cost of the '{run.label or 'reference'}' replay's "
        "invocations at each size ($ per million events; cold starts included)",
        ["function", *(f"{mb} MB" for mb in POWER_TUNING_MB), "floor MB", "chosen", "template"],
        [
            [
                c.function,
                *(
                    fmt(c.usd_by_mb[mb] * per_m) + ("" if mb >= c.floor_mb else " (too small)")
                    for mb in POWER_TUNING_MB
                ),
                fmt(c.floor_mb),
                c.chosen_mb,
                c.current_mb,
            ]
            for c in choices
        ],
    )


def _summary_table(
    small: dict[str, tuple[Replay, Priced]],
    large: dict[str, tuple[Replay, Priced]],
    smoke: bool = False,
) -> Table:
    rows = []
    for name, (run, cost) in small.items():
        big_run, big_cost = large[name]
        goal = SHAPE_GOALS.get(name)
        usd = cost.traffic_usd / run.events * 1e6
        verdict = ""
        if goal is not None:
            verdict = " (full sizes only)" if smoke else (" met" if usd <= goal else " missed")
        rows.append(
            [
                name,
                run.model.users,
                fmt(usd),
                f"<= {goal}{verdict}" if goal else "",
                fmt(big_cost.traffic_usd / big_run.events * 1e6),
                fmt(run.events / run.requests),
                fmt(close_wru(run)),
                f"{first_close_share(run):.1f}%",
            ]
        )
    return Table(
        "Summary: all-in $ per million events by shape (what the traffic adds to an idle stack)",
        [
            "shape",
            "users",
            "$/M events",
            "goal",
            f"$/M at {next(iter(large.values()))[0].model.users:,} users",
            "events/request",
            "close WRU",
            "first closes",
        ],
        rows,
    )


def _first_call_table(first_call: dict[str, dict[str, float]], memory: dict[str, int]) -> Table:
    rows = []
    for kind, m in first_call.items():
        function = kind.split(" ")[0]
        mb = memory.get(function, 0)
        billed = cold_start_ms(function, mb, {function: m}) if mb else {}
        rows.append(
            [
                kind,
                fmt(m["init_ms"]),
                fmt(m["first_ms"]),
                fmt(m["warm_ms"]),
                fmt(m["extra_ms"]),
                mb or "-",
                fmt(sum(billed.values())) if billed else "-",
                fmt(m["rss_mb"]),
            ]
        )
    return Table(
        "New containers: import and first invocation, process CPU in a fresh interpreter "
        f"(median of {next(iter(first_call.values()))['runs']})",
        [
            "function, first event",
            "import ms",
            "first call ms",
            "warm call ms",
            "first-call extra ms",
            "MB",
            f"billed per cold start ms (+{RUNTIME_START_MS:.0f} runtime, at MB's CPU share)",
            "peak RSS MB",
        ],
        rows,
    )


def _cold_table(
    small: dict[str, tuple[Replay, Priced]], large: dict[str, tuple[Replay, Priced]]
) -> Table:
    functions = sorted({f for _r, c in small.values() for f in c.cold})
    rows = []
    for function in functions:
        row: list[Any] = [function]
        for table in (small, large):
            for _name, (_run, cost) in table.items():
                starts, invocations = cost.cold.get(function, (0, 0))
                row.append(f"{starts}/{invocations}" if invocations else "-")
        rows.append(row)
    users = next(iter(large.values()))[0].model.users
    return Table(
        f"Cold starts / invocations by function (containers warm {IDLE_MINUTES} idle minutes)",
        ["function", *small, *(f"{n} ({users:,})" for n in large)],
        rows,
    )


def _percentile(values: list[int], pct: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))])


def _shape_tables(shapes: dict[str, tuple[Replay, Priced]], suffix: str = "") -> list[Table]:
    """What each shape's dollar is made of: by component, by function, by table."""
    names = list(shapes)

    def per_m(values: dict[str, dict[str, float]]) -> list[list[Any]]:
        keys = sorted(
            {k for v in values.values() for k in v},
            key=lambda k: -sum(values[n].get(k, 0.0) for n in names),
        )
        return [[k, *(fmt(values[n].get(k, 0.0)) for n in names)] for k in keys]

    components, functions, tables = {}, {}, {}
    for name, (run, cost) in shapes.items():
        scale = 1e6 / run.events
        components[name] = {c: usd * scale for c, usd in cost.components.items()}
        functions[name] = {f: sum(parts.values()) * scale for f, parts in cost.by_function.items()}
        wru: dict[str, float] = {}
        for (_function, table), units in run.usage.wru.items():
            wru[table] = wru.get(table, 0.0) + units / run.events
        tables[name] = wru
    return [
        Table(
            f"Cost by component and shape{suffix} ($ per million events)",
            ["component", *names],
            [r for r in per_m(components) if any(v != "0" for v in r[1:])],
        ),
        Table(
            f"Cost by function and shape{suffix} ($ per million events)",
            ["function", *names],
            [r for r in per_m(functions) if any(v != "0" for v in r[1:])],
        ),
        Table(
            f"DynamoDB write units per event, by table and index and shape{suffix}",
            ["table/index", *names],
            per_m(tables),
        ),
    ]


def _tables(run: Replay, cost: Priced, memory: dict[str, int]) -> list[Table]:
    per_m = 1e6 / run.events
    components = sorted(cost.components.items(), key=lambda kv: -kv[1])
    by_component = Table(
        f"Cost by component (seed {run.seed}; $ per million events)",
        ["component", "$/M events", "share"],
        [[c, fmt(usd * per_m), f"{usd / cost.total:.0%}"] for c, usd in components],
    )
    names = sorted(cost.by_function, key=lambda f: -sum(cost.by_function[f].values()))
    by_function = Table(
        "Cost by function ($ per million events)",
        ["function", "$/M events", "share", "biggest part"],
        [
            [
                f,
                fmt(sum(cost.by_function[f].values()) * per_m),
                f"{sum(cost.by_function[f].values()) / cost.total:.0%}",
                max(cost.by_function[f].items(), key=lambda kv: kv[1])[0],
            ]
            for f in names
        ],
    )
    rows = []
    ops: dict[str, Counter] = {}
    for (function, _table, op), n in run.usage.requests.items():
        ops.setdefault(function, Counter())[op] += n
    for function, used in sorted(run.usage.functions.items()):
        wru = sum(u for (f, _t), u in run.usage.wru.items() if f == function)
        rru = sum(u for (f, _t), u in run.usage.rru.items() if f == function)
        rows.append(
            [
                function,
                used.invocations,
                memory.get(function, 0),
                fmt(statistics.median(used.durations_ms)) if used.durations_ms else "-",
                fmt(used.aws_ms / max(1, used.invocations)),
                fmt(statistics.median(aws_durations_ms(used, memory[function])))
                if used.cpu_ms
                else "-",
                ", ".join(f"{op} {n}" for op, n in sorted(ops.get(function, {}).items())),
                fmt(wru),
                fmt(rru),
            ]
        )
    usage = Table(
        "Usage by function (simulated invocations only)",
        [
            "function",
            "invocations",
            "MB",
            "median ms",
            "moto ms/inv",
            "billed ms on AWS (median)",
            "DynamoDB requests",
            "WRU",
            "RRU",
        ],
        rows,
    )
    tables = {}
    for (_function, table), units in run.usage.wru.items():
        tables.setdefault(table, [0.0, 0.0])[0] += units
    for (_function, table), units in run.usage.rru.items():
        tables.setdefault(table, [0.0, 0.0])[1] += units
    by_table = Table(
        "DynamoDB units by table and index",
        ["table/index", "WRU", "RRU"],
        [[t, fmt(w), fmt(r)] for t, (w, r) in sorted(tables.items())],
    )
    return [by_component, by_function, usage, by_table]


def _notes(run: Replay, cost: Priced) -> list[str]:
    harness = sum(n for (f, _s, _o), n in run.usage.other_calls.items() if f == HARNESS)
    aggregates = {
        op: units
        for (_f, table, op), units in run.usage.wru_by_op.items()
        if table == "AggregatesTable"
    }
    rolled = aggregates.get("TransactWriteItems", 0)
    return [
        "Console aggregates (AggregatesTable): "
        + ", ".join(f"{op} {units / run.events:.4f}" for op, units in sorted(aggregates.items()))
        + " WRU per event; the transactions are the roll-ups (hourly for a busy account, "
        "after a day or 24 pending batches for a quiet one) and late batches: "
        f"${rolled / run.events * 0.625:.3f} per million events at list price.",
        f"Replay: {run.events:,} events in {run.requests:,} requests, {run.sessions:,} sessions "
        f"({run.empty_sessions:,} empty); HTTP statuses {dict(run.statuses)}.",
        f"Sweeper: {run.sweeper_minutes:,} minutes in the window, a run every "
        f"{run.schedule_rates['SessionCloseFunction']} min; "
        f"{run.schedule_runs['SessionCloseFunction']:,} "
        f"runs simulated (a session open), the other "
        f"{sweeper_runs(run) - run.schedule_runs['SessionCloseFunction']:,} priced "
        f"analytically at the measured idle-run cost (${cost.idle_run_usd:.8f} each).",
        "Lambda duration is billed as AWS would: each invocation's process CPU less moto's "
        "side of its calls and the harness's (benchmarks/meter.py), slowed by the CPU share "
        f"of its memory (one vCPU at {FULL_VCPU_MB:,} MB), plus a modeled round trip per AWS "
        "call (meter.LATENCY_MS), rounded up to 1 ms per invocation. Free tiers are ignored.",
        "Cold starts (benchmarks/allin.py, cold_flags): containers stay warm "
        f"{IDLE_MINUTES} idle minutes; each cold start bills the runtime's start "
        f"({RUNTIME_START_MS:.0f} ms), the handler's import and its first invocation's extra "
        "CPU, measured per function in fresh interpreters (benchmarks/first_call.py), at the "
        "memory's CPU share. The 10,000-user figures replay an hour of steady traffic with "
        "containers warm when it opens.",
        "All-in also counts (benchmarks/allin.py): CloudWatch Logs ingestion of the bytes the "
        f"handlers wrote ({sum(run.extras.log_bytes.values()):,}) plus "
        f"{run.platform_log_bytes} bytes of platform lines per invocation (Lambda's START, END "
        f"and REPORT: {PLATFORM_LOG_BYTES} at SystemLogLevel INFO, none at WARN); "
        f"{len(run.extras.metric_hours)} custom metrics prorated by the hours they were "
        "published in (only where the template publishes them); the template's alarms and "
        "dashboard for the window's share of a month.",
        f"Every replay saves the spec's four questions as segments first ({run.segments_saved} "
        "here, unmetered), so the segment index and its reads are part of every figure.",
        "Idle month: "
        + ", ".join(f"{k} ${v:.3f}" for k, v in cost.idle_month_usd.items())
        + f" (total ${sum(cost.idle_month_usd.values()):.2f}).",
        f"Unbilled harness calls (table setup, simulated TTL, stream polling): {harness:,}.",
    ]
