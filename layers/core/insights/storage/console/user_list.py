"""The by_uuid index of UsersTable: uuids of an account's visible profiles, in order."""

from __future__ import annotations

from insights.domain.segments.indexing import shard_key
from insights.storage.core.models import UserItem


def listed_uuids(
    account_id: str, shard: int, prefix: str, after: str | None, limit: int
) -> tuple[list[str], bool]:
    """Up to `limit` uuids of one shard starting with prefix (after `after`), and
    whether the shard may hold more. A key-ordered range read of KEYS_ONLY items."""
    index = UserItem.by_uuid
    if after is not None:
        condition = UserItem.uuid > after
    elif prefix:
        condition = UserItem.uuid.startswith(prefix)
    else:
        condition = None
    found: list[str] = []
    for item in index.query(
        shard_key(account_id, shard), range_key_condition=condition, limit=limit, page_size=limit
    ):
        if not item.uuid.startswith(prefix):
            return found, False  # past the prefix: key order puts nothing after it
        found.append(item.uuid)
    return found, len(found) >= limit
