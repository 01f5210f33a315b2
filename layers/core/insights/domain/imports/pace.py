"""How fast an import may write profiles, so the indexes it feeds stay under DynamoDB's limits.

An import writes only profiles, but each changed profile streams to
SegmentIndexFunction, which rewrites the user's index entries (docs/segments.md).
The GSI keys those entries land on are per account, shard and attribute
(domain/segments/indexing.py), and DynamoDB serves at most 1,000 WCU/s per
partition key, GSIs included. A GSI that falls behind throttles the writes to
its base table, UsersTable: that is the closing path's profile and entry
writes. So the import, not the index consumer, must keep the rate down.
"""

from __future__ import annotations

from insights.domain.segments.indexing import SHARDS

# DynamoDB's ceiling per partition key, tables and GSIs alike (write units a second).
KEY_WCU = 1_000
# The share of a key an import may take. The rest is the closing path's, which
# writes the same entry keys as users' sessions close and change values: the
# model puts ~2 WCU/s on an attribute's by_change key at the peak hour of 10M
# monthly users and ~19 at 100M (docs/SCALE.md, "Partition keys"), so the
# quarter left is more than ten times the closing path's need at any size the
# model covers, and the import still reaches 3,000 rows a second (below).
IMPORT_KEY_SHARE = 0.75
# The most writes one changed profile puts on any one GSI key. An entry whose
# value changes moves within its attribute's by_change key (ix_changed is the
# range key: a delete and a put, 2 writes) and leaves or joins a by_value key (1
# each); a first entry is one put. An entry is ~200 bytes: one write unit. The
# profile's own GSI keys (by_first_seen, by_last_seen, by_uuid) take at most one.
WRITES_PER_ROW_PER_KEY = 2


def rows_per_second_cap(
    shards: int = SHARDS,
    *,
    share: float = IMPORT_KEY_SHARE,
    writes_per_row: int = WRITES_PER_ROW_PER_KEY,
    key_wcu: int = KEY_WCU,
) -> float:
    """Profile writes a second one account's import may make.

    Users spread evenly over the shards (crc32 of the user's key), so a key
    of one shard sees 1/shards of the rows; at the worst every row changes
    the same attribute to the same value, and each of those rows puts
    `writes_per_row` writes on that shard's key. With 8 shards: 0.75 x 1,000
    x 8 / 2 = 3,000 profile writes a second (a 10M-row file in 56 minutes
    if every row changes its user).
    """
    if shards < 1 or writes_per_row < 1 or not 0 < share <= 1:
        raise ValueError("shards and writes_per_row are at least 1; share is in (0, 1]")
    return share * key_wcu * shards / writes_per_row


def pause_seconds(writes: int, elapsed_s: float, rate: float, *, burst: int = 0) -> float:
    """How long to wait so that `writes` made over `elapsed_s` average at most `rate` a
    second, allowing `burst` writes ahead (one batch: the keys absorb a short burst)."""
    if rate <= 0:
        raise ValueError("the rate must be positive")
    return max(0.0, (writes - burst) / rate - elapsed_s)
