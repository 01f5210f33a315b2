"""Harness-only speed-ups of moto (never used by product code).

1. Keep moto's TransactWriteItems from dominating a long replay.

moto backs up every table a transaction touches with ``copy.deepcopy`` of the
whole table (every item and every stream record so far), so a replay's time
grows with the square of its length. The backup is only read to roll back a
cancelled transaction, by putting the copy back in place. Insights'
transactions only put and delete whole items (pynamodb ``save``/``delete``),
which moto applies by replacing the item objects in the table's dicts, so a
copy of those dicts is an equivalent backup. This changes how fast moto
runs, not what it answers; the meter reads items the same either way.

2. Seed a large population straight into moto's tables (`seed_items`), and
answer GSI Queries from a per-hash-key lookup instead of a walk of the whole
table (`indexed_gsi_queries`), so part 4 can run at 100,000 users.
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any


def _light_copy(table: Any) -> Any:
    clone = copy.copy(table)
    clone.items = defaultdict(
        dict, {h: dict(v) if isinstance(v, dict) else v for h, v in table.items.items()}
    )
    if getattr(table, "stream_shard", None) is not None:
        shard = copy.copy(table.stream_shard)
        shard.items = list(table.stream_shard.items)
        clone.stream_shard = shard
    return clone


class _CopyModule:
    """Stands in for the ``copy`` module inside moto.dynamodb.models only."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if type(value) is Table:
            return _light_copy(value)
        return copy.deepcopy(value, memo)


@contextmanager
def light_transaction_backups() -> Iterator[None]:
    import moto.dynamodb.models as models

    original = models.copy
    models.copy = _CopyModule()  # type: ignore[assignment]
    try:
        yield
    finally:
        models.copy = original


# ------------------------------------------------------------------ seeding
def seed_items(table_name: str, items: Iterable[dict[str, Any]]) -> int:
    """Put items (DynamoDB JSON) straight into moto's table: no request, no meter, no stream.

    For seeding a population a benchmark then reads; it is not a write any
    figure counts. Returns the number of items put.
    """
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    from insights.local.aws import ACCOUNT_ID, REGION

    table = dynamodb_backends[ACCOUNT_ID][REGION].get_table(table_name)
    count = 0
    for attrs in items:
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_key = table.range_key_attr
        range_value = DynamoType(attrs[range_key]) if range_key else None
        # Item() sums the whole item's size again for every attribute it sets
        # (its 400 KB check): quadratic per item, most of the seeding time.
        # The same object, filled at once (these items are a few hundred bytes).
        item = Item.__new__(Item)
        item.hash_key, item.range_key = hash_value, range_value
        item.attrs = LimitedSizeDict({name: DynamoType(value) for name, value in attrs.items()})
        if range_key:
            table.items[hash_value][range_value] = item
        else:  # a table without a sort key holds the item itself under its hash key
            table.items[hash_value] = item
        count += 1
    return count


# ------------------------------------------------------- GSI query lookups
# moto answers a GSI Query by walking every item of the table and keeping
# those whose index hash key matches, then sorting them: at 100,000 users
# (~700,000 items) each page costs seconds. Inside `indexed_gsi_queries` the
# walk sees only the items holding the queried hash key value, taken from a
# lookup built once per (table, attribute) and dropped on every write. moto
# still applies all its own checks (hash match, range key present, range
# condition, sort, start key, limit, projection) to that subset, so the
# answer is the same; benchmarks/segments.py checks it against the
# unpatched query on a small population.
class GsiLookups:
    """Per-table lookups of moto's items by GSI hash key value (and range condition)."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[int, str], dict[Any, list[Any]]] = {}
        self.subsets: dict[tuple[Any, ...], list[Any]] = {}
        self.active = True  # False: moto's own query (see `paused`)

    def forget(self, table: Any | None = None) -> None:
        """Drop the lookups of one table (after a write to it), or of every table."""
        if table is None:
            self.buckets.clear()
            self.subsets.clear()
            return
        for cache in (self.buckets, self.subsets):
            for key in [k for k in cache if k[0] == id(table)]:
                del cache[key]

    @contextmanager
    def paused(self) -> Iterator[None]:
        """moto's unpatched GSI query for a while (writes still drop lookups)."""
        self.active = False
        try:
            yield
        finally:
            self.active = True

    def _bucket(self, table: Any, attribute: str, value: Any) -> list[Any]:
        key = (id(table), attribute)
        lookup = self.buckets.get(key)
        if lookup is None:
            lookup = defaultdict(list)
            # The table's dicts, not all_items(): that one sorts every item of
            # the table (moto sorts the query's candidates itself anyway).
            for hash_set in table.items.values():
                for item in hash_set.values() if table.range_key_attr else [hash_set]:
                    found = item.attrs.get(attribute)
                    if found is not None:
                        lookup[found].append(item)
            self.buckets[key] = lookup
        return lookup.get(value, [])

    def subset(
        self, table: Any, attribute: str, value: Any, range_attr: str | None, op: Any, objs: Any
    ) -> list[Any]:
        """Items with this hash key value, and in the range when the query has one.

        The range test is moto's own (DynamoType.compare), as its query applies it.
        """
        bounds = tuple((o.type, o.value) for o in objs)
        key = (id(table), attribute, value, range_attr, op, bounds)
        found = self.subsets.get(key)
        if found is None:
            found = self._bucket(table, attribute, value)
            if op and range_attr:
                found = [
                    item
                    for item in found
                    if item.attrs.get(range_attr) and item.attrs[range_attr].compare(op, objs)
                ]
            self.subsets[key] = found
        return found


@contextmanager
def indexed_gsi_queries() -> Iterator[GsiLookups]:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.table import SecondaryIndex, Table

    lookups = GsiLookups()
    local = threading.local()
    original_query = Table.query
    original_all_items = Table.all_items
    original_project = SecondaryIndex.project

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        conditions = kwargs.get("hash_key_conditions") or []
        index_name = kwargs.get("index_name", args[7] if len(args) > 7 else None)
        if not lookups.active or not index_name or len(conditions) != 1:
            return original_query(self, *args, **kwargs)
        attribute, value = conditions[0]
        op = args[1] if len(args) > 1 else kwargs.get("range_comparison")
        objs = (args[2] if len(args) > 2 else kwargs.get("range_objs")) or []
        schema = self.get_index(index_name).schema
        range_attr = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
        local.only = (self, lookups.subset(self, attribute, value, range_attr, op, objs))
        try:
            return original_query(self, *args, **kwargs)
        finally:
            local.only = None

    def all_items(self: Any) -> Any:
        only = getattr(local, "only", None)
        if only is not None and only[0] is self:
            return list(only[1])
        return original_all_items(self)

    def table_write(original: Any) -> Any:
        def write(self: Any, *args: Any, **kwargs: Any) -> Any:
            lookups.forget(self)
            return original(self, *args, **kwargs)

        return write

    def backend_write(original: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            lookups.forget()
            return original(*args, **kwargs)

        return write

    def project(self: Any, item: Any) -> Any:
        # moto's projection converts the whole item to plain JSON and back once
        # per kept attribute; keeping the top-level attributes directly is the
        # same item (checked against moto's own with the query, see above).
        kind = (self.projection or {}).get("ProjectionType")
        if kind not in ("KEYS_ONLY", "INCLUDE") or not lookups.active:
            return original_project(self, item)
        keep = set(self.table_key_attrs) | set(self.schema_key_attrs)
        if kind == "INCLUDE":
            keep |= set(self.projection.get("NonKeyAttributes", []))
        projected = Item.__new__(Item)
        projected.hash_key, projected.range_key = item.hash_key, item.range_key
        projected.attrs = LimitedSizeDict(
            {name: DynamoType(value) for name, value in item.attrs.items() if name in keep}
        )
        return projected

    writes = [
        (Table, "put_item", table_write),
        (Table, "delete_item", table_write),
        (DynamoDBBackend, "update_item", backend_write),
        (DynamoDBBackend, "transact_write_items", backend_write),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in writes]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    SecondaryIndex.project = project  # type: ignore[method-assign]
    for owner, name, wrap in writes:
        setattr(owner, name, wrap(getattr(owner, name)))
    try:
        yield lookups
    finally:
        Table.query = original_query  # type: ignore[method-assign]
        Table.all_items = original_all_items  # type: ignore[method-assign]
        SecondaryIndex.project = original_project  # type: ignore[method-assign]
        for owner, name, original in saved:
            setattr(owner, name, original)
