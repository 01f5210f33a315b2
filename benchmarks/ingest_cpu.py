"""Part 2: ingest CPU per event, and cold-start import time.

CPU: the real track handler (functions/track/app.py, Powertools resolver,
logger and metrics included) is called with API Gateway HTTP API v2 events
of 1, 10 and 100 events for one user, with warm caches and the storage
functions the ingest path calls (sessions, profiles, commit, account lookup)
replaced by an in-memory dict: the measure is the handler's own CPU, not
DynamoDB's latency or pynamodb's serialisation. Each request carries new
events later in time for one of 200 users, so each takes the common path
(extend the open session, one write), not the duplicate one.

Cold start: the import time of each function's handler module in a fresh
interpreter (imported as Lambda's runtime imports it), as a ratio to
``import boto3`` in another fresh interpreter of the same run (the AWS SDK
every Python Lambda may import). The project's own modules are compiled to
bytecode first, as the layer ships them (see ``compile_project``), so both
sides load cached bytecode.

Both run in subprocesses with the environment the template gives the
functions, so nothing else the suite imported or configured leaks in.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.core import Config, Figure, PartResult, Table, fmt

NAME = "ingest_cpu"
TITLE = "Part 2: ingest CPU per event (track handler, storage stubbed) and cold start"
ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 10, 100)
USERS = 200
T0_MS = 1_795_867_200_000  # 2026-11-28T12:00:00Z


def lambda_env() -> dict[str, str]:
    """The environment the template gives every function, with local table names."""
    from insights.local.template import Template, resolve

    template = Template.load(ROOT / "template.yaml")
    params = template.parameter_defaults()
    env = dict(os.environ)
    spec = next(iter(template.functions()))
    for key, value in spec.environment.items():
        env[key] = str(resolve(value, lambda name, _attr: params.get(name, name)))
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "GEOIP_DATABASE_PATH": "",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "core")]),
        }
    )
    env.pop("POWERTOOLS_METRICS_DISABLED", None)
    return env


# ------------------------------------------------------------ CPU worker
def _http_event(body: str, received_ms: int, key: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /v1/events",
        "rawPath": "/v1/events",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-insights-key": key},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": "POST",
                "path": "/v1/events",
                "protocol": "HTTP/1.1",
                "sourceIp": "81.2.69.160",
                "userAgent": "bench",
            },
            "requestId": "bench",
            "routeKey": "POST /v1/events",
            "stage": "$default",
            "time": "28/Nov/2026:12:00:00 +0000",
            "timeEpoch": received_ms,
        },
        "body": body,
        "isBase64Encoded": False,
    }


class _Context:
    function_name = "TrackFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:TrackFunction"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def _stub_storage() -> dict[str, Any]:
    """Replace the storage calls of the track path with an in-memory table."""
    from insights.domain.core.accounts import AccountSettings
    from insights.storage.core import accounts as account_store
    from insights.storage.core import store
    from insights.storage.core.accounts import Account
    from insights.storage.core.records import SessionRecord

    sessions: dict[str, SessionRecord] = {}
    writes: dict[str, Any] = {"count": 0, "windows": []}
    account = Account("bench", "Bench", T0_MS, AccountSettings())

    def commit(batch: list[Any]) -> None:
        writes["count"] += 1
        for write in batch:
            if isinstance(write, store.PutSession):
                writes["windows"].append(write)  # sized after the timed loop
                version = (write.expected_version or 0) + 1
                sessions[write.pk] = SessionRecord(
                    write.pk, write.window, write.timeout_ms, version
                )
            elif isinstance(write, store.DeleteSession):
                sessions.pop(write.pk, None)

    store.get_sessions = lambda pks, consistent=False: {
        p: sessions[p] for p in pks if p in sessions
    }
    store.get_profiles = lambda pks, consistent=False: {}
    store.get_profile = lambda pk, consistent=True: None
    store.get_session = lambda pk, consistent=True: sessions.get(pk)
    store.commit = commit
    account_store.find_key = lambda key: ("bench", "write")
    account_store.get_account = lambda account_id: account
    # Identity settings: one cached read per account (services/core/identity.py), like keys.
    from insights.domain.core.identity import IdentitySettings
    from insights.storage.core import identity as identity_store

    identity_store.load = lambda account_id, consistent=False: IdentitySettings()
    account_store.load_with_identity = lambda account_id: (account, IdentitySettings())
    return writes


def cpu_worker(batch: int, calls: int, repeats: int) -> dict[str, Any]:
    import contextlib
    import importlib.util

    from insights import clock
    from insights.domain.core.timefmt import format_time
    from insights.local.demo import USER_AGENTS

    writes = _stub_storage()
    spec = importlib.util.spec_from_file_location("track_app", ROOT / "functions/track/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.handler
    context = _Context()
    user_agent = USER_AGENTS[0]
    step_ms = 1_000

    def event_for(i: int) -> tuple[dict[str, Any], int]:
        # Each user's requests are USERS * step_ms apart: one open session per user.
        received = T0_MS + i * step_ms
        uuid = f"user-{i % USERS:04d}"
        events = [
            {
                "uuid": uuid,
                "type": "click",
                "timestamp": format_time(received - (batch - j) * 5),
                **({"user_properties": {"plan": "pro", "role": "admin"}} if j == 0 else {}),
            }
            for j in range(batch)
        ]
        body = json.dumps(
            {
                "sent_at": format_time(received),
                "context": {"ip": "81.2.69.160", "user_agent": user_agent},
                "events": events,
            }
        )
        # A key of the shape new_key makes (others are refused before a lookup).
        return _http_event(body, received, "wk_" + "b" * 32), received

    total = (repeats + 1) * calls
    prepared = [event_for(i) for i in range(total)]
    samples: list[float] = []
    walls: list[float] = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for r in range(repeats + 1):  # the first round warms caches and is not kept
            # Process CPU time, not wall time: the machine is shared, and the
            # figure is the handler's CPU (the loop adds well under 1 us a call).
            started, wall = time.process_time_ns(), time.perf_counter_ns()
            for event, received in prepared[r * calls : (r + 1) * calls]:
                clock.freeze(received)
                response = handler(event, context)
                assert response["statusCode"] == 200, response
            if r:
                samples.append((time.process_time_ns() - started) / 1000 / (calls * batch))
                walls.append((time.perf_counter_ns() - wall) / 1000 / (calls * batch))
    return {
        "us_per_event": samples,
        "wall_us_per_event": walls,
        "writes_per_request": writes["count"] / total,
        "session_item_bytes_max": max(_item_bytes(w) for w in writes["windows"]),
    }


def _item_bytes(write: Any) -> int:
    from benchmarks.capacity import item_size
    from insights.storage.core.records import session_to_item

    item = session_to_item(write.pk, write.window, write.timeout_ms, write.expected_version)
    return item_size(item.serialize())


def window_shapes() -> dict[str, int]:
    """Session item bytes of the window shapes ingest writes, common to largest.

    Built from the domain's own fold (no handler): one run as a browser's
    session makes it; the offline flush of issue 10 (40 events 19 minutes
    apart, three days old: two runs); and the bound (MAX_RUNS runs, each with
    two properties, SENT_MEMORY remembered sent_at offsets).
    """
    from insights.domain.core.events import Event
    from insights.domain.core.sessions import MAX_RUNS, SENT_MEMORY, Enrichment, fold
    from insights.domain.core.timefmt import DAY_MS, HOUR_MS, MINUTE_MS
    from insights.storage.core.store import PutSession

    place = Enrichment(0, "United Kingdom", "England", "London", "Chrome", "120.0.6099.109")
    pk = "acc_0123456789abcdef#user-0001"
    timeout = 30 * MINUTE_MS

    def window(batches: list[list[Event]], sent: bool) -> int:
        current = None
        for n, events in enumerate(batches):
            now = T0_MS + n * 1000
            result = fold(
                current,
                events,
                last_closed_end=None,
                timeout_ms=timeout,
                enrichment=place,
                now_ms=now,
                sent=(now - 40, 40) if sent else None,
            )
            current = result.window
        assert current is not None
        return _item_bytes(PutSession(pk, current, timeout, 41))

    def ev(ts: int, **props: Any) -> Event:
        return Event(0, "user-0001", ts, True, dict(props))

    browser = [[ev(T0_MS + n * 60_000, plan="pro", role="admin")] for n in range(20)]
    start = T0_MS - 3 * DAY_MS
    flush = [ev(start + n * 19 * MINUTE_MS) for n in range(40)]
    bound = [
        [ev(start + r * 2 * HOUR_MS + k * MINUTE_MS, plan="pro", role="admin") for k in range(3)]
        for r in range(MAX_RUNS)
    ] + [[ev(start)] for _ in range(SENT_MEMORY)]
    return {
        "browser session (1 run, 2 properties, 8 sent_at)": window(browser, True),
        "offline flush, batches of 10 (2 runs)": window(
            [flush[n : n + 10] for n in range(0, 40, 10)], True
        ),
        f"bound ({MAX_RUNS} runs x 2 properties, {SENT_MEMORY} sent_at)": window(bound, True),
    }


# -------------------------------------------------------- cold-start worker
# The handler is imported as Lambda's runtime does: its directory (the task
# root) first on sys.path, then importlib.import_module of the handler module.
# Loading the file with spec_from_file_location instead (as this part did)
# cost SegmentIndex and Track 30-50 ms more CPU, spent in the same regex
# compilation of urllib3.util.url, for a reason not pinned down: Lambda never
# loads a handler that way.
IMPORT_SNIPPET = """
import importlib, json, os, sys, time
target = sys.argv[1]
if target != "boto3":
    sys.path.insert(0, os.path.dirname(target))
started = time.process_time()
if target == "boto3":
    import boto3
else:
    importlib.import_module(os.path.splitext(os.path.basename(target))[0])
print(json.dumps({"seconds": time.process_time() - started, "modules": len(sys.modules)}))
"""


def _import_seconds(target: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_SNIPPET, target],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def compile_project() -> None:
    """Bytecode for the project's modules, for the interpreter that measures.

    Site-packages (boto3, botocore, Powertools, pynamodb) already hold bytecode
    and the layer build ships it for the Lambda runtime (layers/core/Makefile),
    while PYTHONDONTWRITEBYTECODE, if set, would leave insights and the handlers
    compiled from source on every import: a cost Lambda does not pay. This
    writes the usual __pycache__ files (git-ignored); a fresh interpreter reads
    them whatever PYTHONDONTWRITEBYTECODE says.
    """
    import compileall

    for path in (ROOT / "layers" / "core" / "insights", ROOT / "functions"):
        if not compileall.compile_dir(str(path), quiet=1):
            raise RuntimeError(f"could not compile {path}")


def handler_files() -> dict[str, Path]:
    from insights.local.template import Template

    template = Template.load(ROOT / "template.yaml")
    return {
        spec.logical_id: spec.code_dir / f"{spec.handler.rpartition('.')[0]}.py"
        for spec in template.functions()
    }


# ------------------------------------------------------------------- part
def run(config: Config) -> PartResult:
    env = lambda_env()
    runs = 2 if config.smoke else config.runs
    calls = {1: 20, 10: 5, 100: 2} if config.smoke else {1: 2000, 10: 400, 100: 60}
    figures: list[Figure] = []
    walls: dict[int, list[float]] = {}
    item_bytes: dict[int, int] = {}
    for batch in BATCHES:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.ingest_cpu",
                "cpu",
                str(batch),
                str(calls[batch]),
                str(runs),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        data = json.loads(out.stdout.strip().splitlines()[-1])
        figures.append(
            Figure(
                f"ingest_cpu.us_per_event_batch_{batch}",
                f"Track handler CPU per event, batch of {batch}",
                "µs",
                data["us_per_event"],
                goal=50.0 if batch == 10 else None,
            )
        )
        walls[batch] = data["wall_us_per_event"]
        item_bytes[batch] = data["session_item_bytes_max"]
        figures.append(
            Figure(
                f"ingest_cpu.writes_per_request_batch_{batch}",
                f"DynamoDB writes per (request, user), batch of {batch}",
                "writes",
                [data["writes_per_request"]],
                goal=1.0,
            )
        )
    shapes = window_shapes()
    figures.append(
        Figure(
            "ingest_cpu.session_item_bytes_bound",
            "Session item size at the window's bound (largest shape)",
            "bytes",
            [float(max(shapes.values()))],
            goal=1024.0,
        )
    )
    files = handler_files()
    compile_project()
    cold_runs = 1 if config.smoke else config.runs
    boto3_s: list[float] = []
    per_function: dict[str, list[float]] = {name: [] for name in files}
    ratios: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(cold_runs):
        for name, path in files.items():
            # Each handler import is paired with an import boto3 right before it, so a
            # load change on this shared machine hits both sides of the ratio alike.
            base = _import_seconds("boto3", env)
            seconds = _import_seconds(str(path), env)
            boto3_s.append(base)
            per_function[name].append(seconds)
            ratios[name].append(seconds / base)
    figures.append(
        Figure(
            "cold_start.import_boto3_ms",
            "import boto3 (CPU time)",
            "ms",
            [s * 1000 for s in boto3_s],
        )
    )
    for name in files:
        figures.append(
            Figure(
                f"cold_start.{name}_ratio",
                f"{name} handler import / import boto3",
                "x",
                ratios[name],
                goal=1.5,
            )
        )
    result = PartResult(NAME, TITLE, figures)
    result.parameters = {"calls_per_run": calls, "runs": runs, "cold_start_runs": cold_runs}
    result.tables = [
        Table(
            "Handler import CPU time (fresh interpreter)",
            ["function", "median ms", "min ms", "max ms", "x boto3"],
            [
                [
                    name,
                    fmt(statistics.median(per_function[name]) * 1000),
                    fmt(min(per_function[name]) * 1000),
                    fmt(max(per_function[name]) * 1000),
                    fmt(statistics.median(ratios[name])),
                ]
                for name in files
            ],
        )
    ]
    result.tables.append(
        Table(
            "Track handler wall time per event (for comparison; inflated when the machine is busy)",
            ["batch", "median µs", "min µs", "max µs"],
            [[b, fmt(statistics.median(w)), fmt(min(w)), fmt(max(w))] for b, w in walls.items()],
        )
    )
    result.tables.append(
        Table(
            "Session item size (DynamoDB item bytes; a write costs 1 WRU per started KB)",
            ["shape", "bytes"],
            [[f"track handler, batch of {b}, largest written", n] for b, n in item_bytes.items()]
            + [[shape, n] for shape, n in shapes.items()],
        )
    )
    result.notes = [
        "CPU figures are process CPU time (user + system), which a busy shared machine "
        "inflates far less than wall time. They include Powertools' event parsing, routing, "
        "logger and metrics (EMF printed to /dev/null); the storage calls are in-memory stubs.",
        "Cold start: CPU time of importing the handler module and what it imports, as "
        "Lambda's runtime imports it (task root on sys.path, importlib.import_module), not "
        "interpreter start-up or Lambda's own INIT work. The project's modules are compiled "
        "to bytecode first (compileall, this interpreter), as site-packages already are and "
        "as the layer build ships them: both sides of the ratio load cached bytecode.",
    ]
    return result


def main(argv: list[str]) -> None:
    if argv[:1] == ["cpu"]:
        batch, calls, repeats = (int(a) for a in argv[1:4])
        print(json.dumps(cpu_worker(batch, calls, repeats)))
        return
    raise SystemExit("usage: python -m benchmarks.ingest_cpu cpu BATCH CALLS REPEATS")


if __name__ == "__main__":
    main(sys.argv[1:])
