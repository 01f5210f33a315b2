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
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from insights.local.cloud import ACCOUNT_ID, REGION

    table = dynamodb_backends[ACCOUNT_ID][REGION].get_table(table_name)
    count = 0
    for attrs in items:
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = DynamoType(attrs[table.range_key_attr])
        table.items[hash_value][range_value] = Item(hash_value, range_value, attrs)
        count += 1
    _buckets.clear()
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
_buckets: dict[tuple[int, str], dict[Any, list[Any]]] = {}
_local = threading.local()


def _bucket(table: Any, attribute: str, value: Any) -> list[Any]:
    key = (id(table), attribute)
    lookup = _buckets.get(key)
    if lookup is None:
        lookup = defaultdict(list)
        for item in table.all_items():
            found = item.attrs.get(attribute)
            if found is not None:
                lookup[found].append(item)
        _buckets[key] = lookup
    return lookup.get(value, [])


@contextmanager
def indexed_gsi_queries() -> Iterator[None]:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original_query = Table.query
    original_all_items = Table.all_items

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        conditions = kwargs.get("hash_key_conditions") or []
        index_name = kwargs.get("index_name", args[7] if len(args) > 7 else None)
        if not index_name or len(conditions) != 1:
            return original_query(self, *args, **kwargs)
        attribute, value = conditions[0]
        _local.only = (self, _bucket(self, attribute, value))
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _local.only = None

    def all_items(self: Any) -> Any:
        only = getattr(_local, "only", None)
        if only is not None and only[0] is self:
            return list(only[1])
        return original_all_items(self)

    def dropping(original: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            _buckets.clear()
            return original(*args, **kwargs)

        return write

    writes = [
        (Table, "put_item"),
        (Table, "delete_item"),
        (DynamoDBBackend, "update_item"),
        (DynamoDBBackend, "transact_write_items"),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name in writes]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    for owner, name, original in saved:
        setattr(owner, name, dropping(original))
    _buckets.clear()
    try:
        yield
    finally:
        Table.query = original_query  # type: ignore[method-assign]
        Table.all_items = original_all_items  # type: ignore[method-assign]
        for owner, name, original in saved:
            setattr(owner, name, original)
        _buckets.clear()
