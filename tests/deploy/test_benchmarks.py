"""The benchmark suite: its capacity arithmetic, its meter, and a smoke run (how CI runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.capacity import gsi_writes, item_size, number_size, read_units, write_units
from tests.conftest import MINUTE, T0_MS, Stack, iso

ROOT = Path(__file__).resolve().parents[2]
INDEX = {
    "IndexName": "by_at",
    "KeySchema": [
        {"AttributeName": "shard", "KeyType": "HASH"},
        {"AttributeName": "at", "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}


def test_item_sizes_follow_the_documented_rules() -> None:
    assert item_size({"name": {"S": "héllo"}}) == 4 + 6
    assert number_size("1795867200000") == 5  # 8 significant digits: 4 + 1
    assert number_size("0") == 2
    assert number_size("-12.5") == 4  # 3 digits: 2 + 1, and 1 for the sign
    assert item_size({"ok": {"BOOL": True}, "no": {"NULL": True}}) == 2 + 1 + 2 + 1
    # map: 3 bytes + per element 1 byte + key + value
    assert item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + 1 + 1 + 2
    assert item_size({"l": {"L": [{"N": "1"}, {"S": "ab"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)
    assert item_size(None) == 0


def test_request_units() -> None:
    assert write_units(0, 100) == 1
    assert write_units(1500, 900) == 2  # the larger of old and new
    assert write_units(0, 1024) == 1 and write_units(0, 1025) == 2
    assert write_units(300, 300, transactional=True) == 2
    assert write_units(0, 0) == 1  # a delete of nothing still costs a unit
    assert read_units(100, consistent=False) == 0.5
    assert read_units(4097, consistent=True) == 2
    assert read_units(0, consistent=True) == 1


def test_gsi_writes_only_when_the_projection_changes() -> None:
    keys = ["pk"]
    old = {"pk": {"S": "a"}, "shard": {"N": "1"}, "at": {"N": "300"}, "end": {"N": "1"}}
    same_key = {**old, "end": {"N": "2"}}
    moved = {**old, "at": {"N": "600"}}
    assert gsi_writes(old, same_key, INDEX, keys) == []  # KEYS_ONLY: other attributes free
    assert gsi_writes(old, moved, INDEX, keys) == [1, 1]  # key change: delete + put
    assert gsi_writes(None, old, INDEX, keys) == [1]
    assert gsi_writes(old, None, INDEX, keys) == [1]
    assert gsi_writes({"pk": {"S": "a"}}, {"pk": {"S": "b"}}, INDEX, keys) == []  # sparse


def test_meter_counts_requests_and_units_of_the_ingest_path(stack: Stack) -> None:
    from benchmarks.meter import Meter

    acme = stack.account()
    with Meter(stack.cloud).installed() as meter:
        assert stack.send(acme, [{"uuid": "u", "timestamp": iso(T0_MS)}]).status == 200
        stack.advance(MINUTE)
        assert stack.send(acme, [{"uuid": "u", "timestamp": iso(T0_MS + 60_000)}]).status == 200
    usage = meter.usage
    assert usage.functions["TrackFunction"].invocations == 2
    assert usage.write_requests("TrackFunction") == 2
    # One unit per request and nothing else: SessionsTable has no index to keep.
    assert usage.wru[("TrackFunction", "SessionsTable")] == 2
    assert sum(usage.wru.values()) == 2
    # First request: session batch-get, profile batch-get (new session); second: session only.
    assert usage.requests[("TrackFunction", "SessionsTable", "BatchGetItem")] == 2
    assert usage.requests[("TrackFunction", "UsersTable", "BatchGetItem")] == 1
    assert usage.rru[("TrackFunction", "SessionsTable")] == 1.0  # 2 eventually consistent
    assert all(0 < size < 1024 for size in usage.item_bytes["SessionsTable"])


def test_meter_bills_a_filtered_scan_for_every_item_it_reads(stack: Stack) -> None:
    """DynamoDB bills a Scan by the bytes it reads, whatever its filter returns."""
    from benchmarks.meter import Meter

    acme = stack.account()
    events = [{"uuid": f"user-{n:02d}", "user_properties": {"name": "x" * 300}} for n in range(30)]
    assert stack.send(acme, events).status == 200
    raw = stack.cloud.dynamodb.scan(TableName="SessionsTable")["Items"]
    scanned = sum(item_size(item) for item in raw)
    assert scanned > 3 * 4096  # more than three 4 KB read units' worth
    with Meter(stack.cloud).installed() as meter:
        assert stack.sweep()["closed"] == 0  # nothing is due: the filter returns nothing
    units = meter.usage.rru[("SessionCloseFunction", "SessionsTable")]
    assert units == read_units(scanned, consistent=False)


def test_the_sdk_shape_replays_the_flush_policy() -> None:
    """A flush flush_interval after the first queued event, at flush_at queued, and on hide."""
    from benchmarks.traffic import FlushPolicy, sdk_requests

    def sent(policy: FlushPolicy, times_s: list[int], hidden_s: int) -> list[tuple[int, list]]:
        events = [(t * 1000, {"type": f"e{t}"}) for t in times_s]
        return [
            (at // 1000, [e["type"] for e in chunk])
            for at, chunk in sdk_requests(policy, events, hidden_s * 1000, "u")
        ]

    new, old = FlushPolicy(20, 30_000, 100), FlushPolicy(20, 5_000, 100)
    assert sent(new, [0, 10, 20, 100], 120) == [
        (30, ["e0", "e10", "e20"]),
        (120, ["e100", "page_hidden"]),  # hidden before its timer: flushed with the hide
    ]
    assert sent(old, [0, 10, 20, 100], 120) == [
        (5, ["e0"]),
        (15, ["e10"]),
        (25, ["e20"]),
        (105, ["e100"]),
        (120, ["page_hidden"]),
    ]
    burst = sent(new, list(range(25)), 60)
    assert [(at, len(chunk)) for at, chunk in burst] == [(19, 20), (50, 5), (60, 1)]


def test_the_sdk_replay_keeps_events_inside_the_session_timeout() -> None:
    """SDK 1.1's guard (docs/sdk.md), as the replay applies it: 30-minute timeout."""
    from benchmarks.traffic import SDK_POLICIES, event_due

    sdk, minute = SDK_POLICIES["sdk"], 60_000
    t = 100 * minute

    def due(gap_min: float | None, heartbeat: bool = False) -> float:
        previous = None if gap_min is None else t - round(gap_min * minute)
        return (event_due(sdk, t, previous, 30 * minute, heartbeat=heartbeat) - t) / minute

    assert due(None) == 0  # nothing known before it: at once
    assert due(1) == 4 and due(1, heartbeat=True) == 5  # a burst waits
    assert due(22) == 2  # never past 24 minutes (4/5) after the previous event
    assert due(24.5) == due(29.9) == due(36) == 0  # a gap near the timeout: at once
    assert due(37) == 4  # past 6/5 of it: a new session whatever it waits


def _sessions_on_the_stack(
    stack: Stack, policy: Any, minutes: list[float], hidden: float, start: int = T0_MS
) -> Any:
    """One user's events (minutes after start) sent as the replay's SDK sends them,
    each request when it leaves, the sweeper run every minute in between; the profile."""
    from benchmarks.traffic import sdk_requests
    from insights import clock

    acme = stack.account()  # the default 30-minute timeout
    events = [
        (ms, {"uuid": "u", "type": "click", "timestamp": iso(ms), "interactive": True})
        for ms in (start + round(m * 60_000) for m in minutes)
    ]
    now = start
    clock.freeze(now)
    for at, chunk in sdk_requests(policy, events, start + round(hidden * 60_000), "u"):
        while now + 60_000 <= at:  # a window due meanwhile closes before the request
            now += 60_000
            clock.freeze(now)
            stack.sweep()
        clock.freeze(now := at)
        assert stack.send(acme, chunk, sent_at=iso(at)).status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()
    return stack.standard(acme, "u")


def test_the_replayed_sdk_never_splits_a_session_at_gaps_just_under_the_timeout(
    stack: Stack,
) -> None:
    """Gaps of 29:50, 25 and 22 minutes, and bursts between: one session, with the
    events held as the replay's SDK holds them; without the guard, the same holds split it."""
    from benchmarks.traffic import SDK_POLICIES

    minutes = [0, 1, 2, 31 + 50 / 60, 32.5, 33, 58, 80]
    guarded = SDK_POLICIES["sdk"]
    profile = _sessions_on_the_stack(stack, guarded, minutes, hidden=83)
    assert profile["total_sessions"] == 1
    assert profile["total_session_duration"] == 83 * 60  # first event to page_hidden
    unguarded = guarded._replace(guard=False)
    later = T0_MS + 24 * 60 * 60_000
    split = _sessions_on_the_stack(stack, unguarded, minutes, hidden=83, start=later)
    assert split["total_sessions"] > 1


def test_containers_stay_warm_while_used_and_overlapping_calls_start_more() -> None:
    from benchmarks.allin import cold_flags

    minute = 60_000
    starts = [0, minute, 20 * minute, 20 * minute + 1]
    took = [100, 100, 100, 100]
    assert cold_flags(starts, took, serial=False) == [True, False, True, True]
    # A stream shard's batches wait for each other: one container.
    assert cold_flags(starts, took, serial=True) == [True, False, True, False]
    assert cold_flags(starts, took, serial=True, warm_at_start=True)[0] is False
    assert cold_flags([0, 11 * minute], [1, 1], serial=True, idle_minutes=10) == [True, True]


def test_the_meter_bills_the_function_not_moto(stack: Stack) -> None:
    """An invocation's CPU leaves out moto's side of its calls and the meter's own work."""
    from benchmarks.meter import Meter

    acme = stack.account()
    events = [{"uuid": f"user-{n:02d}", "timestamp": iso(T0_MS)} for n in range(40)]
    with Meter(stack.cloud).installed() as meter:
        assert stack.send(acme, events).status == 200
    used = meter.usage.functions["TrackFunction"]
    assert meter.excluded_cpu_s > 0
    assert 0 < used.cpu_ms[0] < used.durations_ms[0]


def test_the_lambda_build_installs_the_native_user_agent_parser() -> None:
    """Part 3's winner is the default: the layer installs ua-parser[regex]."""
    import ua_parser

    requirements = (ROOT / "layers/core/requirements.txt").read_text()
    assert "ua-parser[regex]" in requirements
    assert ua_parser.BestAvailableResolver.__module__ == "ua_parser.regex"


EXPECTED = {
    "cost": [
        "usd_per_million_events",
        "usd_per_million_events_api_route",
        "ingest_writes_per_request_user",
        "ingest_reads_per_request_user",
        "usd_per_million_requests",
        "events_per_request",
        "wru_per_event",
        "rru_per_event",
        "track_ms_per_invocation",
        "session_item_bytes_p99",
        "usd_per_million_events_with_idle_stack",
        "usd_per_million_events_monitoring",
        "close_wru",
        "first_close_share",
        "sweeper_idle_usd_per_month",
        "idle_stack_usd_per_month",
        "idle_stack_monitored_usd_per_month",
        "product.usd_per_million_events",
        "bounce.usd_per_million_events",
        "sdk.usd_per_million_events",
        "sdk_5s.usd_per_million_events",
        "saas_month.usd_per_million_events",
        "saas_month.usd_per_million_events_large",
        "large.usd_per_million_events",
        "first_call.TrackFunction",
        "first_call.TrackFunction_sdk_segments",
        "first_call.SegmentIndexFunction",
        "first_call.SessionCloseFunction_init",
        "bounce.usd_per_million_events_with_idle_stack",
        "bounce.close_wru",
    ],
    "ingest_cpu": [
        "ingest_cpu.us_per_event_batch_1",
        "ingest_cpu.us_per_event_batch_10",
        "ingest_cpu.us_per_event_batch_100",
        "ingest_cpu.writes_per_request_batch_10",
        "ingest_cpu.session_item_bytes_bound",
        "cold_start.import_boto3_ms",
        "cold_start.TrackFunction_ratio",
        "cold_start.ApiFunction_ratio",
        "cold_start.SessionCloseFunction_ratio",
        "cold_start.UserRetentionFunction_ratio",
        "cold_start.ImportFunction_ratio",
        "cold_start.ImportsApiFunction_ratio",
        "cold_start.SegmentsFunction_ratio",
        "cold_start.SegmentIndexFunction_ratio",
        "cold_start.ScimFunction_ratio",
        "cold_start.OidcFunction_ratio",
    ],
    "enrichment": [
        "ua.basic_setup_ms",
        "ua.native_setup_ms",
        "ua.basic_uncached_us",
        "ua.native_uncached_us",
        "ua.cached_us",
        "geo.uncached_us",
        "geo.cached_us",
        "hit_rate.ua",
        "hit_rate.geo",
    ],
    "segments": [
        "eval_ms_per_user_100_segments",
        "items_read_per_user.signed_up_last_week",
        "items_read_per_user.once_never_back",
        "items_read_per_user.recently_vip",
        "items_read_per_user.stopped_a_month_ago",
    ],
    "imports": [
        "rows_per_s",
        "writes_per_changed_row",
        "profile_writes_per_changed_row",
        "profile_writes_per_unchanged_row",
        "job_writes_unchanged_file",
        "peak_rss_ratio",
    ],
    "closes": [
        "wru_first",
        "wru_returning",
        "wru_returning_changed",
        "wru_first_bare",
        "wru_returning_bare",
        "wru_returning_changed_bare",
    ],
    "console": [
        "rru_users",
        "rru_users_prefix",
        "rru_attributes",
        "rru_stats_30",
        "rru_stats_180",
        "wru_first_batched",
        "wru_returning_batched",
    ],
    "scale": [
        "stage.sweeper_closes_per_s",
        "stage.close_apply_records_per_s",
        "stage.segment_index_records_per_s",
        "stage.segment_index_import_records_per_s",
        "stage.import_rows_per_s",
        "stage.backfill_users_per_s",
        "stage.track_ms_per_request",
        "stage.count_members_per_s.signed_up_last_week",
        "stage.count_reads_per_s.stopped_a_month_ago",
        "sessions_per_day_ceiling",
        "monthly_users_ceiling",
        "10k.peak_requests_per_s",
        "10M.lambda_concurrency",
        "10M.hottest_key_wcu",
        "100M.sweeper_closes_needed_per_run",
        "1M.first_ceiling_utilisation",
    ],
}


@pytest.mark.long
def test_smoke_run_produces_every_figure(tmp_path: Path) -> None:
    """`python -m benchmarks --smoke`, as CI runs it: tiny sizes, no timing assertions."""
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["smoke"] is True
    # Goals are for the full sizes: a smoke run never claims one met or missed.
    assert "MISSED" not in run.stdout and "not applicable at smoke size" in run.stdout
    with_goals = [
        f for part in results["parts"].values() for f in part["figures"].values() if f["goal"]
    ]
    assert with_goals and all(f["met"] is None for f in with_goals)
    assert results["machine"]["nproc"] >= 1 and results["machine"]["python"]
    for part, names in EXPECTED.items():
        figures = results["parts"][part]["figures"]
        prefix = "" if part == "ingest_cpu" else f"{part}."
        for name in names:
            figure = figures[prefix + name]
            assert figure["runs"] >= 1 and figure["samples"], name
            assert figure["min"] <= figure["median"] <= figure["max"], name
    cost = results["parts"]["cost"]
    assert cost["figures"]["cost.usd_per_million_events"]["median"] > 0
    assert {t["title"].split(" (")[0] for t in cost["tables"]} >= {
        "Cost by component",
        "Cost by function",
    }
    segments = results["parts"]["segments"]
    plans = {row[2] for row in segments["tables"][0]["rows"]}
    assert all(plan.startswith("index:") for plan in plans), plans  # the four use an index
    imports = results["parts"]["imports"]["figures"]
    assert imports["imports.profile_writes_per_unchanged_row"]["median"] == 0
    # Write units of a close are counts from item sizes: exact, on any machine.
    closes = {k: f["median"] for k, f in results["parts"]["closes"]["figures"].items()}
    # Session delete, profile put (no transaction), 3 profile GSIs (by_uuid: the
    # console's user list), and the batch's pending sums for the console (1 WRU).
    assert closes["closes.wru_first_bare"] == 4 + 1 + 1
    assert closes["closes.wru_first"] == 6 + 1 + 1  # + the entry the spec's questions need
    # Session delete, profile put, by_last_seen's key moving (a delete and a put),
    # + the pending sums.
    assert closes["closes.wru_returning"] == closes["closes.wru_returning_bare"] == 4 + 1
    # The hourly roll-up alone in its hour: the day, the users count and the 4
    # attributes (a transaction, 2 WRU each), plus the marker; then the day alone.
    assert closes["closes.rollup_wru_first"] == 2 * 6 + 2
    assert closes["closes.rollup_wru_returning"] == 2 * 1 + 2
    console = {k: f["median"] for k, f in results["parts"]["console"]["figures"].items()}
    # 8 KEYS_ONLY range reads (0.5 each) + 25 profiles under 4 KB (0.5 each)
    assert console["console.rru_users"] == 8 * 0.5 + 25 * 0.5
    # The aggregates' Query, the roll-up marker and the pending sums after it.
    assert console["console.rru_attributes"] == console["console.rru_stats_30"] == 3 * 0.5
    assert 0 < console["console.wru_first_batched"] < 1
    # The capacity model: measured stages in, a ceiling with its cause per size out.
    scale = results["parts"]["scale"]
    ceiling = scale["summary"]["sessions_per_day_ceiling"]
    assert ceiling["sessions_per_day"] > 0 and ceiling["binds"] and ceiling["limit"]
    sizes = scale["summary"]["workloads"]
    assert list(sizes) == ["10k", "1M", "10M", "100M"]
    assert all("first_ceiling" in s and "cause" in s for s in sizes.values())
    assert sizes["100M"]["first_ceiling"] is not None  # something binds at 100M users today
    assert scale["parameters"]["design"]["shards"] >= 1
    assert {q["key"] for q in scale["parameters"]["stages"]["questions"]} == {
        "signed_up_last_week",
        "once_never_back",
        "recently_vip",
        "stopped_a_month_ago",
    }
    assert not (tmp_path / "RESULTS.md").exists()  # smoke figures never replace the real ones


@pytest.mark.parametrize(
    "argv",
    [["--runs", "0"], ["--jobs", "0"], ["--shape", "reference"], ["--shape", "sdk_30s"]],
)
def test_cli_rejects_bad_arguments(argv: list[str]) -> None:
    from benchmarks.run import main

    with pytest.raises(SystemExit):
        main(argv)
