"""Part 7: the console's read units per page view, and its write units per close in a batch.

Through the real handlers on LocalCloud, metered (benchmarks/meter.py):

- read units of each console page view (`GET /v1/users` a page of 25, a
  prefix search, `GET /v1/attributes`, `GET /v1/stats` for 30 and 180 days)
  on an account of `USERS` visible users with 4 custom attributes, after
  one warm-up request (the key and account are then cached, as in a warm
  container);
- write units AggregatesTable takes per close when one sweep closes every
  user's session at once (the stream delivers them in batches of 100): the
  batches' pending sums and the hour's roll-up of them; part 6 measures one
  close per batch and per roll-up, the worst case; this is the busy case.

Read and write units are counts from item sizes, the same on any machine.
"""

from __future__ import annotations

from typing import Any

from benchmarks.core import Config, Figure, PartResult, Table, fmt
from benchmarks.localstack import T0_MS, benchmark_stack
from benchmarks.meter import HARNESS, Meter, Usage

NAME = "console"
TITLE = "Part 7: console read units per page view, and write units per close in a batch"
MINUTE_MS = 60_000
USERS = 400
SMOKE_USERS = 40
PROPERTIES = {"name": "User", "role": "admin", "type": "customer", "plan": "free"}
PAGES = (
    ("users", "GET /v1/users (a page of 25)", "/v1/users", {"limit": "25"}),
    ("users_prefix", "GET /v1/users?prefix=u-00 (page of 25)", "/v1/users", {"prefix": "u-00"}),
    ("attributes", "GET /v1/attributes", "/v1/attributes", {}),
    ("stats_30", "GET /v1/stats?days=30", "/v1/stats", {"days": "30"}),
    ("stats_180", "GET /v1/stats?days=180", "/v1/stats", {"days": "180"}),
)


def _units(usage: Usage, counter: str, table: str | None = None) -> float:
    found = getattr(usage, counter)
    return float(
        sum(
            n
            for (function, target), n in found.items()
            if function != HARNESS and (table is None or target.split("/")[0] == table)
        )
    )


def measure(users: int) -> dict[str, Any]:
    from insights import clock
    from insights.domain.core.timefmt import format_time
    from insights.services.console import aggregates as console_aggregates

    found: dict[str, Any] = {}
    with benchmark_stack() as (cloud, account):
        write = {"X-Insights-Key": account.write_key}
        secret = {"Authorization": f"Bearer {account.secret_key}"}
        uuids = [f"u-{i:04d}" for i in range(users)]
        for round_, props in enumerate((PROPERTIES, {})):
            at = T0_MS + round_ * 600 * MINUTE_MS
            clock.freeze(at)
            for start in range(0, users, 500):
                events = [
                    {"uuid": u, "timestamp": format_time(at), "user_properties": props}
                    for u in uuids[start : start + 500]
                ]
                body = {"sent_at": format_time(at), "events": events}
                sent = cloud.function_url("TrackFunction", "POST", "/", headers=write, body=body)
                assert sent.status == 200, sent.body
            cloud.settle()
            clock.freeze(at + 40 * MINUTE_MS)
            with Meter(cloud).installed() as meter:
                cloud.run_schedules()
                cloud.settle()
                # The hour's roll-up of the sums these closes left pending.
                clock.freeze(at + 101 * MINUTE_MS)
                meter.current = "SegmentIndexFunction"
                # Forced: these 400 closes are four batches' pending items, fewer
                # than a fold waits for in a quiet account.
                assert console_aggregates.roll_up(account.account_id, clock.now_ms(), force=True)
                meter.current = None
            key = "first" if round_ == 0 else "returning"
            found[f"wru_{key}"] = _units(meter.usage, "wru", "AggregatesTable") / users
        assert cloud.http("GET", "/v1/account", headers=secret).status == 200  # warm
        for key, _label, path, query in PAGES:
            with Meter(cloud).installed() as meter:
                page = cloud.http("GET", path, headers=secret, query=query)
            assert page.status == 200, page.body
            found[f"rru_{key}"] = _units(meter.usage, "rru")
            found[f"requests_{key}"] = sum(
                n for (f, _t, _op), n in meter.usage.requests.items() if f != HARNESS
            )
    return found


def run(config: Config) -> PartResult:
    users = SMOKE_USERS if config.smoke else USERS
    measured = measure(users)
    figures = [
        Figure(f"console.rru_{key}", f"{label}: read units", "RRU", [measured[f"rru_{key}"]])
        for key, label, _path, _query in PAGES
    ]
    figures += [
        Figure(
            f"console.wru_{key}_batched",
            f"AggregatesTable write units per {key} close, {users} closes in one sweep",
            "WRU",
            [measured[f"wru_{key}"]],
        )
        for key in ("first", "returning")
    ]
    table = Table(
        f"Console page views on an account of {users} users (DynamoDB requests and read units)",
        ["page", "requests", "RRU"],
        [
            [label, str(measured[f"requests_{key}"]), fmt(measured[f"rru_{key}"])]
            for key, label, _path, _query in PAGES
        ],
    )
    result = PartResult(NAME, TITLE, figures, [table])
    result.parameters = {"users": users, "properties": PROPERTIES}
    result.notes = [
        "Eventually consistent reads: 0.5 RRU per started 4 KB of each item a BatchGetItem "
        "reads, and of the total a Query reads (benchmarks/capacity.py).",
        "The user list queries the 8 shards of by_uuid (KEYS_ONLY) and reads the page's "
        "profiles with one BatchGetItem; catalogue and stats are one Query each, plus the "
        "roll-up marker (GetItem) and the pending sums after it (Query).",
    ]
    return result
