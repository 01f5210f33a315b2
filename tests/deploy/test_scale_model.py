"""The capacity model of benchmarks/scale_model.py: its arithmetic, and that it reads the code."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.scale_model import (
    ALARMS,
    Design,
    Question,
    Stages,
    Workload,
    alarm_names,
    ceiling,
    evaluate,
    sdk_flush_policy,
    workloads,
)
from insights.local.template import Template

ROOT = Path(__file__).resolve().parents[2]


def stages(**changes: float) -> Stages:
    """Round throughputs, so the arithmetic below can be done by hand."""
    values = {
        "track_ms_base": 20.0,
        "track_ms_per_event": 0.0,
        "session_bytes": 400.0,
        "profile_bytes_base": 400.0,
        "profile_bytes_per_attribute": 40.0,
        "entry_bytes": 200.0,
        "sweeper_closes_per_s": 100.0,
        "sweeper_close_latency_ms": 5.0,
        "close_apply_records_per_s": 100.0,
        "segment_index_records_per_s": 100.0,
        "segment_index_import_records_per_s": 100.0,
        "backfill_users_per_s": 50.0,
        "import_rows_per_s": 200.0,
        "import_row_latency_ms": 4.0,
        "pending_us_per_item": 100.0,
        "pending_item_bytes": 300.0,
        **changes,
    }
    question = Question(
        key="q",
        label="A question",
        member_share=0.5,
        items_per_member=1.0,
        rru_per_member=0.1,
        members_per_s=290.0,
        cpu_us_per_member=1_000.0,  # 1 ms of CPU at one vCPU, no waiting
        latency_ms_per_member=0.0,
        bytes_per_member=1_000.0,
    )
    return Stages(**values, questions=(question,))


@pytest.fixture(scope="module")
def design() -> Design:
    return Design.from_code()


def test_design_constants_come_from_the_code_and_template(design: Design) -> None:
    from insights.domain.segments.indexing import SHARDS
    from insights.services.core import sweep
    from insights.services.segments import index

    assert design.shards == SHARDS
    assert design.sweep_max_segments == sweep.MAX_SEGMENTS
    assert design.sweep_close_concurrency == sweep.CLOSE_CONCURRENCY
    assert design.backfill_chains_per_index == index.BACKFILL_CHAINS == SHARDS
    assert design.sweep_interval_s == 300  # SweepSchedule's default, rate(5 minutes)
    assert design.sweep_budget_s == 55  # the sweeper's 60 s timeout less its 5 s reserve
    assert design.stream_batch["SessionCloseFunction"] == 100
    params = Template.load(ROOT / "template.yaml").parameter_defaults()
    assert design.parallelization_factor == params["StreamParallelizationFactor"] == 2
    track = Template.load(ROOT / "template.yaml").resources["TrackFunction"]["Properties"]
    assert design.memory_mb["TrackFunction"] == track["MemorySize"]
    assert (design.sdk_flush_at, design.sdk_flush_interval_s * 1000) == sdk_flush_policy()
    from insights.services.segments import counts, queries

    assert design.count_budget_s == counts.COUNT_BUDGET_S
    assert design.count_round_s == counts.COUNT_ROUND_S
    assert design.count_round_items == queries.MAX_ROUND_ITEMS
    assert design.count_workers == counts.COUNT_WORKERS == 1
    assert design.count_holds_members is False and counts.COUNT_KEEPS == 0
    # One place to change: an override replaces the code's value.
    assert Design.from_code(shards=64).shards == 64


def test_the_sdk_flush_policy_is_read_from_its_script(tmp_path: Path) -> None:
    script = tmp_path / "insights.js"
    script.write_text("var opts = {\n  flushAt: 20, // events\n  flushInterval: 30000, // ms\n};")
    assert sdk_flush_policy(script) == (20, 30_000)
    script.write_text("var opts = {flushAt: 20};")
    with pytest.raises(ValueError, match="flushInterval"):
        sdk_flush_policy(script)


def test_requests_per_session_follow_the_flush_policy(design: Design) -> None:
    # 21 events over 10 minutes: one every 30 s. The first leaves alone; a 30 s
    # timer takes each of the others and the next: 2 a batch, 10 batches, half a
    # batch more at the end, plus one request per extra hide.
    w = Workload("w", 1e6, events_per_session=21, session_minutes=10, flush_interval_s=30)
    model = evaluate(replace(w, page_hides_per_session=1), design, stages())
    assert model.traffic["events_per_batch"] == pytest.approx(2.0)
    assert model.traffic["requests_per_session"] == pytest.approx(1 + 20 / 2 + 0.5)
    assert model.traffic["events_per_request"] == pytest.approx(21 / 11.5)
    more = evaluate(replace(w, page_hides_per_session=3), design, stages())
    assert more.traffic["requests_per_session"] == pytest.approx(1 + 20 / 2 + 0.5 + 2)
    # flushAt caps a batch whatever the timer: one request an event (and hide).
    capped = evaluate(replace(w, flush_at=1), design, stages())
    assert capped.traffic["events_per_request"] == pytest.approx(21 / 22)


def test_the_sweeper_closes_what_its_budget_leaves_after_the_scan(design: Design) -> None:
    w = Workload("w", 1e6)
    model = evaluate(w, design, stages())
    sweep = model.sweeper
    assert sweep["closes_needed"] == pytest.approx(
        model.traffic["peak_sessions_per_s"] * design.sweep_interval_s
    )
    assert sweep["scan_bytes"] == pytest.approx(sweep["open_sessions"] * 400)
    # 10 ms a close, 5 of them waiting on DynamoDB: closes side by side overlap
    # their waits, not their CPU, so the code's 16 in flight top out at 200 closes/s...
    assert design.sweep_close_concurrency >= 2
    assert sweep["closes_capacity"] == pytest.approx(200 * (55 - sweep["scan_s"]))
    check = next(c for c in model.checks if c.key == "sweeper")
    assert check.binds == (sweep["closes_needed"] > sweep["closes_capacity"])
    # ...as do 2 or 10; one at a time closes at the stage's rate...
    one = evaluate(w, replace(design, sweep_close_concurrency=1), stages())
    assert one.sweeper["closes_capacity"] == pytest.approx(100 * (55 - one.sweeper["scan_s"]))
    two = evaluate(w, replace(design, sweep_close_concurrency=2), stages())
    ten = evaluate(w, replace(design, sweep_close_concurrency=10), stages())
    assert two.sweeper["close_rate"] == ten.sweeper["close_rate"] == pytest.approx(200)
    # ...and more invocations add theirs.
    fanned = evaluate(w, replace(design, sweep_close_concurrency=10, sweep_workers=4), stages())
    assert fanned.sweeper["close_rate"] == pytest.approx(800)


def test_per_key_write_rates_divide_by_the_shard_count(design: Design) -> None:
    w = Workload("w", 1e7)

    def returning_key(shards: int) -> float:
        model = evaluate(w, replace(design, shards=shards), stages())
        (row,) = [k for k in model.keys if k["key"] == "{account}#{shard}#2+"]
        return row["peak_wcu"]

    assert returning_key(8) == pytest.approx(8 * returning_key(64))
    model = evaluate(w, design, stages())
    (row,) = [k for k in model.keys if k["key"] == "{account}#{shard}#2+"]
    traffic = model.traffic
    returning = traffic["peak_sessions_per_s"] * 0.9 - traffic["peak_first_closes_per_s"]
    # The largest account's returning closes move their by_last_seen entry: 2 writes.
    assert row["peak_wcu"] == pytest.approx(2 * 0.8 * returning / design.shards)


def test_imports_follow_the_code_write_side_by_side_and_keep_to_their_pace(
    design: Design,
) -> None:
    from insights.domain.imports import pace
    from insights.services.imports import slices

    assert design.import_write_concurrency == slices.IMPORT_WRITE_CONCURRENCY > 1
    assert design.import_rows_per_s_cap == slices.IMPORT_ROWS_PER_SECOND
    assert design.import_rows_per_s_cap == pace.rows_per_second_cap(design.shards)
    w = Workload("w", 1e7, import_rows=1_000_000)

    def rate(**changes: float) -> float:
        return evaluate(w, replace(design, **changes), stages()).batch["import_rows_per_s"]

    # 200 rows/s measured one at a time, 4 ms of it waiting: 1 ms of CPU a row.
    assert rate(import_write_concurrency=1) == pytest.approx(200)
    assert rate(import_write_concurrency=4) == pytest.approx(800)
    assert rate(import_write_concurrency=16) == pytest.approx(1000)  # the CPU binds
    # Chains multiply, up to the pace.
    assert rate(import_write_concurrency=4, import_chains_per_file=2) == pytest.approx(1600)
    assert rate(import_write_concurrency=16, import_chains_per_file=8) == pytest.approx(
        design.import_rows_per_s_cap
    )
    # The pace keeps the busiest GSI key the import feeds under its share of 1,000 WCU/s.
    paced = evaluate(w, replace(design, import_chains_per_file=8), stages())
    import_wcu = max(k["import_wcu"] for k in paced.keys)
    assert import_wcu == pytest.approx(pace.IMPORT_KEY_SHARE * 1_000)


def test_counts_take_members_over_the_measured_rate(design: Design) -> None:
    whole = replace(design, count_budget_s=None, count_holds_members=True)
    model = evaluate(Workload("w", 1e6), whole, stages())
    (question,) = model.questions
    members = 0.5 * model.traffic["largest_account_users"]
    assert question["members"] == pytest.approx(members)
    # 1 ms of CPU at one vCPU is 1769/512 ms at SegmentsFunction's 512 MB.
    assert question["seconds"] == pytest.approx(members * 1e-3 * 1769 / 512)
    assert question["requests"] == 1 and question["request_seconds"] == question["seconds"]
    split = evaluate(Workload("w", 1e6), replace(whole, count_workers=8), stages())
    assert split.questions[0]["seconds"] == pytest.approx(question["seconds"] / 8)
    assert split.questions[0]["memory_mb"] == pytest.approx(question["memory_mb"] / 8)
    assert question["memory_mb"] == pytest.approx(members * 1_000 / 1e6)
    check = next(c for c in model.checks if c.key == "count.q")
    assert check.binds  # ~27,000 s in one request


def test_a_count_in_parts_answers_each_request_in_time(design: Design) -> None:
    """Today's counts stop after the budget and go on in the next request."""
    slow = stages()
    (q,) = slow.questions
    fast = replace(slow, questions=(replace(q, cpu_us_per_member=100.0),))
    model = evaluate(Workload("w", 1e6), design, fast)
    (question,) = model.questions
    seconds = question["seconds"]
    assert seconds > 300  # the whole count still takes its time...
    assert question["requests"] == pytest.approx(seconds / design.count_budget_s, abs=1)
    # ...in requests of the budget and one round: 1,000 items from each of 16 streams
    # at 1 item a member, 0.1 ms at one vCPU (5.5 s), cut to the round's second.
    assert design.count_round_s < 16_000 * 1e-4 * 1769 / 512
    assert question["request_seconds"] == pytest.approx(
        design.count_budget_s + design.count_round_s
    )
    check = next(c for c in model.checks if c.key == "count.q")
    assert check.demand == question["request_seconds"] and not check.binds
    # What it holds: the keys of one request's members, not every member.
    held = 0.5 * model.traffic["largest_account_users"] * question["request_seconds"] / seconds
    assert question["memory_mb"] == pytest.approx(held * 1_000 / 1e6)
    # Rounds sized by time keep a slow path (3.45 ms an item) in time too...
    slow_path = evaluate(Workload("w", 1e6), design, slow)
    assert not next(c for c in slow_path.checks if c.key == "count.q").binds
    # ...where rounds of 1,000 items a stream would not: 16,000 items take 55 s.
    fixed = evaluate(Workload("w", 1e6), replace(design, count_round_s=1e9), slow)
    assert next(c for c in fixed.checks if c.key == "count.q").binds


def test_the_ceiling_is_where_the_check_starts_to_bind(design: Design) -> None:
    base = workloads()["10k"]
    one_at_a_time = replace(design, sweep_close_concurrency=1)  # the close rate is the stage's

    def build(w: Workload):
        return evaluate(w, one_at_a_time, stages())

    mau, check = ceiling(base, build, check_key="sweeper")
    assert check is not None and check.key == "sweeper"
    below = next(
        c for c in build(replace(base, monthly_users=mau * 0.99)).checks if c.key == "sweeper"
    )
    above = next(
        c for c in build(replace(base, monthly_users=mau * 1.01)).checks if c.key == "sweeper"
    )
    assert not below.binds and above.binds
    # A faster sweeper moves that ceiling up in proportion (the scan is small here).
    faster = ceiling(  # twice the close rate
        base,
        lambda w: evaluate(w, one_at_a_time, stages(sweeper_closes_per_s=200.0)),
        check_key="sweeper",
    )
    assert faster[0] == pytest.approx(2 * mau, rel=0.05)


def test_every_alarm_the_model_names_exists_in_the_template() -> None:
    template = (ROOT / "template.yaml").read_text()
    names = alarm_names()
    assert "SweeperBehindAlarm" in names and len(names) >= 8
    for name in names:
        assert f"\n  {name}:\n" in template, name
    assert all(text.startswith(("exists:", "missing:")) for text in ALARMS.values())


def test_the_model_alone_reruns_from_results_json(tmp_path: Path) -> None:
    """`python -m benchmarks.scale` reads the stages of a previous run and models again."""
    from dataclasses import asdict

    from benchmarks import scale

    results = tmp_path / "results.json"
    part = {"parameters": {"stages": asdict(stages())}, "figures": {}, "tables": [], "notes": []}
    results.write_text(json.dumps({"parts": {"scale": part}}))
    assert scale.stages_from_json(part["parameters"]["stages"]) == stages()
    scale.main(["--results", str(results), "--set", "shards=64", "--set", "peak_factor=3"])
    with pytest.raises(SystemExit):
        scale.main(["--results", str(results), "--set", "nonsense=1"])
