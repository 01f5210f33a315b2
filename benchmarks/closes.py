"""Part 6: write units per session close, by table and index (issue 18).

A close is where a user's cost is decided: the profile transaction, the
users table's GSIs and the segment index entries the stream writes after
it. This part replays three closes of one user through the real handlers on
LocalCloud, each metered on its own (benchmarks/meter.py):

- a new user's first close, with the traffic model's first-event
  properties (name, role, type, status);
- a returning close that changes no custom attribute;
- a returning close that upgrades `plan` to VIP (a changed custom value).

Three times: for an account with no segment, for one whose segments are the
spec's four questions (benchmarks/segments.py), whose "recently upgraded to
VIP" needs the value index of `custom.plan`: index entries are written only
for what an account's segments read (domain/segments/catalogue.py), and for
one whose four questions are marked `notify` (membership events,
docs/events.md): the stream consumer sends their changes and keeps the
user's timer at the next change time brings. Accounts without notify
segments write nothing more for events (the profile's write time, kept for
them, adds bytes, not units).

Each close is the sweeper's (the usual path: a user rarely returns within
the minute between the deadline and the next sweep); the segment index
stream is settled inside the metered window, so its writes count. The
figures are counts, not times: they are the same on any machine.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from benchmarks.core import Config, Figure, PartResult, Table, fmt
from benchmarks.localstack import T0_MS, benchmark_stack
from benchmarks.meter import HARNESS, Meter, Usage

NAME = "closes"
TITLE = "Part 6: write units per session close (first, returning), by table and index"
MINUTE_MS = 60_000
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36"
)
FIRST_PROPERTIES = {"name": "User 1", "role": "admin", "type": "customer", "plan": "free"}


@dataclass(frozen=True)
class Close:
    key: str
    label: str
    # (minutes after T0, properties) of the session's events, then the close.
    events: tuple[tuple[int, dict[str, Any]], ...]
    close_at_minutes: int
    goal: float | None


CLOSES = (
    Close(
        "first",
        "New user's first close",
        ((0, FIRST_PROPERTIES), (1, {})),
        40,
        8,
    ),
    Close("returning", "Returning close, no attribute change", ((600, {}), (601, {})), 640, 5),
    Close(
        "returning_changed",
        "Returning close that changes one custom attribute",
        ((1200, {}), (1201, {"plan": "VIP"})),
        1240,
        None,
    ),
)


SEGMENT_SETS = ("no segments", "the four spec questions", "the four spec questions, notify")


def measure(with_segments: bool, notify: bool = False) -> tuple[dict[str, Usage], dict[str, Usage]]:
    """Each close's metered usage, in order, on one user; and the roll-up of its sums."""
    from benchmarks.segments import QUESTIONS
    from insights import clock
    from insights.domain.core.timefmt import format_time
    from insights.services.console import aggregates as console_aggregates

    used: dict[str, Usage] = {}
    rolled: dict[str, Usage] = {}
    with benchmark_stack() as (cloud, account):
        if with_segments:
            secret = {"Authorization": f"Bearer {account.secret_key}"}
            for label, rules in QUESTIONS.values():
                body = {"name": label, "rules": rules, "notify": notify}
                created = cloud.http("POST", "/v1/segments", headers=secret, body=body)
                assert created.status == 201, created.body
            cloud.settle()
        headers = {"X-Insights-Key": account.write_key}
        for close in CLOSES:
            for minutes, properties in close.events:
                at = T0_MS + minutes * MINUTE_MS
                clock.freeze(at)
                event: dict[str, Any] = {"uuid": "u1", "type": "click"}
                if properties:
                    event["user_properties"] = properties
                body = {
                    "sent_at": format_time(at),
                    "context": {"ip": "81.2.69.160", "user_agent": CHROME},
                    "events": [event | {"timestamp": format_time(at)}],
                }
                response = cloud.function_url(
                    "TrackFunction", "POST", "/", headers=headers, body=body
                )
                assert response.status == 200, response.body
            cloud.settle()
            clock.freeze(T0_MS + close.close_at_minutes * MINUTE_MS)
            with Meter(cloud).installed() as meter:
                closed = cloud.run_schedules(["SessionCloseFunction"])
                cloud.settle()
            assert not cloud.items("SessionsTable"), f"{close.key}: not closed ({closed})"
            used[close.key] = meter.usage
            # The roll-up of the close's pending sums, alone (SegmentIndexFunction's).
            clock.freeze(T0_MS + (close.close_at_minutes + 61) * MINUTE_MS)
            with Meter(cloud).installed() as meter:
                meter.current = "SegmentIndexFunction"
                # Forced: a quiet account folds a day's closes (or 24 batches') at
                # once, so this fold of one close's sums is the most a close pays.
                folded = console_aggregates.roll_up(account.account_id, clock.now_ms(), force=True)
                meter.current = None
            assert folded, f"{close.key}: nothing rolled up"
            rolled[close.key] = meter.usage
    return used, rolled


def by_target(usage: Usage) -> Counter:
    """WRU by table or table/index, harness calls left out."""
    found: Counter = Counter()
    for (function, target), units in usage.wru.items():
        if function != HARNESS:
            found[target] += units
    return found


def run(config: Config) -> PartResult:
    both = {
        name: measure(name != SEGMENT_SETS[0], notify=name == SEGMENT_SETS[2])
        for name in SEGMENT_SETS
    }
    measured = {name: used for name, (used, _rolled) in both.items()}
    figures = []
    _used, rolled = both[SEGMENT_SETS[1]]
    for close in CLOSES:
        figures.append(
            Figure(
                f"closes.rollup_wru_{close.key}",
                f"{close.label}: hourly roll-up of its sums, alone in the account-hour",
                "WRU",
                [float(sum(by_target(rolled[close.key]).values()))],
            )
        )
    for name, used in measured.items():
        for close in CLOSES:
            goal = close.goal if name == SEGMENT_SETS[1] else None
            suffix = {SEGMENT_SETS[0]: "_bare", SEGMENT_SETS[1]: "", SEGMENT_SETS[2]: "_notify"}
            key = close.key + suffix[name]
            figures.append(
                Figure(
                    f"closes.wru_{key}",
                    f"{close.label}, {name}: write units, all tables and indexes",
                    "WRU",
                    [float(sum(by_target(used[close.key]).values()))],
                    goal=goal,
                )
            )
    tables = []
    for name, used in measured.items():
        targets = sorted({t for usage in used.values() for t in by_target(usage)})
        rows = [[t] + [fmt(by_target(used[c.key])[t]) for c in CLOSES] for t in targets]
        rows.append(["total"] + [fmt(sum(by_target(used[c.key]).values())) for c in CLOSES])
        tables.append(
            Table(
                f"Write units of one close by table and index, {name} "
                "(sweeper close + segment index stream)",
                ["table/index"] + [c.key for c in CLOSES],
                rows,
            )
        )
    result = PartResult(NAME, TITLE, figures, tables)
    result.parameters = {"first_properties": FIRST_PROPERTIES, "segment_sets": SEGMENT_SETS}
    result.notes = [
        "Counts from item sizes by AWS's rules (benchmarks/capacity.py): a transaction "
        "costs 2 WRU per KB of each item, a GSI write 1 per KB of the projected entry, "
        "a GSI key change a delete plus a put.",
        "Segment index entries (UsersTable items `idx#<attribute>` and their by_value / "
        "by_change GSIs) are written by SegmentIndexFunction only for the indexes the "
        "account's segments read; before that change a first close wrote one for every "
        "location, browser and custom attribute: 26 WRU.",
        "AggregatesTable (the console's daily stats and attribute catalogue, "
        "docs/console-api.md): the same stream consumer puts a batch's sums for the "
        "account in one pending item (1 WRU here); once an hour per account, the first "
        "batch that finds sums older than an hour folds them into the aggregate items in "
        "one transaction (2 WRU per item, plus the marker). The 'roll-up' figures are that "
        "transaction for one close's sums alone, the worst case (an account with one "
        "close in the hour); part 7 measures it shared by a batch of closes.",
        "NotifyTimersTable (membership events, docs/events.md): the user's timer is the "
        "earliest moment time alone changes a notify segment's membership; the stream "
        "consumer writes it (1 WRU) only when a close brings that moment sooner (an early "
        "timer is safe: it fires, finds nothing, moves on). Sending the "
        "events costs EventBridge's $1.00 per million, not write units.",
    ]
    return result
