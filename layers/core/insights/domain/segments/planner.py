"""The query planner: which index to read for a segment, or a scan when none fits.

Only conditions every member must satisfy can narrow the read: the root
condition, or the conditions of the root `all` (and of `all` groups nested
directly in it). Among them the planner picks the one it expects to be most
selective; the evaluator then filters every candidate with the whole rule,
so the choice changes cost, never the answer.

There are no statistics, so selectivity is a fixed ranking (lower is better):

  1    changed_within with "to"        (value and change time)
  2+   custom equals / in              (+0.5 per value)
  3    range on first_seen / last_seen of at most a day, up to
  9    ... a range as wide as the retention window (linear in width)
  3.5  custom changed_within           (change time)
  5+   country/region/city/browser_name equals / in (+0.5 per value)
  9.5  custom is_set                   (every user holding the attribute)

Ties go to the condition written first. When nothing is indexable (e.g. a
lone `not`, or an `any`), the plan reads every visible user of the account
through the last_seen index over the retention window: a "scan" of the
account only, in parallel shards (a table Scan would read every account).

The last_seen index is split by sessions bucket (one session / two or
more): conditions on total_sessions pick the buckets a last_seen plan reads.

`reads` says whether the index items decide membership on their own
("index": every field the rules read is projected, see `partial`) or each
candidate's profile is read ("index+profiles").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from insights.domain.core.profile import RETENTION_MS
from insights.domain.core.timefmt import DAY_MS, format_time
from insights.domain.segments import indexing, partial
from insights.domain.segments.rules import Condition, Group, Node, resolve_time

MAX_INDEXED_VALUES = 10
RANGE_OPS = frozenset(
    {"equals", "gt", "gte", "lt", "lte", "between", "before", "after"}
    | {"within_last", "not_within_last"}
)
INDEXES = {
    "first_seen": "by_first_seen",
    "last_seen": "by_last_seen",
}


@dataclass(frozen=True, slots=True)
class Query:
    """One stream of index keys: a GSI, a hash key and an inclusive range."""

    index: str
    hash_key: str
    low: int | None = None
    high: int | None = None
    sk: str = "profile"  # the sort key of the items this index holds


@dataclass(frozen=True, slots=True)
class Plan:
    path: Literal["index", "scan"]
    index: str
    conditions: tuple[str, ...]
    queries: tuple[Query, ...]
    detail: dict[str, Any] = field(default_factory=dict)
    # "index": index items decide membership; "index+profiles": profiles are read.
    reads: Literal["index", "index+profiles"] = "index+profiles"

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "index": self.index,
            "conditions": list(self.conditions),
            "queries": len(self.queries),
            "reads": self.reads,
            **self.detail,
        }

    @property
    def entry_index(self) -> list[str] | None:
        """[attribute, index] of the entry index this plan reads, if it reads one."""
        attribute = self.attribute
        if attribute is None or not self.queries:
            return None
        return [attribute, self.queries[0].index]

    @property
    def attribute(self) -> str | None:
        """The attribute of the entries an entry plan reads."""
        sk = self.queries[0].sk if self.queries else ""
        return sk[len(indexing.ENTRY_PREFIX) :] if sk.startswith(indexing.ENTRY_PREFIX) else None


@dataclass(slots=True)
class _Candidate:
    score: float
    order: int
    plan: Plan


def conjunctive(node: Node) -> list[Condition]:
    """Conditions that every member satisfies."""
    if isinstance(node, Condition):
        return [node]
    if isinstance(node, Group) and node.kind == "all":
        return [c for child in node.children for c in conjunctive(child)]
    return []


def index_needs(nodes: Iterable[Node], now_ms: int) -> dict[str, frozenset[str]]:
    """The entry indexes a plan for any of these rules could read, by attribute.

    The same candidates the planner weighs, so an account's entries are
    exactly what its segments can use (indexing.Needs).
    """
    found: dict[str, set[str]] = {}
    for node in nodes:
        for order, cond in enumerate(conjunctive(node)):
            candidate = _value_candidate(cond, order, "", now_ms)
            if candidate is not None:
                found.setdefault(cond.attribute, set()).add(candidate.plan.queries[0].index)
    return {attribute: frozenset(kinds) for attribute, kinds in found.items()}


def plan(node: Node, account_id: str, now_ms: int, ready: indexing.Needs | None = None) -> Plan:
    """The cheapest read for a rule; `ready`: the entry indexes complete for the account.

    An entry index is used only once it holds every user (built and
    backfilled, services.segment_index); `None` means all of them are.
    """
    conds = conjunctive(node)
    found: list[_Candidate] = []
    for attribute in ("first_seen", "last_seen"):
        candidate = _range_candidate(attribute, conds, account_id, now_ms)
        if candidate is not None:
            found.append(candidate)
    for order, cond in enumerate(conds):
        candidate = _value_candidate(cond, order, account_id, now_ms)
        if candidate is None:
            continue
        index = candidate.plan.queries[0].index
        if ready is None or index in ready.get(cond.attribute, ()):
            found.append(candidate)
    chosen = (
        min(found, key=lambda c: (c.score, c.order)).plan
        if found
        else scan_plan(account_id, now_ms, sessions_buckets(conds))
    )
    index = chosen.queries[0].index if chosen.queries else ""
    if chosen.queries and partial.decidable(node, index, chosen.attribute):
        return replace(chosen, reads="index")
    return chosen


def scan_plan(account_id: str, now_ms: int, buckets: tuple[str, ...] = indexing.BUCKETS) -> Plan:
    low = now_ms - RETENTION_MS
    return Plan(
        "scan",
        "last_seen",
        (),
        _last_seen_queries(account_id, buckets, low, None),
        {"reason": "no indexable condition: every visible user of the account is evaluated"},
    )


def _last_seen_queries(
    account_id: str, buckets: tuple[str, ...], low: int | None, high: int | None
) -> tuple[Query, ...]:
    return tuple(
        Query("by_last_seen", indexing.active_key(account_id, s, bucket), low, high)
        for bucket in buckets
        for s in range(indexing.SHARDS)
    )


def sessions_buckets(conds: list[Condition]) -> tuple[str, ...]:
    """The sessions buckets of by_last_seen that can hold members (none, one or both)."""
    low, high = 0, None
    for cond in conds:
        if cond.attribute != "total_sessions":
            continue
        lo, hi = _whole_bounds(cond)
        low = low if lo is None else max(low, lo)
        high = hi if high is None else (high if hi is None else min(high, hi))
    found = []
    if low <= 1 and (high is None or high >= 1):
        found.append(indexing.ONE_SESSION)
    if high is None or high >= max(low, 2):
        found.append(indexing.RETURNING)
    return tuple(found)


def _whole_bounds(cond: Condition) -> tuple[int | None, int | None]:
    """Whole-number bounds a total_sessions condition puts on members (None: open)."""
    op, value = cond.op, cond.value
    if op in ("equals", "between"):
        lo, hi = (value, value) if op == "equals" else value
        return math.ceil(lo), math.floor(hi)
    if op == "gt":
        return math.floor(value) + 1, None
    if op == "gte":
        return math.ceil(value), None
    if op == "lt":
        return None, math.ceil(value) - 1
    if op == "lte":
        return None, math.floor(value)
    return None, None  # not_equals, in, is_set, ...: no narrowing


def _range_candidate(
    attribute: str, conds: list[Condition], account_id: str, now_ms: int
) -> _Candidate | None:
    low: int | None = None
    high: int | None = None
    used: list[Condition] = []
    for cond in conds:
        if cond.attribute != attribute or cond.op not in RANGE_OPS:
            continue
        lo, hi = _bounds(cond, now_ms)
        if lo is not None:
            low = lo if low is None else max(low, lo)
        if hi is not None:
            high = hi if high is None else min(high, hi)
        used.append(cond)
    if not used:
        return None
    if attribute == "last_seen":
        # Users inactive for longer than the retention window are never members.
        floor = now_ms - RETENTION_MS
        low = floor if low is None or low < floor else low
    buckets = sessions_buckets(conds) if attribute == "last_seen" else ()
    width = (now_ms if high is None else high) - (
        now_ms - 10 * RETENTION_MS if low is None else low
    )
    score = 3 + 6 * min(1.0, max(0, width) / RETENTION_MS) if width > DAY_MS else 3.0
    empty = (low is not None and high is not None and low > high) or (
        attribute == "last_seen" and not buckets
    )
    queries: tuple[Query, ...] = ()
    if empty:
        pass
    elif attribute == "last_seen":
        queries = _last_seen_queries(account_id, buckets, low, high)
    else:
        queries = tuple(
            Query(INDEXES[attribute], indexing.shard_key(account_id, s), low, high)
            for s in range(indexing.SHARDS)
        )
    detail: dict[str, Any] = {"range": {"from": format_time(low), "to": format_time(high)}}
    if attribute == "last_seen":
        detail["sessions"] = " and ".join(buckets) or "none"
        if len(buckets) < len(indexing.BUCKETS):  # total_sessions narrowed the read too
            used += [c for c in conds if c.attribute == "total_sessions" and c not in used]
    if empty:
        detail["empty"] = True
    return _Candidate(
        score,
        conds.index(used[0]),
        Plan("index", attribute, tuple(sorted(c.path for c in used)), queries, detail),
    )


def _bounds(cond: Condition, now_ms: int) -> tuple[int | None, int | None]:
    op, value = cond.op, cond.value
    if cond.attr_type == "timestamp" and op in ("gt", "gte", "lt", "lte"):
        value = resolve_time(value, now_ms)  # relative bounds: "7d" before the query
    if cond.attr_type == "timestamp" and op == "between":
        value = (resolve_time(value[0], now_ms), resolve_time(value[1], now_ms))
    if op == "equals":
        return value, value
    if op == "gt":
        return int(value) + 1, None
    if op == "gte":
        return int(value), None
    if op == "lt":
        return None, int(value) - 1
    if op == "lte":
        return None, int(value)
    if op == "between":
        return int(value[0]), int(value[1])
    if op == "before":
        return None, resolve_time(value, now_ms) - 1
    if op == "after":
        return resolve_time(value, now_ms) + 1, None
    if op == "within_last":
        return now_ms - value, now_ms
    return None, now_ms - value - 1  # not_within_last


def _value_candidate(
    cond: Condition, order: int, account_id: str, now_ms: int
) -> _Candidate | None:
    attribute = cond.attribute
    custom = cond.attr_type == "custom"
    if not custom and attribute not in indexing.INDEXED_STANDARD:
        return None
    values: tuple[Any, ...]
    low: int | None = None
    if cond.op == "equals":
        values = (cond.value,)
    elif cond.op == "in":
        values = cond.value
    elif custom and cond.op == "changed_within":
        low = now_ms - cond.value
        if not cond.has_to:
            return _change_candidate(cond, order, account_id, low, 3.5)
        values = (cond.to,)
    elif custom and cond.op == "is_set":
        return _change_candidate(cond, order, account_id, None, 9.5)
    else:
        return None
    tokens = sorted({t for t in (indexing.value_token(v) for v in values) if t is not None})
    if not tokens or len(tokens) > MAX_INDEXED_VALUES:
        return None
    score = 1.0 if cond.op == "changed_within" else (2.0 if custom else 5.0) + 0.5 * len(tokens)
    queries = tuple(
        Query(
            "by_value",
            indexing.value_key(account_id, s, attribute, token),
            low,
            None,
            indexing.ENTRY_PREFIX + attribute,
        )
        for token in tokens
        for s in range(indexing.SHARDS)
    )
    detail: dict[str, Any] = {"values": len(tokens)}
    if low is not None:
        detail["changed_since"] = format_time(low)
    return _Candidate(
        score, order, Plan("index", f"{attribute} (value)", (cond.path,), queries, detail)
    )


def _change_candidate(
    cond: Condition, order: int, account_id: str, low: int | None, score: float
) -> _Candidate:
    queries = tuple(
        Query(
            "by_change",
            indexing.attr_key(account_id, s, cond.attribute),
            low,
            None,
            indexing.ENTRY_PREFIX + cond.attribute,
        )
        for s in range(indexing.SHARDS)
    )
    detail: dict[str, Any] = {}
    if low is not None:
        detail["changed_since"] = format_time(low)
    return _Candidate(
        score,
        order,
        Plan("index", f"{cond.attribute} (change time)", (cond.path,), queries, detail),
    )
