"""Stage throughputs on the real handlers (issue 27, part 2), feeding the capacity model.

One synthetic account of N users is built on moto in-process: profiles and
the segment index entries the spec's four questions need, seeded straight
into UsersTable as production stores them (benchmarks/segments.py), and then
every stage runs through the real code on the local cloud:

- **Counts**: the four questions through ``services.segments.count_users``.
- **Track**: requests through TrackFunction's function URL, 1 and 10 events.
- **Sweeper**: open sessions seeded into SessionsTable as ``session_to_item``
  writes them (a fifth due); a run with none due (the scan alone) and a run
  at the time they are (scan + closes) through SessionCloseFunction.
- **Close apply** and **segment index**: the stream records those deletions
  give, delivered in batches of the template's BatchSize to
  SessionCloseFunction, and the profile writes to SegmentIndexFunction.
- **Import**: a CSV changing an indexed attribute of existing users, uploaded
  through the imports API; the ImportFunction slices and the SegmentIndex
  batches its profile writes cause.
- **Backfill**: one slice of the backfill a segment on a new attribute starts.

Time on AWS is modelled as the cost benchmark does (benchmarks/allin.py,
"Duration"): the handler's own CPU (process CPU time minus the CPU spent
inside moto and the meter, measured per call), slowed by its memory's share
of a vCPU, plus meter.LATENCY_MS per AWS call. A rate is what one invocation
(one stream shard, one slice chain) does per second of that time.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import botocore.client

from benchmarks.allin import FULL_VCPU_MB
from benchmarks.meter import LATENCY_MS, OTHER_SERVICE_LATENCY_MS, Meter

NOW_MS = 1_795_867_200_000  # 2026-11-28T12:00:00Z, the segments part's "now"
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
# Closes happen an hour after the population's "now": every run starts after
# the user's last_seen, as a new session's would.
CLOSE_AT_MS = NOW_MS + HOUR_MS
TIMEOUT_MS = 30 * MINUTE_MS
DUE_SHARE = 0.2  # of the open sessions seeded, these are due when the sweeper runs
NEW_SHARE = 0.15  # of the due sessions, a new user's first (the rest: returning users)
CHANGE_SHARE = 0.05  # closes that change an indexed attribute (custom.plan)
BACKFILL_RULES = {"attribute": "custom.signup_source", "op": "equals", "value": "ads"}


# ------------------------------------------------------------- AWS time
@dataclass
class Calls:
    """The CPU each invocation spent in its own code, apart from moto and the meter."""

    cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    inside_s: float = 0.0  # CPU inside AWS calls (moto and the meter), all threads
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def handler_cpu(cloud: Any) -> Iterator[Calls]:
    """Per invocation, process CPU time minus the CPU inside AWS calls (per thread).

    CPU time, not wall time: the machine is shared, and a wall clock would
    count other processes' turns as the handler's. Install inside a Meter so
    the meter's own work (item images, unit sums) counts as inside the calls.
    """
    calls = Calls()
    original_call = botocore.client.BaseClient._make_api_call
    original_invoke = cloud.invoke

    def call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        started = time.thread_time()
        try:
            return original_call(client, operation, params)
        finally:
            with calls.lock:
                calls.inside_s += time.thread_time() - started

    def invoke(function: str, event: dict[str, Any]) -> Any:
        cpu, inside = time.process_time(), calls.inside_s
        try:
            return original_invoke(function, event)
        finally:
            own = (time.process_time() - cpu) - (calls.inside_s - inside)
            calls.cpu_ms.setdefault(function, []).append(max(0.0, own * 1000))

    botocore.client.BaseClient._make_api_call = call
    cloud.invoke = invoke
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original_call
        cloud.invoke = original_invoke


def aws_ms(cpu_ms: float, latency_ms: float, memory_mb: int) -> float:
    """An invocation's duration on AWS: its CPU at the memory's vCPU share, plus round trips."""
    return cpu_ms * max(1.0, FULL_VCPU_MB / memory_mb) + latency_ms


def invocations(meter: Meter, calls: Calls, function: str, memory_mb: int) -> list[float]:
    """AWS milliseconds of each invocation of `function` while both were installed."""
    latency = meter.usage.functions[function].latency_ms
    cpu = calls.cpu_ms.get(function, [])
    assert len(cpu) == len(latency), (function, len(cpu), len(latency))
    return [aws_ms(c, w, memory_mb) for c, w in zip(cpu, latency, strict=True)]


# ------------------------------------------------------------- the world
@dataclass
class World:
    cloud: Any
    account: Any
    profiles: list[Any]
    needs: Any
    memory: dict[str, int]
    seeded_items: int = 0
    seeding_s: float = 0.0


@contextmanager
def world(users: int, seed: int) -> Iterator[World]:
    """A local cloud with one account of `users` profiles, its segments and their entries."""
    from moto import mock_aws

    from benchmarks.cost import geo_database, memory_mb
    from benchmarks.fastmoto import light_transaction_backups, seed_items
    from benchmarks.segments import EXTRA, QUESTIONS, _stored_items, population
    from insights import clock
    from insights.domain.segments.planner import index_needs
    from insights.domain.segments.rules import parse_rules
    from insights.local.cloud import LocalCloud
    from insights.services.core import auth, enrich
    from insights.services.core.accounts import create_account
    from insights.services.segments import queries as service
    from insights.storage.core.models import UserItem

    clock.freeze(NOW_MS)
    saved = {k: os.environ.get(k) for k in ("GEOIP_DATABASE_PATH", "POWERTOOLS_LOG_LEVEL")}
    try:
        with mock_aws(), light_transaction_backups():
            cloud = LocalCloud().deploy()
            os.environ["GEOIP_DATABASE_PATH"] = str(geo_database())
            os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
            enrich.geo.cache_clear()
            auth._cache.clear()
            for name in cloud.functions:  # warm containers: INIT is not a stage's cost
                cloud.handler(name)
            account = create_account("Benchmark")
            rules = {**QUESTIONS, **EXTRA}
            for label, body in rules.values():
                service.create_segment(account.account_id, {"name": label, "rules": body}, NOW_MS)
            cloud.settle()  # their backfills: nothing to walk yet, so they mark the indexes ready
            needs = index_needs([parse_rules(body) for _, body in rules.values()], NOW_MS)
            profiles = list(population(users, account.account_id, seed))
            started = time.perf_counter()
            count = seed_items(UserItem.Meta.table_name, _stored_items(profiles, needs))
            memory = {name: memory_mb(cloud.template, name) for name in cloud.functions}
            yield World(
                cloud, account, profiles, needs, memory, count, time.perf_counter() - started
            )
    finally:
        clock.reset()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------- counts
def counts(w: World, *, with_memory: bool) -> dict[str, dict[str, float]]:
    """Each question counted once through the real service; its reads and AWS time."""
    from benchmarks.fastmoto import indexed_gsi_queries
    from benchmarks.segments import QUESTIONS
    from insights.services.segments import counts as service
    from insights.services.segments import queries as segs
    from insights.storage import segments as seg_store

    ids = {s.name: s.id for s in seg_store.load_segments(w.account.account_id).segments}
    memory = w.memory["SegmentsFunction"]
    found: dict[str, dict[str, float]] = {}
    with indexed_gsi_queries():
        for key, (label, _) in QUESTIONS.items():
            # A warm container's count: the first also creates the table's
            # client in each reading thread (about a second of CPU, once).
            service.count_users(w.account.account_id, ids[label], NOW_MS, whole=True)
            meter = Meter(w.cloud)
            with meter.installed(), handler_cpu(w.cloud) as calls:
                meter.current = "SegmentsFunction"
                cpu, inside = time.process_time(), calls.inside_s
                answer = service.count_users(w.account.account_id, ids[label], NOW_MS, whole=True)
                own_ms = ((time.process_time() - cpu) - (calls.inside_s - inside)) * 1000
            requests = meter.usage.requests
            queries = sum(n for (_f, _t, op), n in requests.items() if op == "Query")
            others = [(op, n) for (_f, _t, op), n in requests.items() if op != "Query"]
            streams = min(8, int(answer["plan"]["queries"]) or 1)
            # The walk reads its index streams in parallel (8 threads): a round
            # of queries costs one round trip; every other call is in series.
            latency = queries / streams * LATENCY_MS["Query"] + sum(
                n * LATENCY_MS.get(op, OTHER_SERVICE_LATENCY_MS) for op, n in others
            )
            seconds = aws_ms(own_ms, latency, memory) / 1000
            plan = answer["plan"]
            found[key] = {
                "members": answer["count"],
                "items_read": plan["items_read"],
                "rru": sum(meter.usage.rru.values()),
                "queries": queries,
                "cpu_ms": own_ms,
                "latency_ms": latency,
                "seconds": seconds,
                "bytes_per_member": 0.0,
            }
        if with_memory:
            # What a count holds per member when it answers (its seen set, and
            # the members if it keeps them; transient pages come on top):
            # allocations kept by the walk, moto's and the harness's own left out.
            largest = max(found, key=lambda k: found[k]["members"])
            node = segs.get_segment(w.account.account_id, ids[QUESTIONS[largest][0]]).parsed()
            held = retained_bytes(lambda: service.count_walk(node, w.account.account_id, NOW_MS))
            per_member = held / max(1, found[largest]["members"])
            for key in found:
                found[key]["bytes_per_member"] = per_member
    return found


HARNESS_FILES = ("*/moto/*", "*/botocore/*", "*/benchmarks/*", "*/tracemalloc.py")


def retained_bytes(make: Any) -> int:
    """Bytes that what `make()` returns keeps alive, allocated outside moto and the harness."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        kept = make()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    ours = [tracemalloc.Filter(False, pattern) for pattern in HARNESS_FILES]
    diff = after.filter_traces(ours).compare_to(before.filter_traces(ours), "filename")
    del kept
    return max(0, sum(stat.size_diff for stat in diff))


@contextmanager
def local_timeout(cloud: Any, function: str, seconds: float) -> Iterator[None]:
    """The function's timeout as the local run sees it (its budget is wall time here,
    where moto and the meter make every call slower than on AWS)."""
    spec = cloud.functions[function]
    cloud.functions[function] = replace(spec, timeout=int(seconds))
    try:
        yield
    finally:
        cloud.functions[function] = spec


# ------------------------------------------------------------- track
def track(w: World, users: int) -> dict[int, list[float]]:
    """AWS ms per tracking request with 1 and with 10 events (3 requests per user)."""
    from insights import clock

    headers = {"X-Insights-Key": w.account.write_key}
    found: dict[int, list[float]] = {}
    for size in (1, 10):
        clock.freeze(NOW_MS + 5 * MINUTE_MS)
        meter = Meter(w.cloud)
        with meter.installed(), handler_cpu(w.cloud) as calls:
            for request in range(3):
                at = NOW_MS + (5 + request) * MINUTE_MS
                clock.freeze(at)
                for n in range(users):
                    events = [
                        {
                            "uuid": f"track-{size}-{n}",
                            "type": "click",
                            "timestamp": _iso(at - (size - e) * 1000),
                        }
                        for e in range(size)
                    ]
                    body = {"sent_at": _iso(at), "events": events}
                    response = w.cloud.function_url(
                        "TrackFunction", "POST", "/", headers=headers, body=body
                    )
                    assert response.status == 200, response.body
        found[size] = invocations(meter, calls, "TrackFunction", w.memory["TrackFunction"])
    return found


def _iso(ms: int) -> str:
    from insights.domain.core.timefmt import format_time

    return format_time(ms)


# ------------------------------------------------------------- closes
def seed_sessions(w: World, open_sessions: int, seed: int) -> dict[str, int]:
    """Open windows as ingest leaves them: DUE_SHARE due at CLOSE_AT_MS, none due 15 min before."""
    from benchmarks.fastmoto import seed_items
    from insights.domain.core.sessions import Enrichment, Session, Stamped, Window
    from insights.storage.core.models import SessionItem
    from insights.storage.core.records import session_to_item

    rng = random.Random(seed)
    visible = [p for p in w.profiles if p.is_visible(NOW_MS)]
    due = int(open_sessions * DUE_SHARE)
    returning = rng.sample(visible, min(len(visible), int(due * (1 - NEW_SHARE))))
    context = Enrichment(0, "GB", "England", "London", "Chrome", "131")
    items, first = [], 0
    for n in range(open_sessions):
        if n < len(returning):
            uuid, prev_end = returning[n].uuid, returning[n].last_seen
        else:
            uuid, prev_end = f"new-{seed}-{n:07d}", None
            first += n < due
        # Due: last change 31-40 min before the close; the rest 0-20 min before.
        idle = rng.randint(31, 40) if n < due else rng.randint(0, 20)
        seen = CLOSE_AT_MS - idle * MINUTE_MS
        start = seen - rng.randint(1, 20) * MINUTE_MS
        props = {"status": Stamped("free", start)}
        if n < due and rng.random() < CHANGE_SHARE:
            props["plan"] = Stamped("VIP", seen)
        run = Session(
            start=start,
            end=seen,
            interactive=True,
            props=props,
            enrichment=replace(context, ts=seen),
            seen=seen,
        )
        window = Window(runs=(run,), seen=seen, prev_end=prev_end)
        item = session_to_item(f"{w.account.account_id}#{uuid}", window, TIMEOUT_MS, None)
        item.version = 1
        items.append(item.serialize())
    seed_items(SessionItem.Meta.table_name, items)
    sizes = [_item_bytes(i) for i in items]
    return {"open": open_sessions, "due": due, "first": first, "bytes": statistics.mean(sizes)}


def _item_bytes(item: dict[str, Any]) -> int:
    from benchmarks.capacity import item_size

    return item_size(item)


def closes(w: World) -> dict[str, Any]:
    """A scan-only sweeper run, a closing run, and the stream consumers behind it."""
    from insights import clock

    sweeper_env(w.cloud)
    meter = Meter(w.cloud)
    with meter.installed(), handler_cpu(w.cloud) as calls:
        # Nothing is due yet: the first run warms the container (clients) and
        # sizes the scan's segments, the second is the scan alone.
        clock.freeze(CLOSE_AT_MS - 20 * MINUTE_MS)
        w.cloud.invoke("SessionCloseFunction", {})
        clock.freeze(CLOSE_AT_MS - 15 * MINUTE_MS)
        idle = w.cloud.invoke("SessionCloseFunction", {})
        assert idle["closed"] == 0, idle
        clock.freeze(CLOSE_AT_MS)
        # close them all, however slow here
        with local_timeout(w.cloud, "SessionCloseFunction", 3600):
            run = w.cloud.invoke("SessionCloseFunction", {})
        assert run["closed"] == run["due"], run
        # One function sweeps and applies the stream: its first three
        # invocations are the sweeps, the rest the stream batches.
        memory = w.memory["SessionCloseFunction"]
        sweeps = invocations(meter, calls, "SessionCloseFunction", memory)[1:]
        w.cloud.settle()
        expiry = invocations(meter, calls, "SessionCloseFunction", memory)[len(sweeps) + 1 :]
        index = invocations(meter, calls, "SegmentIndexFunction", w.memory["SegmentIndexFunction"])
    requests = meter.usage.requests
    profile_puts = sum(
        n
        for (f, table, op), n in requests.items()
        if f == "SessionCloseFunction" and table == "UsersTable" and op == "PutItem"
    )
    return {
        "idle": idle,
        "run": run,
        "scan_ms": sweeps[0],
        "run_ms": sweeps[1],
        "closed": run["closed"],
        "expiry_ms": expiry,
        "expiry_records": run["closed"],
        "index_ms": index,
        "index_records": profile_puts,
        "wru": {
            f"{function} {table}": units for (function, table), units in meter.usage.wru.items()
        },
    }


def sweeper_env(cloud: Any) -> None:
    """The sweeper's own variables, as Lambda sets them (LocalCloud shares one environment)."""
    from insights.local.template import resolve

    sweeper = cloud.template.resources["SessionCloseFunction"]["Properties"]
    for key, value in sweeper.get("Environment", {}).get("Variables", {}).items():
        os.environ[key] = str(resolve(value, cloud._lookup))


# ------------------------------------------------------------- console
def pending_read(w: World) -> dict[str, float]:
    """The console's read of the account's pending sums: CPU per item, bytes per item."""
    from benchmarks.capacity import item_size
    from insights.services.console import aggregates as console_aggregates
    from insights.storage.console import aggregates

    account_id = w.account.account_id
    raw = w.cloud.dynamodb.query(
        TableName=w.cloud.deployment.tables["AggregatesTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": aggregates.pending_pk(account_id)}},
    )["Items"]
    meter = Meter(w.cloud)
    with meter.installed(), handler_cpu(w.cloud) as calls:
        meter.current = "ConsoleFunction"
        cpu, inside = time.process_time(), calls.inside_s
        for _ in range(5):
            console_aggregates.pending(account_id)
        own_ms = ((time.process_time() - cpu) - (calls.inside_s - inside)) * 1000 / 5
    items = max(1, len(raw))
    return {
        "items": len(raw),
        "us_per_item": own_ms * 1000 / items,
        "bytes_per_item": statistics.mean(item_size(i) for i in raw) if raw else 0.0,
    }


# ------------------------------------------------------------- imports
def import_file(w: World, rows: int, seed: int) -> dict[str, Any]:
    """A CSV setting custom.plan for `rows` existing users, through the imports API."""
    from insights import clock

    rng = random.Random(seed)
    clock.freeze(CLOSE_AT_MS + 10 * MINUTE_MS)
    visible = [p for p in w.profiles if p.is_visible(NOW_MS)]
    chosen = rng.sample(visible, min(rows, len(visible)))
    when = _iso(CLOSE_AT_MS)
    lines = ["uuid,plan,timestamp"] + [
        f"{p.uuid},{rng.choice(('free', 'free', 'pro', 'team', 'VIP'))},{when}" for p in chosen
    ]
    data = ("\r\n".join(lines) + "\r\n").encode()
    headers = {"Authorization": f"Bearer {w.account.secret_key}"}
    meter = Meter(w.cloud)
    with meter.installed(), handler_cpu(w.cloud) as calls:
        started = w.cloud.http(
            "POST", "/v1/imports", headers=headers, body={"filename": "plans.csv", "mapping": {}}
        )
        assert started.status == 201, started.body
        form = started.json()["upload"]
        sent = w.cloud.post_object(form["url"], form["fields"], data, "plans.csv")
        assert sent.status == 204, sent.body
        w.cloud.settle(rounds=200)
        slices = invocations(meter, calls, "ImportFunction", w.memory["ImportFunction"])
        index = invocations(meter, calls, "SegmentIndexFunction", w.memory["SegmentIndexFunction"])
    job = w.cloud.http("GET", f"/v1/imports/{started.json()['id']}", headers=headers).json()
    assert job["status"] == "succeeded", job
    profile_puts = sum(
        n
        for (f, table, op), n in meter.usage.requests.items()
        if f == "ImportFunction" and table == "UsersTable" and op == "PutItem"
    )
    return {
        "rows": job["rows"]["imported"],
        "slices_ms": slices,
        "index_ms": index,
        "index_records": profile_puts,
    }


# ------------------------------------------------------------- all of it
def measure(users: int, *, smoke: bool, seed: int = 1) -> dict[str, Any]:
    """Every stage on one world of `users` users."""
    open_sessions = max(50, users // 5) if smoke else min(100_000, users)
    import_rows = 60 if smoke else min(20_000, users // 5)
    with world(users, seed) as w:
        out: dict[str, Any] = {"users": users, "seeded_items": w.seeded_items}
        out["seeding_s"] = w.seeding_s
        out["counts"] = counts(w, with_memory=True)
        out["sessions"] = seed_sessions(w, open_sessions, seed)
        out["closes"] = closes(w)
        out["pending"] = pending_read(w)
        out["import"] = import_file(w, import_rows, seed)
        out["backfill"] = run_backfill(w, 5.0 if smoke else 40.0)
        # Last: its sessions stay open (a sweeper run after it would close them).
        out["track"] = track(w, 5 if smoke else 100)
        out["profile_bytes"] = profile_sizes()
        out["memory"] = dict(w.memory)
        out["visible"] = sum(1 for p in w.profiles if p.is_visible(NOW_MS))
    return out


def run_backfill(w: World, slice_s: float) -> dict[str, float]:
    """One backfill slice through SegmentIndexFunction, stopped after slice_s of local time."""
    from benchmarks.fastmoto import indexed_gsi_queries
    from insights.services.segments import queries as service

    cloud = w.cloud
    service.create_segment(
        w.account.account_id, {"name": "Came from ads", "rules": BACKFILL_RULES}, CLOSE_AT_MS
    )
    url = cloud.deployment.queues["SegmentBackfillQueue"]
    message = cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    event = {
        "Records": [
            {
                "eventSource": "aws:sqs",
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
            }
        ]
    }
    # The slice stops when less than the handler's reserve is left: give it
    # the reserve plus slice_s, so one slice walks a sample of the account.
    cloud.handler("SegmentIndexFunction")
    reserve_s = sys.modules["insights_fn_SegmentIndexFunction"].RESERVE_MS / 1000
    meter = Meter(cloud)
    with (
        local_timeout(cloud, "SegmentIndexFunction", reserve_s + slice_s),
        indexed_gsi_queries(),  # moto walks the whole table per GSI page otherwise
        meter.installed(),
        handler_cpu(cloud) as calls,
    ):
        cloud.invoke("SegmentIndexFunction", event)
        (ms,) = invocations(meter, calls, "SegmentIndexFunction", w.memory["SegmentIndexFunction"])
    reads = meter.usage.requests
    users = (
        sum(n for (f, table, op), n in reads.items() if table == "UsersTable" and op == "GetItem")
        / 2
    )  # reconcile reads each profile twice (before and after writing)
    return {"users": users, "ms": ms}


def profile_sizes() -> dict[str, float]:
    """Bytes of a stored profile: without custom attributes, and per attribute added."""
    from benchmarks.capacity import item_size
    from insights.domain.core.profile import CustomValue, Profile
    from insights.domain.segments.indexing import Entry
    from insights.storage.core.records import profile_to_item
    from insights.storage.segments import entry_item

    def size(attributes: int) -> int:
        profile = Profile(
            account_id="acct_0123456789abcdef",
            uuid="2f1c9a4e-7b3d-4c51-9e8a-6d0f2b7c3a19",
            created_at=NOW_MS,
            first_seen=NOW_MS,
            last_seen=NOW_MS + 600_000,
            total_sessions=12,
            total_duration_ms=3_600_000,
            country="GB",
            region="England",
            city="London",
            browser_name="Chrome",
            browser_version="131",
            custom={
                f"attribute_{n:02d}": CustomValue(f"value {n}", NOW_MS, "event")
                for n in range(attributes)
            },
        )
        item = profile_to_item(profile, None)
        item.version = 7
        return item_size(item.serialize())

    entry = Entry(
        "idx#custom.plan",
        "acct_0123456789abcdef#3#11:custom.plan#s:free",
        "acct_0123456789abcdef#3#11:custom.plan",
        NOW_MS,
        "free",
        NOW_MS,
    )
    stored = entry_item("acct_0123456789abcdef#2f1c9a4e-7b3d-4c51-9e8a-6d0f2b7c3a19", entry)
    return {
        "base": float(size(0)),
        "per_attribute": (size(10) - size(0)) / 10,
        "entry": float(item_size(stored.serialize())),
    }


def rate(count: float, durations_ms: list[float]) -> float:
    """Per second of AWS time: `count` done over the invocations' summed durations."""
    total = sum(durations_ms)
    return count / (total / 1000) if total > 0 else 0.0


def per_invocation_rates(records: int, durations_ms: list[float], batch: int) -> list[float]:
    """Records/s of each invocation, full batches assumed in order (the last takes the rest)."""
    rates = []
    left = records
    for ms in durations_ms:
        n = min(batch, left)
        left -= n
        if n and ms > 0:
            rates.append(n / (ms / 1000))
    return rates
