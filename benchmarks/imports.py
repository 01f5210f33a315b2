"""Part 5: file imports.

Rows per second: a generated CSV (uuid, typed columns, timestamps, ~2% bad
rows) is produced as a stream, a chunk at a time, and pushed through the
real reader (``insights.domain.imports.filerows``), the header plan and row
verdicts (``insights.domain.imports.files``) and the real write planning of
``insights.services.core.attributes.apply_rows`` (rows grouped by user per batch,
merged, ``apply_import``) with storage stubbed: the profile read answers
"no profile" and the conditional put does nothing. CPU time
(``time.process_time``).

Writes per row: real imports through the local cloud on moto in-process
(the upload API, the S3 notification, the SQS slices), metered at botocore.
The same file is imported twice: the second time every row is unchanged.

Peak memory: the streaming path above, in a fresh interpreter per run, over
a generated gzipped file of 10,000 and of 1,000,000 rows (written once into
benchmarks/out/, which git ignores); peak RSS from ``ru_maxrss``.
"""

from __future__ import annotations

import gzip
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.core import Config, Figure, PartResult, Table, fmt

NAME = "imports"
TITLE = "Part 5: imports (parse, validate, plan; writes per row; peak memory)"
ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"
T0_MS = 1_795_867_200_000  # 2026-11-28T12:00:00Z, as the tests' frozen clock
HEADER = "uuid,plan,seats,mrr,trial_ends,active,country,timestamp\r\n"
MAPPING = {"types": {"seats": "number", "mrr": "number", "trial_ends": "date", "active": "boolean"}}
PLANS = ("free", "starter", "team", "business", "enterprise")
COUNTRIES = ("GB", "US", "DE", "FR", "NL", "ES", "IT", "JP", "BR", "IN")
BATCH_ROWS = 100  # IMPORT_BATCH_ROWS' default: rows per profile read in the apply pass


def _row(rng: random.Random, users: int) -> str:
    """One data row; ~2% are bad in one of the ways real exports are."""
    user = rng.randrange(users)
    uuid = _uuid(user)
    ts = T0_MS - rng.randrange(400 * 86_400_000)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts / 1000))
    day = time.strftime("%Y-%m-%d", time.gmtime(ts / 1000 + 30 * 86400))
    cells = [
        uuid,
        rng.choice(PLANS),
        str(rng.randint(1, 500)),
        f"{rng.uniform(0, 5000):.2f}",
        day if rng.random() < 0.7 else "",
        rng.choice(("true", "false", "yes", "no")),
        rng.choice(COUNTRIES),
        when,
    ]
    bad = rng.random()
    if bad < 0.005:
        cells[0] = ""  # empty uuid
    elif bad < 0.01:
        cells[2] = "n/a"  # not a number
    elif bad < 0.015:
        cells[4] = "31/12/2026"  # not an ISO date
    elif bad < 0.02:
        cells[7] = "2099-01-01T00:00:00Z"  # far in the future
    elif bad < 0.025:
        cells[6] = '"Korea, Republic of"'  # quoted, with a comma (a good row)
    return ",".join(cells) + "\r\n"


def _uuid(user: int) -> str:
    h = f"{(user * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


class CsvStream:
    """A CSV file of `rows` data rows, generated as it is read (never whole in memory)."""

    def __init__(self, rows: int, seed: int, users: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._left = rows
        self._users = users or max(1, rows * 4 // 5)  # some users have several rows
        self._buffer = HEADER.encode()

    def read(self, size: int = -1, /) -> bytes:
        want = 1 << 62 if size < 0 else size
        while len(self._buffer) < want and self._left:
            lines = [_row(self._rng, self._users) for _ in range(min(self._left, 256))]
            self._left -= len(lines)
            self._buffer += "".join(lines).encode()
        out, self._buffer = self._buffer[:want], self._buffer[want:]
        return out


def write_file(path: Path, rows: int, seed: int) -> Path:
    """The generated CSV into `path` (gzipped if it ends in .gz), streamed; reused if there."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    stream = CsvStream(rows, seed)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(partial, "wb") as out:
        while chunk := stream.read(1 << 20):
            out.write(chunk)
    partial.rename(path)
    return path


@contextmanager
def storage_stubbed() -> Iterator[dict[str, int]]:
    """apply_rows with the profile read answering nothing and the put doing nothing."""
    from insights.services.core import attributes as service

    counts = {"reads": 0, "puts": 0}

    def get_profiles(pks: Any, *, consistent: bool = False) -> dict[str, Any]:
        counts["reads"] += 1
        return {}

    def commit(writes: list[Any]) -> None:
        counts["puts"] += len(writes)

    class NoMetrics:  # a Lambda flushes its metrics per invocation; this process never ends
        def add_metric(self, **_: Any) -> None:
            pass

    saved = (service.store.get_profiles, service.store.commit, service.metrics)
    service.store.get_profiles, service.store.commit = get_profiles, commit  # type: ignore[assignment]
    service.metrics = NoMetrics()  # type: ignore[assignment]
    try:
        yield counts
    finally:
        service.store.get_profiles, service.store.commit, service.metrics = saved  # type: ignore[assignment]


def pipeline(raw: Any) -> dict[str, int]:
    """Reader, header plan, row verdicts and write planning, as an apply slice does them."""
    from insights.domain.core.attributes import Rejection
    from insights.domain.imports.filerows import is_blank, open_stream, records
    from insights.domain.imports.files import check_csv_row, parse_mapping, plan_csv
    from insights.services.core.attributes import apply_rows

    stream, _ = open_stream(raw)
    rows = records(stream, "csv")
    header = next(rows)
    plan = plan_csv(header.data, parse_mapping(MAPPING))
    read = rejected = 0
    good: list[Any] = []
    with storage_stubbed() as counts:
        for record in rows:
            if is_blank(record):
                continue
            read += 1
            verdict = check_csv_row(record.row, record.data, plan, import_ts=T0_MS, now_ms=T0_MS)
            if isinstance(verdict, Rejection):
                rejected += 1
            else:
                good.append(verdict)
            if read % BATCH_ROWS == 0:
                apply_rows("acct", good, "csv")
                good = []
        apply_rows("acct", good, "csv")
    return {"read": read, "rejected": rejected, "puts": counts["puts"], "reads": counts["reads"]}


def rows_per_second(rows: int, seed: int) -> tuple[float, dict[str, int]]:
    """CPU rows/s over a plain CSV written beforehand (the generator's own time excluded)."""
    path = write_file(OUT / f"imports-cpu-{rows}-{seed}.csv", rows, seed)
    with open(path, "rb") as raw:
        started = time.process_time()
        counts = pipeline(raw)
        return rows / (time.process_time() - started), counts


# ------------------------------------------------------------------ writes
def metered_imports(rows: int, seed: int) -> dict[str, float]:
    """Import one generated file twice through the local cloud; write requests of each."""
    import os

    from moto import mock_aws

    from benchmarks.fastmoto import light_transaction_backups
    from benchmarks.meter import Meter
    from insights import clock
    from insights.local.cloud import LocalCloud
    from insights.services.core import auth
    from insights.services.core.accounts import create_account

    stream = CsvStream(rows, seed, users=rows * 100)  # ~1% of rows share a user
    data = b"".join(iter(lambda: stream.read(1 << 16), b""))  # small: moto holds it anyway
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    clock.freeze(T0_MS)
    try:
        with mock_aws(), light_transaction_backups():
            cloud = LocalCloud().deploy()
            auth._cache.clear()
            account = create_account("Benchmark")
            headers = {"Authorization": f"Bearer {account.secret_key}"}
            figures: dict[str, float] = {}
            for label in ("first", "again"):
                with Meter(cloud).installed() as meter:
                    body = {"filename": f"{label}.csv", "mapping": MAPPING}
                    started = cloud.http("POST", "/v1/imports", headers=headers, body=body)
                    assert started.status == 201, started.body
                    form = started.json()["upload"]
                    sent = cloud.post_object(form["url"], form["fields"], data, f"{label}.csv")
                    assert sent.status == 204, sent.body
                    cloud.settle()
                job = cloud.http(
                    "GET", f"/v1/imports/{started.json()['id']}", headers=headers
                ).json()
                assert job["status"] in ("succeeded", "partially_succeeded"), job
                usage = meter.usage
                profile_puts = sum(
                    n
                    for (f, table, op), n in usage.requests.items()
                    if table == "UsersTable" and op in ("PutItem", "TransactWriteItems")
                )
                functions = {f for (f, _t, _o) in usage.requests}
                every_write = sum(usage.write_requests(f) for f in functions)
                figures[f"{label}.imported"] = job["rows"]["imported"]
                figures[f"{label}.rejected"] = job["rows"]["rejected"]
                figures[f"{label}.profile_writes"] = profile_puts
                figures[f"{label}.all_writes"] = every_write
                figures[f"{label}.slices"] = usage.functions["ImportFunction"].invocations
            return figures
    finally:
        clock.reset()


# ------------------------------------------------------------------ memory
PEAK_SNIPPET = """
import json, resource, sys, time
from benchmarks.imports import pipeline
import insights.services.imports.slices  # the code under test loaded: RSS before the file
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.process_time()
with open(sys.argv[1], "rb") as raw:
    counts = pipeline(raw)
print(json.dumps({"base_kb": base, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "cpu_s": time.process_time() - started, **counts}))
"""


def peak_memory(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SNIPPET, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------- run
def run(config: Config) -> PartResult:
    runs = 2 if config.smoke else config.runs
    cpu_rows = 2_000 if config.smoke else 100_000
    import_rows = 60 if config.smoke else 2_000
    small, large = (1_000, 5_000) if config.smoke else (10_000, 1_000_000)
    memory_runs = 1 if config.smoke else 3

    samples: dict[str, list[float]] = {"rows_per_s": []}
    last: dict[str, int] = {}
    for r in range(runs):
        rate, last = rows_per_second(cpu_rows, seed=100 + r)
        samples["rows_per_s"].append(rate)

    writes = metered_imports(import_rows, seed=7)
    changed = writes["first.imported"]
    unchanged = writes["again.imported"]

    files = {n: write_file(OUT / f"imports-{n}.csv.gz", n, seed=11) for n in (small, large)}
    peaks: dict[int, list[dict[str, float]]] = {small: [], large: []}
    for _ in range(memory_runs):
        for n, path in files.items():
            peaks[n].append(peak_memory(path))
    small_mb = [p["peak_kb"] / 1024 for p in peaks[small]]
    large_mb = [p["peak_kb"] / 1024 for p in peaks[large]]
    ratios = [b / a for a, b in zip(small_mb, large_mb, strict=True)]

    figures = [
        Figure(
            "imports.rows_per_s",
            "Rows/s through reader, validation and write planning (storage stubbed, CPU)",
            "rows/s",
            samples["rows_per_s"],
            goal=20_000,
            goal_op=">=",
        ),
        Figure(
            "imports.writes_per_changed_row",
            "DynamoDB write requests per changed row (whole import: profiles + job bookkeeping)",
            "writes",
            [writes["first.all_writes"] / changed],
            goal=1,
        ),
        Figure(
            "imports.profile_writes_per_changed_row",
            "Profile write requests per changed row",
            "writes",
            [writes["first.profile_writes"] / changed],
            goal=1,
        ),
        Figure(
            "imports.profile_writes_per_unchanged_row",
            "Profile write requests per unchanged row (same file again)",
            "writes",
            [writes["again.profile_writes"] / unchanged],
            goal=0,
        ),
        Figure(
            "imports.job_writes_unchanged_file",
            "DynamoDB write requests for the whole unchanged import (job bookkeeping)",
            "writes",
            [writes["again.all_writes"]],
        ),
        Figure(f"imports.peak_rss_mb_{small}", f"Peak RSS, {small:,}-row file", "MB", small_mb),
        Figure(f"imports.peak_rss_mb_{large}", f"Peak RSS, {large:,}-row file", "MB", large_mb),
        Figure(
            "imports.peak_rss_ratio",
            f"Peak RSS ratio, {large:,} rows / {small:,} rows",
            "x",
            ratios,
            goal=1.2,
        ),
    ]
    result = PartResult(NAME, TITLE, figures)
    result.parameters = {
        "cpu_rows": cpu_rows,
        "import_rows": import_rows,
        "memory_files": [small, large],
        "batch_rows": BATCH_ROWS,
    }
    result.tables = [
        Table(
            "Imports through the local cloud (one run each)",
            ["import", "rows imported", "rejected", "profile puts", "all write requests", "slices"],
            [
                [
                    label,
                    int(writes[f"{key}.imported"]),
                    int(writes[f"{key}.rejected"]),
                    int(writes[f"{key}.profile_writes"]),
                    int(writes[f"{key}.all_writes"]),
                    int(writes[f"{key}.slices"]),
                ]
                for label, key in (("first (every row new)", "first"), ("same file again", "again"))
            ],
        ),
        Table(
            "Streaming path in a fresh interpreter (median)",
            ["rows", "RSS before the file MB", "peak RSS MB", "CPU s", "rows/s"],
            [
                [
                    f"{n:,}",
                    fmt(statistics.median(p["base_kb"] for p in peaks[n]) / 1024),
                    fmt(statistics.median(p["peak_kb"] for p in peaks[n]) / 1024),
                    fmt(statistics.median(p["cpu_s"] for p in peaks[n])),
                    fmt(n / statistics.median(p["cpu_s"] for p in peaks[n])),
                ]
                for n in (small, large)
            ],
        ),
    ]
    result.notes = [
        f"Generated CSV: 8 columns (uuid, 4 typed by the mapping, timestamp), ~2% bad rows; "
        f"last CPU run read {last.get('read', 0):,} rows, rejected {last.get('rejected', 0):,}.",
        "Storage stubbed: every user is new to the stub, so every good user of a batch plans "
        "one put (the most work the planner can do).",
        f"Memory files are gzipped in {OUT.relative_to(ROOT)}/ and reused between runs.",
    ]
    return result


if __name__ == "__main__":  # pragma: no cover - a quick look without the suite
    rate, counts = rows_per_second(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000, seed=1)
    print(f"{rate:,.0f} rows/s", counts, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
