"""Keep moto's TransactWriteItems from dominating a long replay.

moto backs up every table a transaction touches with ``copy.deepcopy`` of the
whole table (every item and every stream record so far), so a replay's time
grows with the square of its length. The backup is only read to roll back a
cancelled transaction, by putting the copy back in place. Insights'
transactions only put and delete whole items (pynamodb ``save``/``delete``),
which moto applies by replacing the item objects in the table's dicts, so a
copy of those dicts is an equivalent backup. This changes how fast moto
runs, not what it answers; the meter reads items the same either way.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator
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
