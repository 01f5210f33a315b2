"""The console's reads: the user list, the attribute catalogue, daily stats; and
secret key rotation. None of them reads more than a page of users, and the
catalogue and stats read only the aggregate items (docs/console-api.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from insights.domain.console.stats import attribute_view, day_view, last_days
from insights.domain.console.user_list import Page, encode_cursor
from insights.domain.core.accounts import new_key
from insights.domain.segments.indexing import SHARDS
from insights.services.console import aggregates as console_aggregates
from insights.services.core import auth
from insights.storage.console import aggregates
from insights.storage.console.user_list import listed_uuids
from insights.storage.core import accounts as account_store
from insights.storage.core import store
from insights.storage.core.records import user_pk

STATS_DAYS = (30, 90, 180)
# A page whose users all turn out expired (not yet removed by TTL) reads on,
# up to this many rounds; then it answers what it has with a cursor.
MAX_ROUNDS = 4
# Catalogue entries per page, at most: ~300 bytes each, so a page stays near 300 KB.
ATTRIBUTES_PAGE = 1000


def list_users(account_id: str, page: Page, now_ms: int) -> dict[str, Any]:
    """Visible users by uuid: per round, one range read per shard of by_uuid (keys
    only), a merge, and one BatchGetItem of the page's profiles."""
    users: list[dict[str, Any]] = []
    after, more = page.after, True
    for _ in range(MAX_ROUNDS):
        want = page.limit - len(users)
        heads: list[str] = []
        more = False
        for shard in range(SHARDS):
            found, shard_more = listed_uuids(account_id, shard, page.prefix, after, want)
            heads.extend(found)
            more = more or shard_more
        heads.sort()
        taken = heads[:want]
        more = more or len(heads) > want
        if not taken:
            break
        profiles = store.get_profiles((user_pk(account_id, u) for u in taken), consistent=False)
        for uuid in taken:
            record = profiles.get(user_pk(account_id, uuid))
            # The index lags a retention expiry until TTL removes the item.
            if record is not None and record.profile.is_visible(now_ms):
                users.append(record.profile.public())
        after = taken[-1]
        if not more or len(users) >= page.limit:
            break
    next_cursor = encode_cursor(after, page.prefix) if more and after is not None else None
    return {"users": users, "next_cursor": next_cursor}


def attributes(account_id: str, page: Page) -> dict[str, Any]:
    """A page of the catalogue by name. Paged because the write key is public: names
    sent from browsers could otherwise grow one answer past Lambda's 6 MB."""
    extra = console_aggregates.pending(account_id)
    stored = aggregates.attributes_after(account_id, page.after, page.limit + 1)
    waiting = sorted(n for n in extra.attributes if page.after is None or n > page.after)
    found: list[dict[str, Any]] = []
    for name, item in _by_name(stored, waiting):
        counters = _numbers(item) + extra.attributes.get(name, Counter())
        if counters.get("users", 0) < 1:
            continue  # nobody holds it any more
        if len(found) == page.limit:
            return {"attributes": found, "next_cursor": encode_cursor(found[-1]["name"], "")}
        examples = set(item.get(aggregates.EXAMPLES) or ()) - extra.examples_gone.get(name, set())
        examples |= extra.examples_seen.get(name, set())
        found.append(attribute_view(name, dict(counters), sorted(examples)))
    return {"attributes": found, "next_cursor": None}


def _by_name(
    stored: Iterator[dict[str, Any]], waiting: list[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Catalogue items and names only pending sums hold yet, merged in name order."""
    later = iter(waiting)
    pending_name = next(later, None)
    for item in stored:
        while pending_name is not None and pending_name < item["sk"]:
            yield pending_name, {}
            pending_name = next(later, None)
        if pending_name == item["sk"]:
            pending_name = next(later, None)
        yield item["sk"], item
    while pending_name is not None:
        yield pending_name, {}
        pending_name = next(later, None)


def stats(account_id: str, days: int, now_ms: int) -> dict[str, Any]:
    wanted = last_days(now_ms, days)
    stored, users = aggregates.read_days(account_id, wanted[0])
    extra = console_aggregates.pending(account_id)
    return {
        "users": max(0, users + extra.users),
        "days": [
            day_view(d, dict(_numbers(stored.get(d, {})) + extra.days.get(d, Counter())))
            for d in wanted
        ],
    }


def _numbers(item: dict[str, Any]) -> Counter:
    """An aggregate item's counters (Counter addition keeps only positive counts)."""
    return Counter({k: int(v) for k, v in item.items() if isinstance(v, int | Decimal)})


class KeyGone(Exception):
    """The presented secret key was rotated by another call meanwhile."""


def rotate_secret_key(account_id: str, presented: str, now_ms: int) -> str:
    """A new secret key replaces the presented one at once; the write key stays."""
    fresh = new_key("secret")
    if not account_store.replace_key(account_id, presented, fresh, "secret", now_ms):
        raise KeyGone()
    auth.revoke(presented, account_id)
    return fresh
