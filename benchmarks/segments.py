"""Part 4: segments — items read per user returned, and per-user evaluation time.

Items read: a synthetic account is seeded into UsersTable on moto
(in-process) with the storage layer's own conversions: each profile goes
through ``insights.storage.core.records.profile_to_item`` (which also sets
``ix_shard``, the key of the first_seen / last_seen GSIs) and its index
entries are ``insights.domain.segments.indexing.changes(None, profile)``,
written as ``IndexEntryItem``s exactly as ``storage.segments.apply_index_changes``
(what SegmentIndexFunction runs on the stream) writes them, only batched
over many users. The spec's four questions are then saved as segments and
counted through ``services.segments.count_users``: the real planner, the
real index reads and BatchGetItem, the real evaluator. The ``plan`` it
returns says how many items it read.

Evaluation: one profile against 100 parsed segment definitions (the four
questions and 96 other rules of the kinds the API accepts) with
``evaluate.is_member``, as ``segments_of_user`` does after its one GetItem;
process CPU time per user.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.core import Config, Figure, PartResult, Table, fmt

NAME = "segments"
TITLE = "Part 4: segments (items read per user returned, evaluation per user)"

DAY_MS = 86_400_000
NOW_MS = 1_795_867_200_000  # 2026-11-28T12:00:00Z: a frozen "now" for every run
FULL_SIZES = (100_000,)
SMOKE_SIZES = (200,)
# The fast GSI queries are checked against moto's own on this many users.
CHECK_SIZE = 2_000
EVAL_USERS = 1_000

QUESTIONS: dict[str, tuple[str, Any]] = {
    "signed_up_last_week": (
        "Signed up last week",
        {"attribute": "first_seen", "op": "within_last", "value": "7d"},
    ),
    "once_never_back": (
        "Signed up once, never came back",
        {
            "all": [
                {"attribute": "total_sessions", "op": "equals", "value": 1},
                {"attribute": "last_seen", "op": "not_within_last", "value": "7d"},
            ]
        },
    ),
    "recently_vip": (
        "Recently upgraded to VIP",
        {"attribute": "custom.plan", "op": "changed_within", "value": "7d", "to": "VIP"},
    ),
    "stopped_a_month_ago": (
        "Active until a month ago, then stopped",
        {
            "all": [
                {"attribute": "total_sessions", "op": "gte", "value": 2},
                {"attribute": "last_seen", "op": "not_within_last", "value": "30d"},
                {"attribute": "last_seen", "op": "within_last", "value": "60d"},
            ]
        },
    ),
}

# Counted beside the questions (table rows, not figures): a last_seen plan
# that reads both sessions buckets, and a rule the index items cannot decide.
EXTRA: dict[str, tuple[str, Any]] = {
    "active_last_week": (
        "(extra) Active in the last 7 days",
        {"attribute": "last_seen", "op": "within_last", "value": "7d"},
    ),
    "gb_signed_up_last_month": (
        "(extra) In GB, signed up in the last 30 days",
        {
            "all": [
                {"attribute": "first_seen", "op": "within_last", "value": "30d"},
                {"attribute": "country", "op": "equals", "value": "GB"},
            ]
        },
    ),
}

PLACES = (
    ("GB", "England", "London"),
    ("GB", "Scotland", "Edinburgh"),
    ("US", "California", "San Francisco"),
    ("US", "New York", "New York"),
    ("US", "Texas", "Austin"),
    ("DE", "Berlin", "Berlin"),
    ("FR", "Ile-de-France", "Paris"),
    ("BR", "Sao Paulo", "Sao Paulo"),
    ("IN", "Karnataka", "Bengaluru"),
    ("JP", "Tokyo", "Tokyo"),
)
BROWSERS = (("Chrome", "131"), ("Safari", "18"), ("Firefox", "133"), ("Edge", "131"))
PLANS = ("free", "free", "free", "free", "pro", "pro", "VIP")
SOURCES = ("ads", "organic", "referral", "newsletter")


def population(size: int, account_id: str, seed: int) -> Iterator[Any]:
    """Profiles with closed sessions: sign-ups spread over 200 days (some past retention).

    30% of users had one session; the others 2-40 sessions between first and
    last seen. Most carry a plan (set some time between sign-up and last
    visit, resent on later visits), and some a signup source, seats and a
    newsletter flag.
    """
    from insights.domain.core.profile import CustomValue, Profile

    rng = random.Random(seed)
    for n in range(size):
        first = NOW_MS - int(rng.uniform(0, 200) * DAY_MS)
        if rng.random() < 0.3:
            sessions, last = 1, first + rng.randint(60_000, 1_800_000)
        else:
            sessions = rng.randint(2, 40)
            last = first + int((NOW_MS - first) * rng.random() ** 0.5)
        last = min(last, NOW_MS)
        country, region, city = rng.choice(PLACES)
        browser, version = rng.choice(BROWSERS)
        custom: dict[str, CustomValue] = {}
        if rng.random() < 0.8:
            changed = first + int((last - first) * rng.random())
            custom["plan"] = CustomValue(rng.choice(PLANS), last, "event", changed)
        if rng.random() < 0.5:
            custom["signup_source"] = CustomValue(rng.choice(SOURCES), first, "event")
        if rng.random() < 0.3:
            custom["seats"] = CustomValue(rng.randint(1, 200), last, "api")
        if rng.random() < 0.3:
            custom["newsletter"] = CustomValue(rng.random() < 0.5, last, "api")
        yield Profile(
            account_id=account_id,
            uuid=f"user-{seed}-{n:07d}",
            created_at=first - 60_000,
            first_seen=first,
            last_seen=last,
            total_sessions=sessions,
            total_duration_ms=sessions * rng.randint(30_000, 1_800_000),
            country=country,
            region=region,
            city=city,
            browser_name=browser,
            browser_version=version,
            custom=custom,
        )


def other_rules(count: int) -> list[Any]:
    """Segment rules of the kinds a product team writes, beyond the four questions."""
    rules: list[Any] = []
    k = 0
    while len(rules) < count:
        country, _, city = PLACES[k % len(PLACES)]
        browser = BROWSERS[k % len(BROWSERS)][0]
        days = (1, 3, 7, 14, 30, 60, 90)[k % 7]
        templates = [
            {"attribute": "country", "op": "equals", "value": country},
            {
                "all": [
                    {"attribute": "browser_name", "op": "in", "value": [browser, "Edge"]},
                    {"attribute": "last_seen", "op": "within_last", "value": f"{days}d"},
                ]
            },
            {"attribute": "custom.plan", "op": "equals", "value": PLANS[k % len(PLANS)]},
            {
                "all": [
                    {"attribute": "total_sessions", "op": "gte", "value": 2 + k % 10},
                    {"attribute": "avg_session_duration", "op": "gt", "value": 60 * (k % 5)},
                ]
            },
            {
                "any": [
                    {"attribute": "city", "op": "contains", "value": city[:4], "ignore_case": True},
                    {"attribute": "custom.seats", "op": "between", "value": [k, k + 50]},
                ]
            },
            {
                "all": [
                    {"attribute": "custom.newsletter", "op": "equals", "value": True},
                    {"not": {"attribute": "country", "op": "in", "value": ["US", country]}},
                ]
            },
            {"attribute": "custom.signup_source", "op": "is_set"},
            {
                "all": [
                    {"attribute": "first_seen", "op": "after", "value": f"{days * 2}d"},
                    {"attribute": "custom.plan", "op": "not_equals", "value": "free"},
                    {"attribute": "browser_version", "op": "starts_with", "value": "13"},
                ]
            },
        ]
        rules.append(templates[k % len(templates)])
        k += 1
    return rules


def definitions() -> list[Any]:
    """100 parsed segments: the four questions and 96 others."""
    from insights.domain.segments.rules import parse_rules

    raw = [rules for _, rules in QUESTIONS.values()] + other_rules(100 - len(QUESTIONS))
    return [parse_rules(r) for r in raw]


def evaluation_us(profiles: list[Any], nodes: list[Any]) -> tuple[float, float]:
    """(CPU µs per user against every node, share of (user, segment) pairs that matched)."""
    from insights.domain.segments.evaluate import is_member

    matched = 0
    started = time.process_time_ns()
    for profile in profiles:
        matched += sum(1 for node in nodes if is_member(node, profile, NOW_MS))
    elapsed = time.process_time_ns() - started
    return elapsed / 1000 / len(profiles), matched / (len(profiles) * len(nodes))


def _stored_items(profiles: list[Any], needs: Any) -> Iterator[dict[str, Any]]:
    """The items production stores for these profiles (DynamoDB JSON), as first written.

    Index entries are those of `needs`, as the stream and the backfill write
    them once the account's segments need them.
    """
    from insights.domain.segments.indexing import changes
    from insights.storage.core.records import profile_to_item
    from insights.storage.segments import entry_item

    for profile in profiles:
        item = profile_to_item(profile, None)
        item.version = 1  # what a first conditional save leaves
        yield item.serialize()
        diff = changes(None, profile, needs)
        for entry in diff.puts:  # the items apply_index_changes writes
            yield entry_item(diff.pk, entry).serialize()


def _count(cloud: Any, account_id: str, segment_id: str) -> dict[str, Any]:
    """count_users as SegmentsFunction runs it, with its read units metered."""
    from benchmarks.meter import Meter, Usage
    from insights.services.segments import counts as service

    meter = Meter(cloud)
    meter.usage = Usage()
    started = time.perf_counter()
    with meter.installed():
        meter.current = "SegmentsFunction"  # billed, as inside the function
        answer = service.count_users(account_id, segment_id, NOW_MS, whole=True)
    rru = sum(meter.usage.rru.values())
    queries = sum(n for (_f, _t, op), n in meter.usage.requests.items() if op == "Query")
    seconds = time.perf_counter() - started
    return {**answer, "rru": rru, "query_requests": queries, "seconds": seconds}


def _all_hits(query: Any, page: int) -> list[tuple[str, Any, Any]]:
    """Every hit of one index stream, read in pages of `page` (start keys included)."""
    from insights.storage import segments as seg_store

    hits: list[tuple[str, Any, Any]] = []
    after = None
    while True:
        found, after = seg_store.read_index(query, after, page)
        hits += [(h.pk, h.position, h.partial) for h in found]
        if after is None:
            return hits


def seed_and_count(size: int, seed: int, *, compare: bool = False) -> dict[str, Any]:
    """Seed one account of `size` users on moto; count each question; what each plan read.

    compare: also answer every question and every index stream of its plan
    with moto's own (unpatched) GSI query, and require the same answers.
    """
    from moto import mock_aws

    from benchmarks.fastmoto import indexed_gsi_queries, seed_items
    from insights import clock
    from insights.local.cloud import LocalCloud

    clock.freeze(NOW_MS)
    try:
        with mock_aws():
            cloud = LocalCloud()
            cloud.deploy()
            from insights.domain.segments import catalogue
            from insights.domain.segments.evaluate import is_member
            from insights.domain.segments.planner import index_needs, plan
            from insights.domain.segments.rules import parse_rules
            from insights.services.segments import queries as service
            from insights.storage import segments as seg_store
            from insights.storage.core.models import UserItem

            account_id = f"acct_bench{seed}"
            profiles = list(population(size, account_id, seed))
            questions = {**QUESTIONS, **EXTRA}
            segments = {
                key: service.create_segment(account_id, {"name": label, "rules": rules}, NOW_MS)
                for key, (label, rules) in questions.items()
            }
            # The state after the segments' index backfills have run: entries
            # for what the questions need, and the catalogue saying so.
            needs = index_needs([parse_rules(rules) for _, rules in questions.values()], NOW_MS)
            stored = seg_store.load_catalogue(account_id)
            seg_store.save_catalogue(stored, catalogue.mark_ready(stored.indexes, NOW_MS))
            started = time.perf_counter()
            items = seed_items(UserItem.Meta.table_name, _stored_items(profiles, needs))
            seeding = time.perf_counter() - started
            found: dict[str, Any] = {}
            with indexed_gsi_queries() as fast:
                for key, (_label, rules) in questions.items():
                    segment = segments[key]
                    answer = _count(cloud, account_id, segment.id)
                    # The population is known: the count must be the evaluator's own answer.
                    node = parse_rules(rules)
                    expected = sum(1 for p in profiles if is_member(node, p, NOW_MS))
                    assert answer["count"] == expected, (key, answer["count"], expected)
                    if compare:
                        with fast.paused():
                            plain = _count(cloud, account_id, segment.id)
                        same = ("count", "plan", "rru", "query_requests")
                        assert {k: plain[k] for k in same} == {k: answer[k] for k in same}, key
                        for query in plan(node, account_id, NOW_MS).queries:
                            with fast.paused():
                                unpatched = _all_hits(query, 97)
                            assert _all_hits(query, 97) == unpatched, (key, query)
                    found[key] = answer
            return {"size": size, "items": items, "seeding_seconds": seeding, "questions": found}
    finally:
        clock.reset()


def run(config: Config) -> PartResult:
    sizes = SMOKE_SIZES if config.smoke else FULL_SIZES
    runs = 1 if config.smoke else config.runs
    figures: list[Figure] = []

    # --- evaluation time: one user against 100 segments
    nodes = definitions()
    eval_profiles = list(population(100 if config.smoke else EVAL_USERS, "acct_eval", 99))
    eval_samples, match_share = [], []
    for _ in range(runs):
        us, share = evaluation_us(eval_profiles, nodes)
        eval_samples.append(us / 1000)
        match_share.append(share * 100)
    figures.append(
        Figure(
            "segments.eval_ms_per_user_100_segments",
            "Evaluate one user against 100 segments (CPU)",
            "ms",
            eval_samples,
            goal=2,
        )
    )

    # --- items read per user returned, per question and size
    started = time.perf_counter()
    checked = seed_and_count(SMOKE_SIZES[0] if config.smoke else CHECK_SIZE, seed=2, compare=True)
    check_seconds = time.perf_counter() - started
    measured = [seed_and_count(size, seed=1) for size in sizes]
    largest = measured[-1]
    rows = []
    for key, (label, _) in {**QUESTIONS, **EXTRA}.items():
        for result in measured:
            answer = result["questions"][key]
            plan = answer["plan"]
            per_user = plan["items_read"] / max(1, answer["count"])
            rows.append(
                [
                    label,
                    f"{result['size']:,}",
                    f"{plan['path']}: {plan['index']} ({plan.get('sessions', '-')})",
                    plan["reads"],
                    f"{answer['count']:,}",
                    f"{answer['query_requests']:,}",
                    f"{plan['index_items_read']:,}",
                    f"{plan['profiles_read']:,}",
                    fmt(per_user),
                    fmt(answer["rru"] / max(1, answer["count"])),
                    fmt(answer["seconds"]),
                ]
            )
        if key in EXTRA:
            continue
        answer = largest["questions"][key]
        plan = answer["plan"]
        figures.append(
            Figure(
                f"segments.items_read_per_user.{key}",
                f"Items read per user returned: {label} ({largest['size']:,} users)",
                "items",
                [plan["items_read"] / max(1, answer["count"])],
                goal=1.5 if plan["path"] == "index" else None,
            )
        )
    result = PartResult(NAME, TITLE, figures)
    result.parameters = {
        "sizes": list(sizes),
        "segments": len(nodes),
        "evaluation_users": len(eval_profiles),
        "now": NOW_MS,
    }
    result.tables = [
        Table(
            "Items read per question (count through the real planner and storage on moto)",
            [
                "question",
                "users",
                "plan (sessions bucket)",
                "reads",
                "members",
                "Queries",
                "index items",
                "profiles",
                "items/member",
                "RRU/member",
                "count s (moto)",
            ],
            rows,
        )
    ]
    seeded = ", ".join(
        f"{r['size']:,} users as {r['items']:,} items in {r['seeding_seconds']:.0f} s"
        for r in measured
    )
    result.notes = [
        f"Population seeded straight into moto's UsersTable (unmetered, no stream) as the items "
        f"profile_to_item and indexing.changes(None, profile) give, which production writes: "
        f"{seeded}.",
        "Items read = index items read + profiles batch-read, from the `plan` count_users "
        "returns; reads `index` means the index items decided membership (no profile read). "
        "RRU = read request units metered by AWS's rules (Query: projected item sizes summed "
        "per 4 KB, eventually consistent; BatchGetItem: per item). Every count equals the "
        "evaluator's answer over the known population.",
        f"GSI Queries answered from a per-hash-key lookup of moto's items (harness only, "
        f"benchmarks/fastmoto.py); checked on {checked['size']:,} users to give the same "
        f"counts, plans, read units and every index stream page by page as moto's own query "
        f"({check_seconds:.0f} s).",
        f"Evaluation: {len(eval_profiles)} users x {len(nodes)} segments (the four questions "
        f"and 96 other rules), process CPU time; {statistics.median(match_share):.0f}% of "
        "(user, segment) pairs matched.",
    ]
    return result
