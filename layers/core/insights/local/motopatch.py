"""Where moto, playing AWS for the local stack, behaves unlike DynamoDB, and the fixes.

moto runs in the local stack's own process in both modes (in-process under
``mock_aws`` for tests, ``ThreadedMotoServer`` for ``insights serve``), so
these patch its backend classes directly. What moto answers is unchanged;
what changes is what happens around a cancelled transaction and under
concurrent requests.

1. **Rollback keeps the tables.** moto backs up every table a
   ``TransactWriteItems`` touches with ``copy.deepcopy`` and, when the
   transaction is cancelled, puts the copies in place of the tables. The
   stream shard LocalCloud reads then belongs to a table nothing writes to
   any more: every later TTL close, index update and retention cascade was
   lost. The deep copy also costs time and memory in proportion to the
   whole table on every transaction. Here the backup is the items the
   transaction names (copied) and the stream's length; a rollback puts those
   items back into the same table objects and drops the stream records of
   the cancelled writes, as DynamoDB (which never streams a cancelled
   transaction) does.

2. **One request at a time.** moto's tables are plain dicts: a conditional
   write is a read, a check and a write, and a rollback restores items
   another request may have written meanwhile. DynamoDB applies each request
   atomically and transactions serializably. With invocations running
   concurrently, one lock around every DynamoDB and DynamoDB Streams request
   gives the same. A request holds it for microseconds to a scan's
   milliseconds; the functions' own code runs outside it. ``LOCK`` is also
   taken by LocalCloud's direct reads of moto's tables (stream trimming, the
   data directory).

3. **Streams are trimmed.** moto keeps every stream record forever; DynamoDB
   keeps them 24 hours. ``trim_stream`` drops the records every consumer has
   read, so a long-running stack (or a 200,000-row import) does not grow
   without bound.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

LOCK = threading.RLock()
_installed = False
cancelled = 0  # transactions rolled back since start (tests read it through LocalCloud)


class _TableKeepingCopy:
    """Stands in for the ``copy`` module inside moto.dynamodb.models: a table's
    "deep copy" is the table itself, since the rollback below restores it in place."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if type(value) is Table:
            return value
        return copy.deepcopy(value, memo)


class _Backup:
    """The items a transaction names, and each stream's length, before it runs."""

    def __init__(self, backend: Any, transact_items: list[dict[str, Any]]) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        self.tables: dict[str, Any] = {}
        self.stream_lengths: dict[str, int] = {}
        self.items: list[tuple[Any, Any, Any, Any]] = []  # table, hash, range, copy or None
        for entry in transact_items:
            if len(entry) != 1:
                continue  # moto refuses it before writing anything
            ((kind, op),) = entry.items()
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            self.tables[table.name] = table
            if table.stream_shard is not None:
                self.stream_lengths[table.name] = len(table.stream_shard.items)
            key = op.get("Item") if kind == "Put" else op.get("Key")
            if not key or table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = None
            if table.range_key_attr is not None:
                if table.range_key_attr not in key:
                    continue
                range_value = DynamoType(key[table.range_key_attr])
            current = table.get_item(hash_value, range_value)
            self.items.append((table, hash_value, range_value, copy.deepcopy(current)))

    def restore(self, backend: Any) -> None:
        for name, table in self.tables.items():
            backend.tables[name] = table  # whatever moto put in its place
        for table, hash_value, range_value, item in self.items:
            if range_value is None:
                if item is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = item
            elif item is None:
                table.items.get(hash_value, {}).pop(range_value, None)
                if hash_value in table.items and not table.items[hash_value]:
                    del table.items[hash_value]
            else:
                table.items[hash_value][range_value] = item
        for name, length in self.stream_lengths.items():
            del self.tables[name].stream_shard.items[length:]


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    def call_action(self: Any) -> Any:
        with LOCK:
            return method(self)

    return call_action


def install() -> None:
    global _installed
    if _installed:
        return
    import moto.dynamodb.models as models
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    models.copy = _TableKeepingCopy()  # type: ignore[assignment]
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        global cancelled
        backup = _Backup(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            backup.restore(self)
            cancelled += 1
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoHandler.call_action = _locked(DynamoHandler.call_action)  # type: ignore[method-assign]
    DynamoDBStreamsHandler.call_action = _locked(DynamoDBStreamsHandler.call_action)  # type: ignore[method-assign]
    _installed = True


def backend() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    from insights.local.aws import ACCOUNT_ID, REGION

    return dynamodb_backends[ACCOUNT_ID][REGION]


def trim_stream(table_name: str, read_up_to: int) -> int:
    """Drop the table's stream records with sequence numbers below ``read_up_to``
    (every consumer has read them); returns how many were dropped."""
    with LOCK:
        table = backend().tables.get(table_name)
        shard = getattr(table, "stream_shard", None)
        if shard is None:
            return 0
        count = min(len(shard.items), max(0, read_up_to - shard.starting_sequence_number))
        if count:
            del shard.items[:count]
            shard.starting_sequence_number += count
        return count
