"""Part 8: profiles for SQL (issue 29): export cost, file size, Athena scan, `insights sql` time.

Two measurements on the demo's traffic (local/demo.py: two weeks of
sessions, browsers, countries and plan upgrades):

- **the export**, in process on LocalCloud, metered (benchmarks/meter.py):
  the demo's users plus the spec's four questions as segments (their index
  entries are items the scan reads too), then one on-demand export. From
  it: read units, S3 requests and the function's time per user, priced
  (prices.json) as dollars per million users exported; the gzipped bytes
  per user, and from them the bytes an Athena query of the four questions
  scans for 1,000,000 users (JSON is read whole: the query scans the
  partition's compressed bytes) - an estimate from the size at this scale,
  stated as such;
- **`insights sql`**, as a person runs it: `insights serve` and
  `insights demo` as processes, one export, then the four questions through
  the command, wall time of the whole process (Python's start, DuckDB, the
  files' mirror, the query).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from benchmarks.core import Config, Figure, PartResult, Table, fmt
from benchmarks.localstack import benchmark_stack
from benchmarks.meter import HARNESS, Meter, Usage
from benchmarks.pricing import load_prices

NAME = "exports"
TITLE = "Part 8: profiles for SQL - export cost and size, Athena scan, insights sql time"
MILLION = 1_000_000
EXPORT_MEMORY_GB = 1.0  # ExportFunction's MemorySize (template.yaml)


class LocalApi:
    """local/demo.py's Api, answered by LocalCloud in process (the clock is frozen)."""

    def __init__(self, cloud: Any, account: Any) -> None:
        self.cloud = cloud
        self.account = account

    def request(self, method: str, path: str, body: Any = None, *, secret: bool = True) -> Any:
        from insights import clock

        if path.startswith("/_local/clock"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            clock.freeze(clock.now_ms() + int(float(query["advance"][0]) * 1000))
            return {"now_ms": clock.now_ms()}
        if path == "/_local/tick":
            self.cloud.run_schedules(["SessionCloseFunction"])
            self.cloud.settle()
            return {}
        key = self.account.secret_key if secret else self.account.write_key
        headers = {"Authorization": f"Bearer {key}"} if secret else {"X-Insights-Key": key}
        response = self.cloud.http(method, path, headers=headers, body=body)
        if response.status == 404:
            return None
        assert response.status < 400, (method, path, response.status, response.body)
        return response.json()


def measure_export(users: int) -> dict[str, Any]:
    from benchmarks.segments import QUESTIONS
    from insights.local.demo import run_demo

    with benchmark_stack() as (cloud, account):
        api = LocalApi(cloud, account)
        run_demo(api, users=users, show=0)
        for label, rules in QUESTIONS.values():
            api.request("POST", "/v1/segments", {"name": label, "rules": rules})
        cloud.settle()
        with Meter(cloud).installed() as meter:
            job = api.request("POST", "/v1/exports")
            cloud.settle()
        done = api.request("GET", f"/v1/exports/{job['id']}")
        assert done["status"] == "succeeded", done
        bucket = cloud.deployment.buckets["ExportsBucket"]
        sizes = [
            o["Size"]
            for o in cloud.s3.list_objects_v2(Bucket=bucket, Prefix="users/").get("Contents", [])
        ]
        raw = cloud.dynamodb.scan(TableName="UsersTable")["Items"]
        from benchmarks.capacity import item_size

        return {
            "table_bytes": sum(item_size(item) for item in raw),
            "cpu_per_user": cpu_per_user(raw, 20),
            "usage": meter.usage,
            "exported": done["users"],
            "bytes": sum(sizes),
            "files": len(sizes),
            "table_items": len(raw),
        }


def cpu_per_user(cloud_items: list[dict[str, Any]], rounds: int) -> float:
    """Seconds of CPU the export spends per user: decode, row, JSON line, gzip (this machine)."""
    import zlib

    from insights.domain.exports import line, row
    from insights.storage.exports import profile_of

    profiles = [i for i in cloud_items if i["sk"]["S"] == "profile"]
    started = time.process_time()
    for _ in range(rounds):
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        for raw in profiles:
            profile = profile_of(raw)
            values = row(profile, profile.last_seen or 0)
            if values is not None:
                packer.compress(line(values))
        packer.flush()
    return (time.process_time() - started) / (rounds * len(profiles))


def export_cost(measured: dict[str, Any]) -> dict[str, float]:
    """Dollars per million users exported: what grows with users (the scan's read units,
    the function's CPU) at a million, plus what one export of one account costs whatever
    its size (files, job record, queue messages, the invocations)."""
    prices = load_prices()
    usage: Usage = measured["usage"]
    fn = "ExportFunction"
    users = measured["exported"]
    rru = sum(units for (function, _t), units in usage.rru.items() if function == fn)
    wru = sum(units for (function, _t), units in usage.wru.items() if function == fn)
    s3 = sum(
        n
        for (function, service, _op), n in usage.other_calls.items()
        if function == fn and service == "s3"
    )
    sqs = sum(n for (_f, service, _op), n in usage.other_calls.items() if service == "sqs")
    # Lambda gives 1,769 MB a whole vCPU: at 1,024 MB a CPU-second lasts 1.73 s.
    gb_seconds_per_cpu_second = 1769 / 1024 * EXPORT_MEMORY_GB
    lam = prices["lambda"]
    per_user = {
        "scan read units": rru / users * prices["dynamodb"]["read_request_unit_per_million"],
        "function CPU": measured["cpu_per_user"]
        * gb_seconds_per_cpu_second
        * lam["arm64_gb_second"]
        * MILLION,
    }
    fixed = {
        "job record writes": wru * prices["dynamodb"]["write_request_unit_per_million"] / MILLION,
        "S3 requests": s3 * prices["s3"]["put_per_thousand"] / 1000,
        "SQS requests": sqs * prices["sqs"]["requests_per_million"] / MILLION,
        "invocations": usage.functions[fn].invocations * lam["requests_per_million"] / MILLION,
    }
    return {**per_user, **fixed, "rru_per_user": rru / users}


# ------------------------------------------------------------ insights sql
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(home: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INSIGHTS_HOME": str(home), "POWERTOOLS_LOG_LEVEL": "WARNING"}
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "insights.cli.main", *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        **kwargs,
    )


def measure_cli(users: int, runs: int) -> dict[str, Any]:
    """Wall seconds of `insights sql` answering the four questions on the demo's data."""
    from insights.domain.exports import four_questions

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {**os.environ, "INSIGHTS_HOME": str(home), "POWERTOOLS_LOG_LEVEL": "WARNING"}
        env.pop("AWS_ENDPOINT_URL", None)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "insights.cli.main", "serve", "--port", str(port), "--quiet"],
            cwd=home,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert server.stdout is not None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                line = server.stdout.readline()
                if not line or line.startswith("Ctrl-C stops it."):
                    break
            state = json.loads((home / "local.json").read_text())
            _cli(home, "demo", "--users", str(users), "--show", "0")
            _cli(home, "sql", "--refresh", "SELECT count(*) FROM insights.users")
            account = state["account"]["account_id"]
            latest = _cli(home, "sql", "--json", "SELECT max(dt) AS dt FROM insights.users")
            dt = json.loads(latest.stdout.splitlines()[0])["dt"]
            sql = four_questions("insights.users", account, dt)
            seconds, answer = [], ""
            for _ in range(runs):
                started = time.perf_counter()
                answer = _cli(home, "sql", "--json", sql).stdout
                seconds.append(time.perf_counter() - started)
            return {"seconds": seconds, "answer": json.loads(answer.splitlines()[0])}
        finally:
            server.send_signal(2)
            try:
                server.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()


def run(config: Config) -> PartResult:
    users = 40 if config.smoke else 200
    measured = measure_export(users)
    cost = export_cost(measured)
    exported = measured["exported"]
    per_user_bytes = measured["bytes"] / exported
    per_million = sum(v for k, v in cost.items() if k != "rru_per_user")
    # At a million users a scan page (1 MB) holds ~1,400 users: the rounding of
    # small pages to 4 KB that this small table pays is gone.
    prices = load_prices()["dynamodb"]
    rru_at_scale = measured["table_bytes"] / exported / 4096 * 0.5
    at_scale = per_million - cost["scan read units"]
    at_scale += rru_at_scale * prices["read_request_unit_per_million"]
    scanned_mb = per_user_bytes * MILLION / 1e6
    cli = measure_cli(users, 3 if config.smoke else config.runs)
    figures = [
        Figure(
            "exports.usd_per_million_users",
            f"Export: dollars per million users, priced from this export of {exported} users",
            "$",
            [per_million],
        ),
        Figure(
            "exports.usd_per_million_users_at_scale",
            "Export: the same at a million users (read units from the table's bytes per user, "
            "no small-page rounding)",
            "$",
            [at_scale],
            goal=0.01,
        ),
        Figure(
            "exports.gz_bytes_per_user",
            "Export: gzipped JSON Lines bytes per user",
            "B",
            [per_user_bytes],
        ),
        Figure(
            "exports.athena_mb_four_questions_1m",
            "Athena: MB one query of the four questions scans over 1M users "
            f"(estimate: bytes per user at {exported} users x 1,000,000)",
            "MB",
            [scanned_mb],
            goal=100,
        ),
        Figure(
            "exports.insights_sql_seconds",
            f"insights sql: the four questions on the demo's {users} users, whole command",
            "s",
            cli["seconds"],
            goal=1.0,
        ),
    ]
    rows = [[key, fmt(value)] for key, value in cost.items() if key != "rru_per_user"]
    rows.append(["(read units per user)", fmt(cost["rru_per_user"])])
    rows.append(["(CPU microseconds per user, this machine)", fmt(measured["cpu_per_user"] * 1e6)])
    tables = [
        Table(
            f"One export of {exported} users ({measured['table_items']} UsersTable items, "
            f"{measured['files']} files, {measured['bytes']} bytes): dollars for a million users",
            ["item", "$"],
            rows,
        ),
        Table(
            "The four questions through insights sql (one run)",
            ["question", "users"],
            [[k, str(v)] for k, v in cli["answer"].items()],
        ),
    ]
    result = PartResult(NAME, TITLE, figures, tables)
    result.parameters = {"demo_users": users, "harness_calls_left_out": HARNESS}
    result.notes = [
        "The export reads UsersTable with a parallel, eventually consistent Scan: 0.5 RRU per "
        "4 KB read, billed on the bytes of every item read (profiles, and the index entries "
        "the account's segments keep), not per item.",
        "Function time is the run's CPU outside AWS calls plus the modeled latency of its "
        "calls (as part 1 prices Lambda), at ExportFunction's 1,024 MB.",
        "Athena charges $5 per TB scanned with a 10 MB minimum per query; a gzipped JSON "
        "partition is read whole, so the four questions in one query scan the partition once.",
    ]
    return result
