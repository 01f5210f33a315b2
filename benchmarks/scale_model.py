"""Capacity model of one Insights stack (issue 27, part 1): where it stops, and why.

Pure arithmetic, no AWS and no moto: a `Workload` (who uses the product and
how), the `Design` constants the code and template.yaml fix today (read from
them by `Design.from_code`, so a change there is a change here), AWS's
default `Quotas`, the stated `Assumptions` nothing here can measure, and the
`Stages` throughputs part 2 measures on the real handlers
(benchmarks/stages.py). `evaluate` turns them into peak-hour demand per
function, table, partition key, stream and sweeper run, and `checks` into
one list of (demand, capacity) pairs: a ceiling is a check whose demand
exceeds its capacity. `ceiling` finds by bisection the monthly users at
which each check starts to bind, for the workload's shape.

Everything is per second at the peak hour unless the name says otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAY_S = 86_400
MONTH_DAYS = 30
KB = 1024


# ------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Workload:
    """Who uses the product, and how. The defaults are a typical web app, stated as such."""

    label: str
    monthly_users: float
    daily_active_share: float = 0.3  # daily / monthly active users
    sessions_per_user_day: float = 2.0  # per daily active user
    events_per_session: float = 20.0
    session_minutes: float = 10.0  # first to last event of a session
    # The SDK's flush policy (None: its defaults, read from insights.js).
    flush_at: int | None = None
    flush_interval_s: float | None = None
    # visibilitychange to hidden flushes the queue: the session's last one
    # sends its tail; each earlier one (a tab switch) splits a batch.
    page_hides_per_session: float = 2.0
    empty_session_share: float = 0.1  # no interactive event: discarded on close
    new_users_per_month_share: float = 0.3  # users new in a month / monthly users
    retained_per_monthly: float = 2.5  # users kept (seen within 180 days) / monthly users
    peak_factor: float = 2.5  # the busiest hour's rate / the day's mean rate
    accounts: int = 3
    largest_account_share: float = 0.8  # of users and traffic
    custom_attributes: int = 10  # per user
    indexed_attributes: int = 4  # custom attributes the account's segments read (entry indexes)
    indexed_changes_per_session: float = 0.05  # closes that change an indexed attribute
    top_value_share: float = 0.7  # the commonest value of an indexed attribute ("plan = free")
    segments_per_account: int = 20
    segment_bytes: int = 400  # one stored segment definition
    membership_lookups_per_session: float = 1.0  # GET /v1/sdk/segments (TrackFunction)
    console_views_per_hour: float = 60.0  # per account
    # The largest file: None = one row per kept user of the largest account,
    # capped at the import's row limit.
    import_rows: int | None = None
    concurrent_imports: int = 1


@dataclass(frozen=True)
class Design:
    """The fixed points of today's code and template (issue 27 part 3 moves them)."""

    shards: int  # segment index hash keys per account (domain/segments/indexing.SHARDS)
    sweep_interval_s: int  # SweepSchedule's default
    sweep_budget_s: float  # the sweeper's Timeout minus the 5 s its handler keeps back
    sweep_items_per_segment: int  # services/sweep.py: one scan segment per this many items
    sweep_max_segments: int
    sweep_close_concurrency: int  # closes in flight at once in a run (sweep.CLOSE_CONCURRENCY)
    sweep_workers: int  # invocations closing one run's due sessions side by side (today 1)
    session_timeout_s: int  # the account default
    retention_days: int
    stream_batch: dict[str, int]  # per stream consumer: BatchSize
    stream_window_s: dict[str, float]  # MaximumBatchingWindowInSeconds
    parallelization_factor: int  # stream batches in flight per shard (template: not set = 1)
    memory_mb: dict[str, int]
    timeout_s: dict[str, int]
    sdk_flush_at: int
    sdk_flush_interval_s: float
    import_batch_rows: int
    import_max_rows: int
    import_chains_per_file: int  # an import's slices run one after another
    import_write_concurrency: int  # profile writes in flight in a slice
    import_rows_per_s_cap: float  # an import paces its profile writes below this
    count_workers: int  # invocations a count is split over (today one request walks it all)
    # Whether a count keeps every member it found until it answers (before
    # part 3 services/segments.Walk appended each to `members`); a count that
    # only counts holds a number and, per request, the keys it counted.
    count_holds_members: bool
    # A count request stops reading after this long and answers in parts
    # (services/segments/counts.py); None: one request walks it all.
    count_budget_s: float | None
    count_round_s: float  # a round is sized to take about this long (it ends whole)...
    count_round_items: int  # ...reading at most this many index items a stream
    backfill_chains_per_index: int  # so does a segment index backfill's
    rollup_lag_s: float  # console aggregates: pending sums are folded once this old...
    rollup_every_s: float  # ...at most this often per account
    api_throttle_rate: float  # ApiThrottleRate's default (the HTTP API's routes)
    max_segments: int
    segments_cache_s: float  # per container, SegmentsFunction / the SDK's lookups
    auth_cache_s: float  # keys and settings, per container

    @classmethod
    def from_code(cls, **overrides: Any) -> Design:
        """Today's values, read from the modules and template.yaml that set them."""
        from insights.domain.core.profile import RETENTION_MS
        from insights.domain.segments.definitions import MAX_SEGMENTS
        from insights.domain.segments.indexing import SHARDS
        from insights.local.template import Template, rate_minutes
        from insights.services.console import aggregates as console_aggregates
        from insights.services.core import auth, sweep
        from insights.services.imports import slices as import_service
        from insights.services.segments import counts as segment_counts
        from insights.services.segments import index as segment_index
        from insights.services.segments import queries as segment_service
        from insights.storage.core.models import AccountItem

        template = Template.load(ROOT / "template.yaml")
        params = template.parameter_defaults()
        specs = {spec.logical_id: spec for spec in template.functions()}
        batch, window, factors = {}, {}, set()
        for name, spec in specs.items():
            for event in spec.events.values():
                if event.get("Type") == "DynamoDB":
                    props = event["Properties"]
                    batch[name] = int(props.get("BatchSize", 100))
                    window[name] = float(props.get("MaximumBatchingWindowInSeconds", 0))
                    factor = props.get("ParallelizationFactor", 1)
                    if isinstance(factor, dict):  # {"Ref": parameter}: its default
                        factor = params[factor["Ref"]]
                    if name != "UserRetentionFunction":  # TTL deletions: not modelled
                        factors.add(int(factor))
        if len(factors) != 1:
            raise ValueError(f"stream consumers differ in ParallelizationFactor: {factors}")
        flush_at, flush_interval_ms = sdk_flush_policy()
        values = {
            "shards": SHARDS,
            "sweep_interval_s": rate_minutes(params["SweepSchedule"]) * 60,
            "sweep_budget_s": specs["SessionCloseFunction"].timeout - SWEEPER_RESERVE_S,
            "sweep_items_per_segment": sweep.ITEMS_PER_SEGMENT,
            "sweep_max_segments": sweep.MAX_SEGMENTS,
            "sweep_close_concurrency": sweep.CLOSE_CONCURRENCY,
            "sweep_workers": 1,
            "session_timeout_s": int(AccountItem.session_timeout_minutes.default) * 60,
            "retention_days": RETENTION_MS // (DAY_S * 1000),
            "stream_batch": batch,
            "stream_window_s": window,
            "parallelization_factor": factors.pop(),
            "memory_mb": {name: spec.memory for name, spec in specs.items()},
            "timeout_s": {name: spec.timeout for name, spec in specs.items()},
            "sdk_flush_at": flush_at,
            "sdk_flush_interval_s": flush_interval_ms / 1000,
            "import_batch_rows": int(specs["ImportFunction"].environment["IMPORT_BATCH_ROWS"]),
            "import_max_rows": import_service.MAX_FILE_ROWS,
            "import_chains_per_file": 1,
            "import_write_concurrency": import_service.IMPORT_WRITE_CONCURRENCY,
            "import_rows_per_s_cap": import_service.IMPORT_ROWS_PER_SECOND,
            "count_workers": segment_counts.COUNT_WORKERS,
            "count_holds_members": segment_counts.COUNT_KEEPS is None,
            "count_budget_s": segment_counts.COUNT_BUDGET_S,
            "count_round_s": segment_counts.COUNT_ROUND_S,
            "count_round_items": segment_service.MAX_ROUND_ITEMS,
            "backfill_chains_per_index": segment_index.BACKFILL_CHAINS,
            "rollup_lag_s": console_aggregates.ROLL_UP_LAG_MS / 1000,
            "rollup_every_s": console_aggregates.ROLL_UP_EVERY_MS / 1000,
            "api_throttle_rate": float(params["ApiThrottleRate"]),
            "max_segments": MAX_SEGMENTS,
            "segments_cache_s": segment_service.CACHE_SECONDS,
            "auth_cache_s": float(getattr(auth, "CACHE_SECONDS", 30.0)),
        }
        return cls(**{**values, **overrides})


# The sweeper's handler stops closing this long before its timeout (functions/sweeper/app.py).
SWEEPER_RESERVE_S = 5
SDK_SCRIPT = ROOT / "layers/core/insights/sdk/insights.js"


def sdk_flush_policy(path: Path = SDK_SCRIPT) -> tuple[int, int]:
    """(flushAt events, flushInterval ms): the SDK's defaults, as its script declares them."""
    text = path.read_text()
    found = {}
    for name in ("flushAt", "flushInterval"):
        match = re.search(rf"\b{name}\s*:\s*(\d+)", text)
        if match is None:
            raise ValueError(f"{path}: no default for {name}; update sdk_flush_policy")
        found[name] = int(match.group(1))
    return found["flushAt"], found["flushInterval"]


@dataclass(frozen=True)
class Quotas:
    """AWS's default quotas per account and region (Service Quotas; raise them there)."""

    lambda_concurrency: int = 1_000  # concurrent executions, all functions (new accounts: less)
    lambda_invocations_per_concurrency: int = 10  # invocations/s = 10 x the concurrency quota
    table_wcu: int = 40_000  # on-demand table-level write throughput
    table_rcu: int = 40_000  # on-demand table-level read throughput
    partition_wcu: int = 1_000  # per partition key (and per GSI key), writes/s
    partition_rcu: int = 3_000  # per partition key, strongly consistent reads/s
    partition_gb: float = 10.0  # a partition splits past this size
    initial_partitions: int = 4  # a new on-demand table serves 4,000 WCU / 12,000 RCU
    http_api_rps: int = 10_000  # HTTP API requests/s per account and region
    api_timeout_s: int = 30  # HTTP API integration timeout (hard)


@dataclass(frozen=True)
class Assumptions:
    """What neither the code nor a local run can tell: stated, not measured."""

    # A scan segment's read rate: services/sweep.py sizes segments as "~20k open
    # sessions (~8 MB, 8 pages) in a second or two".
    scan_mb_per_s_per_segment: float = 5.0
    # Lambda's poller invokes a shard's consumer at most this often when records
    # trickle in (it waits the batching window for a fuller batch).
    poll_interval_s: float = 1.0
    # An index entry item and the bytes a user's profile holds besides custom attributes.
    dynamodb_storage_usd_per_gb_month: float = 0.25 + 0.20  # standard + point-in-time recovery
    # A sweeper run that finds more due than it can close leaves them for TTL,
    # which deletes "within a few days" (typically within 48 h).
    ttl_delay_h: float = 48.0


@dataclass(frozen=True)
class Question:
    """One of the spec's four questions as part 2 measured it."""

    key: str
    label: str
    member_share: float  # members / users of the account (the synthetic population)
    items_per_member: float  # index items + profiles read per member counted
    rru_per_member: float
    members_per_s: float  # counted per second of SegmentsFunction on AWS (modelled)
    cpu_us_per_member: float  # the handler's own CPU per member, at one full vCPU
    latency_ms_per_member: float  # modelled round trips per member
    bytes_per_member: float  # memory a count holds per member


@dataclass(frozen=True)
class Stages:
    """Throughputs measured on the real handlers (benchmarks/stages.py), per invocation on AWS."""

    track_ms_base: float  # TrackFunction on AWS per request: base + per event
    track_ms_per_event: float
    session_bytes: float  # an open session item
    profile_bytes_base: float  # a profile item without custom attributes
    profile_bytes_per_attribute: float
    entry_bytes: float  # one segment index entry item
    sweeper_closes_per_s: float  # one sweeper invocation's close loop
    sweeper_close_latency_ms: float  # of which round trips per close (meter.LATENCY_MS)
    close_apply_records_per_s: float  # SessionCloseFunction, one invocation
    segment_index_records_per_s: float  # SegmentIndexFunction on closes, one invocation
    segment_index_import_records_per_s: float  # ... on an import's profile writes
    backfill_users_per_s: float  # one backfill slice
    # One import's slices (validate and apply), their round trips summed as if in series
    # (the meter adds each call's LATENCY_MS), so in_flight applies the write concurrency.
    import_rows_per_s: float
    import_row_latency_ms: float  # of which round trips per row (meter.LATENCY_MS)
    pending_us_per_item: float  # console: CPU to read one pending sums item (at 1 vCPU)
    pending_item_bytes: float
    questions: tuple[Question, ...]
    sources: dict[str, str] = field(default_factory=dict)  # figure -> how it was measured


@dataclass(frozen=True)
class Costs:
    """The cost benchmark's figures, split into a part per request and a part per session."""

    usd_per_request: float
    usd_per_session: float
    idle_stack_usd_month: float
    monitored_stack_usd_month: float  # with alarms and the dashboard
    source: str


# Goals, not AWS limits: a "batch" check compares a duration with one of them.
GOAL_IMPORT_H = 1.0  # issue 27: a 10M-row import in under an hour
GOAL_BACKFILL_H = 24.0  # proposed here: a segment on a new attribute is exact within a day


# ------------------------------------------------------------------ output
@dataclass
class Check:
    """One limit: demand against capacity. It binds when demand exceeds capacity."""

    key: str
    label: str
    # "throughput": an AWS limit on the steady path (bounds the sessions a stack
    # closes); "query": a hard limit on one request (time, memory); "batch": a
    # duration against a goal (imports, backfills).
    kind: str
    demand: float
    capacity: float
    unit: str
    limit: str  # what sets the capacity
    alarm: str  # the alarm that watches it (or what is missing)

    @property
    def utilisation(self) -> float:
        return self.demand / self.capacity if self.capacity > 0 else math.inf

    @property
    def binds(self) -> bool:
        return self.demand > self.capacity


LIMITS = ("throughput", "query")  # what breaks, as against goals missed


@dataclass
class Model:
    workload: Workload
    traffic: dict[str, float]
    functions: list[dict[str, Any]]
    tables: list[dict[str, Any]]
    keys: list[dict[str, Any]]
    streams: list[dict[str, Any]]
    sweeper: dict[str, float]
    questions: list[dict[str, Any]]
    batch: dict[str, float]
    checks: list[Check]
    usd_per_million_events: float | None = None

    def first(self, kinds: tuple[str, ...] = LIMITS) -> Check:
        """The check of these kinds nearest its limit (the first ceiling as the workload grows)."""
        return max((c for c in self.checks if c.kind in kinds), key=lambda c: c.utilisation)

    def binding(self, kinds: tuple[str, ...] = LIMITS) -> list[Check]:
        return sorted(
            (c for c in self.checks if c.binds and c.kind in kinds), key=lambda c: -c.utilisation
        )


# ------------------------------------------------------------------ model
def cpu_factor(memory_mb: int) -> float:
    """How much slower a handler's CPU runs at this memory than at one full vCPU."""
    return max(1.0, 1769 / memory_mb)


def partitions(wcu: float, rcu: float, gb: float, quotas: Quotas) -> int:
    """The fewest partitions (so stream shards) DynamoDB needs for this load and size."""
    return max(
        quotas.initial_partitions,
        math.ceil(wcu / quotas.partition_wcu),
        math.ceil(rcu / quotas.partition_rcu),
        math.ceil(gb / quotas.partition_gb),
    )


def stream_invocations(records: float, shards: int, window_s: float, batch: int, a: Assumptions):
    """Invocations/s of a stream consumer: full batches when busy, one per poll when not."""
    if records <= 0:
        return 0.0
    per_shard = records / shards
    return shards * max(per_shard / batch, min(per_shard, 1 / max(window_s, a.poll_interval_s)))


def evaluate(
    w: Workload,
    d: Design,
    s: Stages,
    q: Quotas = Quotas(),
    a: Assumptions = Assumptions(),
    costs: Costs | None = None,
) -> Model:
    peak = w.peak_factor / DAY_S  # from a daily count to a peak-hour rate
    big = w.largest_account_share

    # --- traffic
    flush_at = w.flush_at or d.sdk_flush_at
    flush_s = d.sdk_flush_interval_s if w.flush_interval_s is None else w.flush_interval_s
    gap_s = w.session_minutes * 60 / max(1.0, w.events_per_session - 1)
    # Events arriving at rate 1/gap: a batch holds its first event and those of
    # the next flush_s, up to flush_at. A session's first event leaves alone (the
    # SDK sends at once what follows a gap near the timeout, or nothing it knows
    # of: insights.js dueOf), a half-full batch leaves at the end, and each
    # extra hide flushes early.
    per_batch = min(float(flush_at), 1 + flush_s / gap_s)
    requests_per_session = min(
        w.events_per_session + w.page_hides_per_session - 1,
        1 + (w.events_per_session - 1) / per_batch + 0.5 + max(0.0, w.page_hides_per_session - 1),
    )
    per_request = w.events_per_session / requests_per_session
    daily_users = w.monthly_users * w.daily_active_share
    sessions_day = daily_users * w.sessions_per_user_day
    events_day = sessions_day * w.events_per_session
    new_users_day = w.monthly_users * w.new_users_per_month_share / MONTH_DAYS
    kept_users = w.monthly_users * w.retained_per_monthly
    expiring_day = kept_users / d.retention_days  # profiles TTL removes, in a steady state
    sessions = sessions_day * peak
    requests = sessions * requests_per_session
    closes = sessions  # every window is deleted once
    profile_closes = closes * (1 - w.empty_session_share)
    first_closes = min(profile_closes, new_users_day * peak)
    returning = profile_closes - first_closes
    lookups = sessions * w.membership_lookups_per_session
    expiring = expiring_day / DAY_S  # TTL runs all day: no peak
    open_sessions = sessions * (
        w.session_minutes * 60 + d.session_timeout_s + d.sweep_interval_s / 2
    )
    traffic = {
        "monthly_users": w.monthly_users,
        "daily_users": daily_users,
        "kept_users": kept_users,
        "largest_account_users": kept_users * big,
        "sessions_per_day": sessions_day,
        "events_per_day": events_day,
        "events_per_month": events_day * MONTH_DAYS,
        "events_per_batch": per_batch,
        "events_per_request": per_request,
        "requests_per_session": requests_per_session,
        "peak_requests_per_s": requests,
        "peak_events_per_s": events_day * peak,
        "peak_sessions_per_s": sessions,
        "peak_first_closes_per_s": first_closes,
        "open_sessions_at_peak": open_sessions,
        "flush_at": flush_at,
        "flush_interval_s": flush_s,
    }

    # --- sizes
    profile_bytes = s.profile_bytes_base + s.profile_bytes_per_attribute * w.custom_attributes
    profile_wru = math.ceil(profile_bytes / KB)
    profile_rru = math.ceil(profile_bytes / (4 * KB))
    entries_per_user = w.indexed_attributes
    users_gb = kept_users * (profile_bytes + entries_per_user * s.entry_bytes) / 1e9
    segments_item_bytes = w.segments_per_account * w.segment_bytes

    # --- imports and backfills (the largest account)
    import_rows = w.import_rows
    if import_rows is None:
        import_rows = min(int(kept_users * big), d.import_max_rows)
    # Each import keeps to its pace, however many chains apply it.
    import_rate = (
        min(
            in_flight(s.import_rows_per_s, s.import_row_latency_ms, d.import_write_concurrency)
            * d.import_chains_per_file,
            d.import_rows_per_s_cap,
        )
        * w.concurrent_imports
    )
    backfill_rate = s.backfill_users_per_s * d.backfill_chains_per_index

    # --- the sweeper
    sweep = sweeper(open_sessions, closes, d, s, a)

    # --- streams
    sessions_wcu = requests + closes
    sessions_rcu_avg = requests * 0.5 + closes * 1 + sweep["scan_rru"] / d.sweep_interval_s
    sessions_shards = partitions(
        sessions_wcu, sessions_rcu_avg, open_sessions * s.session_bytes / 1e9, q
    )
    profile_records = profile_closes + expiring  # every profile write or removal streams
    entry_puts_first = first_closes * entries_per_user
    entry_changes = profile_closes * w.indexed_changes_per_session
    users_wcu = (
        profile_closes * profile_wru
        + entry_puts_first
        + entry_changes
        + expiring * (1 + entries_per_user)
    )
    users_rcu = sessions * 0.5 + profile_closes * profile_rru + lookups * 0.5
    users_shards = partitions(users_wcu, users_rcu, users_gb, q)
    window = d.stream_window_s
    expiry_inv = stream_invocations(
        closes,
        sessions_shards,
        window["SessionCloseFunction"],
        d.stream_batch["SessionCloseFunction"],
        a,
    )
    index_inv = stream_invocations(
        profile_records,
        users_shards,
        window["SegmentIndexFunction"],
        d.stream_batch["SegmentIndexFunction"],
        a,
    )
    streams = [
        stream_row(
            "SessionCloseFunction",
            "SessionsTable (REMOVE: sweeper and TTL deletions)",
            closes,
            sessions_shards,
            s.close_apply_records_per_s,
            d,
        ),
        stream_row(
            "SegmentIndexFunction",
            "UsersTable (profile writes: closes, imports, removals)",
            profile_records,
            users_shards,
            s.segment_index_records_per_s,
            d,
        ),
    ]
    # During the largest import the same consumer also takes its profile writes.
    import_shards = partitions(users_wcu + import_rate * profile_wru, users_rcu, users_gb, q)
    streams.append(
        stream_row(
            "SegmentIndexFunction",
            "UsersTable during the largest import",
            profile_records + import_rate,
            import_shards,
            min(s.segment_index_records_per_s, s.segment_index_import_records_per_s),
            d,
        )
    )

    # --- functions: invocations/s, duration on AWS, concurrency
    track_ms = s.track_ms_base + s.track_ms_per_event * per_request
    sweep_s = min(d.sweep_budget_s, sweep["scan_s"] + sweep["closes_needed"] / sweep["close_rate"])
    functions = [
        fn("TrackFunction", requests + lookups, track_ms / 1000, "function URL, per request"),
        # One function, two kinds of invocation: its concurrency is their sum.
        fn("SessionCloseFunction, sweeps", 1 / d.sweep_interval_s, sweep_s, "one run per schedule"),
        fn(
            "SessionCloseFunction, stream",
            expiry_inv,
            closes / s.close_apply_records_per_s / max(expiry_inv, 1e-9),
            "stream batches",
        ),
        fn(
            "SegmentIndexFunction",
            index_inv,
            profile_records / s.segment_index_records_per_s / max(index_inv, 1e-9),
            "stream batches",
        ),
        fn(
            "ImportFunction",
            0.0,
            0.0,
            "slices, one chain per file",
            concurrency=w.concurrent_imports,
        ),
        fn(
            "SegmentIndexFunction (backfill)",
            0.0,
            0.0,
            f"slices, {d.backfill_chains_per_index} chain(s) per new index",
            concurrency=d.backfill_chains_per_index,
        ),
    ]
    for f in functions:
        if f["concurrency"] is None:
            f["concurrency"] = f["invocations_per_s"] * f["seconds"]
    concurrency = sum(f["concurrency"] for f in functions)
    track_containers = functions[0]["concurrency"]

    # --- tables
    returning_wru_gsi = returning * 2  # by_last_seen: its key moves (delete + put)
    pending_puts = index_inv  # one pending item per account per batch (the largest is in each)
    rollup_items = 2 + w.custom_attributes  # day, users count, the attributes touched
    aggregates_wcu = pending_puts + w.accounts * (2 * rollup_items + 2) / d.rollup_every_s
    aggregates_rcu = index_inv * w.accounts * 0.5  # the roll-up marker, per account per batch
    accounts_rcu = (
        index_inv * w.accounts * 1.0  # the index catalogue (consistent), per account per batch
        + track_containers * 3 * 0.5 / d.auth_cache_s  # key, settings, identity: cached 30 s
        + track_containers * math.ceil(segments_item_bytes / (4 * KB)) * 0.5 / d.segments_cache_s
    )
    tables = [
        table("SessionsTable", sessions_wcu, requests * 0.5 + closes, sweep["scan_rru_per_s"], q),
        table("UsersTable", users_wcu, users_rcu, 0.0, q),
        table("UsersTable/by_first_seen", first_closes + expiring, 0.0, 0.0, q),
        table("UsersTable/by_last_seen", first_closes + returning_wru_gsi + expiring, 0.0, 0.0, q),
        table("UsersTable/by_uuid", first_closes + expiring, 0.0, 0.0, q),
        table("UsersTable/by_value", entry_puts_first + 2 * entry_changes, 0.0, 0.0, q),
        table("UsersTable/by_change", entry_puts_first + 2 * entry_changes, 0.0, 0.0, q),
        table("AggregatesTable", aggregates_wcu, aggregates_rcu, 0.0, q),
        table("AccountsTable", 0.0, accounts_rcu, 0.0, q),
    ]

    # --- partition keys (the largest account)
    bf, bi = big * first_closes, big * returning
    bchange = big * entry_changes
    bexp = big * expiring
    shards = d.shards
    top = w.top_value_share
    import_entry = import_rate  # each row changes its user's entry (the first import of a value)
    keys = [
        key_row(
            "{account}#{uuid}",
            "SessionsTable",
            "TrackFunction, sweeper",
            requests_per_session / (w.session_minutes * 60 + 1),
            0,
            0,
            0,
            "one user's own requests",
        ),
        key_row(
            "{account}#{uuid}",
            "UsersTable (profile, entries)",
            "closes, imports",
            1 / (w.session_minutes * 60 + d.session_timeout_s),
            0,
            0,
            0,
            "one user's own closes",
        ),
        key_row(
            "{account}#{shard}",
            "by_first_seen",
            "a user's first close, removal",
            (bf + bexp) / shards,
            0,
            0,
            0,
            f"new users / {shards} shards",
        ),
        key_row(
            "{account}#{shard}#1",
            "by_last_seen",
            "first closes (put), second closes (delete)",
            (2 * bf + bexp) / shards,
            0,
            0,
            0,
            "new users x 2 (at most) / shards",
        ),
        key_row(
            "{account}#{shard}#2+",
            "by_last_seen",
            "every returning close (delete + put)",
            2 * bi / shards,
            0,
            0,
            0,
            f"returning closes x 2 / {shards} shards",
        ),
        key_row(
            "{account}#{shard}",
            "by_uuid",
            "a user's first close, removal",
            (bf + bexp) / shards,
            0,
            0,
            0,
            f"new users / {shards} shards",
        ),
        key_row(
            "{account}#{shard}#{attr}#{top value}",
            "by_value",
            "SegmentIndexFunction (entries)",
            (bf + bchange) * top / shards,
            import_entry * top / shards,
            backfill_rate * top / shards,
            0,
            f"commonest value ({top:.0%}) / {shards} shards",
        ),
        key_row(
            "{account}#{shard}#{attr}",
            "by_change",
            "SegmentIndexFunction (entries)",
            (bf + 2 * bchange) / shards,
            2 * import_entry / shards,
            backfill_rate / shards,
            0,
            f"every holder of the attribute / {shards} shards",
        ),
        key_row(
            "{account}#pending",
            "AggregatesTable",
            "SegmentIndexFunction, each batch",
            pending_puts,
            stream_invocations(
                profile_records + import_rate,
                import_shards,
                window["SegmentIndexFunction"],
                d.stream_batch["SegmentIndexFunction"],
                a,
            ),
            0,
            0,
            "one put per stream batch holding the account",
        ),
        key_row(
            "{account}#day, #attr, #rolled",
            "AggregatesTable",
            "hourly roll-up",
            (2 * rollup_items + 2) / d.rollup_every_s,
            0,
            0,
            index_inv * 0.5,
            "reads: the marker, per batch",
        ),
        key_row(
            "segidx#{account}",
            "AccountsTable",
            "segment saves; read per batch",
            0,
            0,
            0,
            index_inv * 1.0,
            "catalogue read (consistent) per batch",
        ),
        key_row(
            "seg#{account}",
            "AccountsTable",
            "segment saves; read per container",
            0,
            0,
            0,
            track_containers * math.ceil(segments_item_bytes / (4 * KB)) * 0.5 / d.segments_cache_s,
            f"{w.segments_per_account} definitions, cached {d.segments_cache_s:g} s per container",
        ),
        key_row(
            "key#{digest}, acct#{account}, ident#{account}",
            "AccountsTable",
            "key rotation, settings; read per container",
            0,
            0,
            0,
            track_containers * 0.5 / d.auth_cache_s,
            f"cached {d.auth_cache_s:g} s per container",
        ),
        key_row(
            "{account}#scim",
            "IdpTable",
            "SCIM writes of the account",
            0,
            0,
            0,
            0,
            "every SCIM user of an account: not modelled (IdP push rate)",
        ),
        key_row(
            "{account} (job#{id})",
            "ImportsTable",
            "import checkpoints",
            w.concurrent_imports / 60,
            0,
            0,
            0,
            "a few writes per slice",
        ),
    ]

    # --- the spec's four questions on the largest account
    account_users = kept_users * big
    counts_limit_s = min(q.api_timeout_s, d.timeout_s["SegmentsFunction"])
    questions = []
    for question in s.questions:
        members = question.member_share * account_users
        items = members * question.items_per_member
        seconds = (
            members
            * (
                question.cpu_us_per_member / 1e6 * cpu_factor(d.memory_mb["SegmentsFunction"])
                + question.latency_ms_per_member / 1e3
            )
            / d.count_workers
        )
        requests, request_s = 1, seconds
        if d.count_budget_s is not None and seconds > d.count_budget_s:
            # Each request reads rounds until the budget, then finishes its
            # round: sized to take count_round_s, or shorter when every one of
            # the plan's streams (at most shards x 2 sessions buckets) gives
            # its most at the question's rate.
            full_round_s = d.count_round_items * d.shards * 2 * seconds / max(items, 1.0)
            request_s = min(seconds, d.count_budget_s + min(d.count_round_s, full_round_s))
            requests = math.ceil(seconds / d.count_budget_s)
        # Kept until the answer: every member (before part 3), or the keys of
        # one request's members (the walk's `seen`; bytes_per_member measured
        # with profiles kept overstates it).
        held = members if d.count_holds_members else members * request_s / max(seconds, 1e-9)
        questions.append(
            {
                "key": question.key,
                "label": question.label,
                "members": members,
                "items_read": items,
                "rru": members * question.rru_per_member,
                "seconds": seconds,
                "requests": requests,
                "request_seconds": request_s,
                "memory_mb": held * question.bytes_per_member / 1e6 / d.count_workers,
                "limit_s": counts_limit_s,
                "memory_limit_mb": d.memory_mb["SegmentsFunction"],
            }
        )

    # --- batch work on the largest account
    pending_items = index_inv * (d.rollup_lag_s + d.rollup_every_s / 2)
    console_s = (
        pending_items * s.pending_us_per_item / 1e6 * cpu_factor(d.memory_mb["ConsoleFunction"])
        + math.ceil(pending_items * s.pending_item_bytes / 1e6) * 0.02
    )
    batch = {
        "import_rows": import_rows,
        "import_rows_per_s": import_rate,
        "import_hours": import_rows / import_rate / 3600,
        "backfill_users": account_users,
        "backfill_hours": account_users / backfill_rate / 3600,
        "console_pending_items": pending_items,
        "console_stats_s": console_s,
    }

    # --- checks
    limit_s = counts_limit_s
    checks = [
        Check(
            "sweeper",
            "Sweeper: closes due per run vs closes one run makes",
            "throughput",
            sweep["closes_needed"],
            sweep["closes_capacity"],
            "closes/run",
            f"one run of {d.sweep_budget_s:g} s every {d.sweep_interval_s // 60} min, "
            f"{d.sweep_close_concurrency} close(s) at a time in {d.sweep_workers} invocation(s); "
            f"scan {sweep['scan_s']:.1f} s",
            ALARMS["sweeper"],
        ),
        Check(
            "sweeper_scan",
            "Sweeper: scan of every open session within the run's budget",
            "throughput",
            sweep["scan_s"],
            d.sweep_budget_s,
            "s",
            f"{sweep['segments']} scan segments (at most {d.sweep_max_segments})",
            ALARMS["sweeper"],
        ),
        *[
            Check(
                f"stream.{i}",
                f"{row['consumer']}: records/s per stream shard ({row['stream']})",
                "throughput" if i < 2 else "batch",
                row["per_shard"],
                row["capacity_per_shard"],
                "records/s",
                f"{row['shards']} shards x {d.parallelization_factor} batch in flight",
                ALARMS["stream"],
            )
            for i, row in enumerate(streams)
        ],
        Check(
            "lambda_concurrency",
            "Lambda concurrency, all functions",
            "throughput",
            concurrency,
            q.lambda_concurrency,
            "executions",
            "regional quota",
            ALARMS["lambda_concurrency"],
        ),
        Check(
            "lambda_rate",
            "TrackFunction invocations/s",
            "throughput",
            requests + lookups,
            q.lambda_concurrency * q.lambda_invocations_per_concurrency,
            "invocations/s",
            "10 x the concurrency quota",
            ALARMS["lambda_rate"],
        ),
        *[
            Check(
                f"table.{t['table']}.{unit}",
                f"{t['table']}: {unit.upper()} at peak",
                "throughput",
                t[unit],
                t[f"{unit}_quota"],
                unit.upper(),
                "table-level on-demand quota",
                ALARMS["table"],
            )
            for t in tables
            if "/" not in t["table"]
            for unit in ("wcu", "rcu")
        ],
        *[
            Check(
                f"key.{k['table']}.{k['key']}.{phase}",
                f"{k['key']} ({k['table']}) {label}",
                kind,
                k[phase],
                q.partition_wcu,
                "WCU/s",
                "per partition key",
                ALARMS["key"],
            )
            for k in keys
            for phase, label, kind in (
                ("peak_wcu", "at peak", "throughput"),
                ("import_wcu", "during the largest import", "batch"),
                ("backfill_wcu", "during a backfill", "batch"),
            )
            if k[phase] > 0
        ],
        *[
            Check(
                f"keyread.{k['table']}.{k['key']}",
                f"{k['key']} ({k['table']}) reads",
                "throughput",
                k["rcu"],
                q.partition_rcu,
                "RCU/s",
                "per partition key",
                ALARMS["key"],
            )
            for k in keys
            if k["rcu"] > 0
        ],
        *[
            Check(
                f"count.{x['key']}",
                f"Count '{x['label']}': one request",
                "query",
                x["request_seconds"],
                limit_s,
                "s",
                "API integration timeout / SegmentsFunction timeout",
                ALARMS["count"],
            )
            for x in questions
        ],
        *[
            Check(
                f"countmem.{x['key']}",
                f"Count '{x['label']}': members held in memory",
                "query",
                x["memory_mb"],
                x["memory_limit_mb"],
                "MB",
                "SegmentsFunction memory",
                ALARMS["count"],
            )
            for x in questions
        ],
        Check(
            "import",
            f"Largest import finishes within {GOAL_IMPORT_H:g} h (issue 27's goal)",
            "batch",
            batch["import_hours"],
            GOAL_IMPORT_H,
            "h",
            f"{d.import_chains_per_file} slice chain(s) per file, "
            f"{d.import_write_concurrency} writes in flight, paced at "
            f"{d.import_rows_per_s_cap:,.0f} rows/s",
            ALARMS["import"],
        ),
        Check(
            "backfill",
            f"A new segment index backfills within {GOAL_BACKFILL_H:g} h (proposed goal)",
            "batch",
            batch["backfill_hours"],
            GOAL_BACKFILL_H,
            "h",
            f"{d.backfill_chains_per_index} slice chain(s) per new index",
            ALARMS["backfill"],
        ),
        Check(
            "console",
            "Console stats/attributes page reads the pending sums in time",
            "query",
            console_s,
            d.timeout_s["ConsoleFunction"],
            "s",
            "ConsoleFunction timeout",
            ALARMS["console"],
        ),
    ]
    model = Model(w, traffic, functions, tables, keys, streams, sweep, questions, batch, checks)
    if costs is not None:
        model.usd_per_million_events = usd_per_million_events(model, costs, users_gb, a)
    return model


def sweeper(
    open_sessions: float, closes: float, d: Design, s: Stages, a: Assumptions
) -> dict[str, float]:
    segments = max(
        1, min(d.sweep_max_segments, math.ceil(open_sessions / d.sweep_items_per_segment))
    )
    scan_bytes = open_sessions * s.session_bytes
    scan_s = scan_bytes / (segments * a.scan_mb_per_s_per_segment * 1e6)
    scan_rru = scan_bytes / (4 * KB) * 0.5
    close_rate = d.sweep_workers * in_flight(
        s.sweeper_closes_per_s, s.sweeper_close_latency_ms, d.sweep_close_concurrency
    )
    return {
        "open_sessions": open_sessions,
        "segments": segments,
        "scan_bytes": scan_bytes,
        "scan_rru": scan_rru,
        "scan_s": scan_s,
        "scan_rru_per_s": scan_rru / max(scan_s, 1e-9) if scan_bytes else 0.0,
        "closes_needed": closes * d.sweep_interval_s,
        "close_rate": close_rate,
        "closes_capacity": close_rate * max(0.0, d.sweep_budget_s - scan_s),
    }


def in_flight(rate: float, latency_ms: float, concurrency: int) -> float:
    """Items/s of one invocation doing `concurrency` at a time: each waits its round trips
    side by side, but the handler's own CPU (what is left of 1/rate) runs one at a time."""
    per_item_ms = 1000 / rate
    cpu_ms = max(per_item_ms - latency_ms, 1e-3)
    return min(concurrency * 1000 / per_item_ms, 1000 / cpu_ms)


def stream_row(
    consumer: str, stream: str, records: float, shards: int, rate: float, d: Design
) -> dict[str, Any]:
    return {
        "consumer": consumer,
        "stream": stream,
        "records_per_s": records,
        "shards": shards,
        "per_shard": records / shards,
        "capacity_per_shard": rate * d.parallelization_factor,
        "parallelism_needed": records / rate,
        "parallelism_available": shards * d.parallelization_factor,
    }


def fn(
    name: str, invocations: float, seconds: float, how: str, concurrency: float | None = None
) -> dict[str, Any]:
    return {
        "function": name,
        "invocations_per_s": invocations,
        "seconds": seconds,
        "how": how,
        "concurrency": concurrency,
    }


def table(name: str, wcu: float, rcu: float, burst_rcu: float, q: Quotas) -> dict[str, Any]:
    return {
        "table": name,
        "wcu": wcu,
        "rcu": rcu + burst_rcu,
        "steady_rcu": rcu,
        "burst_rcu": burst_rcu,
        "wcu_quota": q.table_wcu,
        "rcu_quota": q.table_rcu,
    }


def key_row(
    key: str,
    where: str,
    writer: str,
    peak: float,
    during_import: float,
    during_backfill: float,
    rcu: float,
    why: str,
) -> dict[str, Any]:
    return {
        "key": key,
        "table": where,
        "writer": writer,
        "peak_wcu": peak,
        "import_wcu": during_import,
        "backfill_wcu": during_backfill,
        "rcu": rcu,
        "why": why,
    }


def usd_per_million_events(model: Model, costs: Costs, users_gb: float, a: Assumptions) -> float:
    """What a million events cost at this size: the traffic's share per request and per
    session (the cost benchmark's), the monitored stack's monthly cost and storage spread
    over the month's events."""
    t = model.traffic
    per_day = t["sessions_per_day"] * (
        t["requests_per_session"] * costs.usd_per_request + costs.usd_per_session
    )
    monthly = costs.monitored_stack_usd_month + users_gb * a.dynamodb_storage_usd_per_gb_month
    return (per_day * MONTH_DAYS + monthly) / t["events_per_month"] * 1e6


# Which alarm watches each kind of ceiling. "exists:" names an alarm in
# template.yaml (tests check the name); "missing:" is one to add (part 3).
ALARMS = {
    "sweeper": "exists: SweeperDurationAlarm, SweeperBehindAlarm (runs > 80% of their budget: "
    "fires before; sessions > 10 min overdue: once behind)",
    "stream": "exists: SessionCloseFunctionIteratorAgeAlarm, SegmentIndexFunctionIteratorAgeAlarm "
    "(> 5 min behind); missing: IteratorAge > 60 s (early)",
    "lambda_concurrency": "exists: {Function}ThrottlesAlarm (fires at the ceiling); "
    "missing: account ConcurrentExecutions > 80% of the quota",
    "lambda_rate": "exists: TrackFunctionThrottlesAlarm (fires at the ceiling); "
    "missing: TrackFunction Invocations > 80% of 10 x the quota",
    "table": "exists: UsersTableThrottlesAlarm, SessionsTableThrottlesAlarm (the first throttle: "
    "at the ceiling); missing: per-table ConsumedWrite/ReadCapacityUnits > 80% of the table quota",
    "key": "exists: UsersTableThrottlesAlarm, SessionsTableThrottlesAlarm (the first throttle of "
    "the table or any index: a hot key); missing: Contributor Insights (which keys)",
    "count": "exists: SegmentsFunctionDurationAlarm, SegmentsFunctionErrorsAlarm "
    "(p99 over 20 s fires before the 30 s, a timeout at it)",
    "import": "exists: ImportThrottledAlarm, ImportFunctionErrorsAlarm, "
    "ImportsDeadLetterQueueDepthAlarm (a DynamoDB throttle of attribute writes, before an "
    "import fails or closes slow; the others on failure); missing: an import's age",
    "backfill": "exists: SegmentBackfillDeadLetterQueueDepthAlarm (failures only); "
    "missing: a backfill's age",
    "console": "exists: ConsoleFunctionDurationAlarm, ConsoleFunctionErrorsAlarm "
    "(p99 over 5 s fires before the 10 s timeout; a timeout is an error)",
}


def alarm_names() -> list[str]:
    """Every alarm ALARMS says exists, for checking against template.yaml."""
    names = []
    for text in ALARMS.values():
        head = text.split(";")[0]
        if head.startswith("exists:"):
            body = head.removeprefix("exists:").split("(")[0]
            names += [n.strip() for n in body.split(",") if n.strip() and "{" not in n]
    return names


# ------------------------------------------------------------------ ceilings
def scaled(w: Workload, monthly_users: float) -> Workload:
    return replace(w, monthly_users=monthly_users, label=f"{monthly_users:,.0f} monthly users")


def ceiling(
    w: Workload,
    build: Callable[[Workload], Model],
    check_key: str | None = None,
    kinds: tuple[str, ...] = ("throughput",),
    low: float = 1e2,
    high: float = 1e11,
) -> tuple[float, Check | None]:
    """The monthly users (this workload's shape) at which the first check of `kinds`
    (or the one named) binds, and that check; (high, None) when none does below high."""

    def failing(mau: float) -> Check | None:
        model = build(scaled(w, mau))
        found = [
            c
            for c in model.checks
            if c.binds and (c.key == check_key if check_key else c.kind in kinds)
        ]
        return max(found, key=lambda c: c.utilisation) if found else None

    if failing(low) is not None:
        return low, failing(low)
    if failing(high) is None:
        return high, None
    for _ in range(60):
        mid = math.sqrt(low * high)
        if failing(mid) is None:
            low = mid
        else:
            high = mid
        if high / low < 1.001:
            break
    return high, failing(high)


SIZES = {"10k": 10_000, "1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000}


def workloads(base: Workload | None = None) -> dict[str, Workload]:
    base = base or Workload("reference", 1)
    return {label: replace(base, label=label, monthly_users=mau) for label, mau in SIZES.items()}
