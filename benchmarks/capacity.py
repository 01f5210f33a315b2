"""DynamoDB item sizes and on-demand request units, by AWS's documented rules.

Pure functions over DynamoDB JSON (``{"S": "x"}``, ``{"N": "12"}``, ...), so
they are unit-tested without moto. Sources (read 2026-11-28):

- Item sizes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
  name bytes + value bytes; numbers ~ 1 byte per 2 significant digits + 1;
  null/bool 1 byte; list/map 3 bytes + 1 byte per element.
- Units: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
  writes ceil(KB) of the larger of the old and new item (1 KB units),
  transactions x2; reads ceil(size / 4 KB), eventually consistent x0.5;
  BatchGetItem rounds each item; Query rounds the total read.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: 1 per two significant digits, plus 1 (plus 1 if negative)."""
    # Leading and trailing zeros are trimmed: 1795867200000 has 8 significant digits.
    significant = len(Decimal(text).normalize().as_tuple().digits)
    size = math.ceil(significant / 2) + 1
    return size + (1 if text.lstrip().startswith("-") else 0)


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB JSON (without its name)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return _utf8(raw)
    if kind == "N":
        return number_size(str(raw))
    if kind == "B":
        return len(raw if isinstance(raw, bytes | bytearray) else base64.b64decode(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(v) for v in raw)
    if kind == "NS":
        return sum(number_size(str(v)) for v in raw)
    if kind == "BS":
        return sum(len(v if isinstance(v, bytes | bytearray) else base64.b64decode(v)) for v in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + _utf8(k) + value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Bytes of an item: the sum of its attribute names and values."""
    if not item:
        return 0
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def write_units(old_bytes: int, new_bytes: int, *, transactional: bool = False) -> int:
    """WRU of one item write: the larger of old and new, per started KB (at least 1)."""
    units = max(1, math.ceil(max(old_bytes, new_bytes) / WRITE_UNIT_BYTES))
    return units * (2 if transactional else 1)


def read_units(size_bytes: int, *, consistent: bool, transactional: bool = False) -> float:
    """RRU of reading size_bytes (one item, or a Query's total), per started 4 KB, at least 1."""
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    if transactional:
        return units * 2.0
    return units * (1.0 if consistent else 0.5)


def projected(
    item: Mapping[str, Any] | None, index: Mapping[str, Any], table_keys: list[str]
) -> dict[str, Any] | None:
    """An item's entry in a GSI (None when it lacks the index's key attributes)."""
    if not item:
        return None
    index_keys = [k["AttributeName"] for k in index["KeySchema"]]
    if any(k not in item for k in index_keys):
        return None  # sparse index: no entry
    projection = index.get("Projection", {})
    kind = projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        return dict(item)
    names = set(index_keys) | set(table_keys)
    if kind == "INCLUDE":
        names |= set(projection.get("NonKeyAttributes", []))
    return {k: v for k, v in item.items() if k in names}


def gsi_writes(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    index: Mapping[str, Any],
    table_keys: list[str],
) -> list[int]:
    """WRU of each write one base-table write causes in a GSI.

    Nothing when the item's projection for the index did not change; a key
    change is a delete of the old entry plus a put of the new one.
    """
    before = projected(old, index, table_keys)
    after = projected(new, index, table_keys)
    if before == after:
        return []
    if before is None:
        return [write_units(0, item_size(after))]
    if after is None:
        return [write_units(item_size(before), 0)]
    index_keys = [k["AttributeName"] for k in index["KeySchema"]]
    if any(before[k] != after[k] for k in index_keys):
        return [write_units(item_size(before), 0), write_units(0, item_size(after))]
    return [write_units(item_size(before), item_size(after))]
