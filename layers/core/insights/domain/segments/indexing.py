"""What the segment indexes hold for one profile, and what changes between two.

Two kinds of index keys exist (docs/segments.md):

- On the profile item itself: `ix_shard` = "<account>#<shard>", the hash key
  of the `by_first_seen` GSI, and `ix_active` = "<account>#<shard>#<bucket>"
  (bucket "1" for one closed session, "2+" for more), the hash key of
  `by_last_seen`. Their range keys are the profile's own first_seen /
  last_seen. The shard never changes for a user and the bucket changes only
  on a close, which moves last_seen anyway, so those GSIs are written only
  when first_seen / last_seen change.
- One small entry item per indexed attribute of a user, under the user's pk
  with sk "idx#<attribute>": `ix_value` (hash key of `by_value`: account,
  shard, attribute and the case-folded value) and, for custom attributes,
  `ix_attr` (hash key of `by_change`: account, shard, attribute), both with
  `ix_changed` (the time the value last changed) as range key. It also
  carries the exact value and `live_until` (last_seen + retention when the
  entry was written), so a rule on that attribute alone is decided from the
  index entry (docs/segments.md, "Index-only evaluation").

Every hash key starts with the account id and spreads one account over
SHARDS partitions, so one big account has no hot partition.

Entries exist only for what the account's segments can read (`Needs`,
derived from the saved rules by `planner.index_needs`): an attribute no
segment narrows on gets no entry, and an entry carries `ix_value` only if
some rule reads the attribute's value index, `ix_attr` only if one reads its
change index. A new user's first close used to write an entry and two GSI
items for every location, browser and custom attribute (20 of its 26 write
units, benchmarks part 6) whether or not any segment would ever read them.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from insights.domain.core.profile import RETENTION_MS, Profile

# Fixed: changing it would orphan every stored key (a re-index would be needed).
SHARDS = 8
# Standard attributes with an equality index (entries rewritten only when the
# value changes: a user's country or browser rarely does). browser_version
# changes with every browser update and is left to the evaluator.
INDEXED_STANDARD = ("country", "region", "city", "browser_name")
ENTRY_PREFIX = "idx#"
_MAX_TOKEN = 200
BY_VALUE = "by_value"
BY_CHANGE = "by_change"
# attribute ("country", "custom.plan") -> the entry indexes a segment reads for it
Needs = Mapping[str, frozenset[str]]


def shard_of(pk: str) -> int:
    return zlib.crc32(pk.encode()) % SHARDS


def shard_key(account_id: str, shard: int) -> str:
    """Hash key of the first_seen / last_seen GSIs."""
    return f"{account_id}#{shard}"


ONE_SESSION = "1"
RETURNING = "2+"
BUCKETS = (ONE_SESSION, RETURNING)


def sessions_bucket(total_sessions: int) -> str:
    return ONE_SESSION if total_sessions <= 1 else RETURNING


def active_key(account_id: str, shard: int, bucket: str) -> str:
    """Hash key of the last_seen GSI: new (one session) and returning users apart."""
    return f"{account_id}#{shard}#{bucket}"


def value_token(value: Any) -> str | None:
    """The indexed form of a value: typed, case-folded, bounded in size."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "b:1" if value else "b:0"
    if isinstance(value, int | float | Decimal):
        number = float(value)
        if number.is_integer() and abs(number) < 2**53:
            return f"n:{int(number)}"
        return f"n:{number!r}"
    text = str(value).casefold()
    if len(text) > _MAX_TOKEN:
        text = "#" + hashlib.sha256(text.encode()).hexdigest()
    return f"s:{text}"


def _attr(attribute: str) -> str:
    # Length-prefixed, so no attribute name and token can be read two ways.
    return f"{len(attribute)}:{attribute}"


def value_key(account_id: str, shard: int, attribute: str, token: str) -> str:
    return f"{account_id}#{shard}#{_attr(attribute)}#{token}"


def attr_key(account_id: str, shard: int, attribute: str) -> str:
    return f"{account_id}#{shard}#{_attr(attribute)}"


@dataclass(frozen=True, slots=True)
class Entry:
    sk: str
    ix_value: str | None
    ix_attr: str | None
    ix_changed: int
    value: Any = None  # exact, as the evaluator sees it
    # Not compared: an entry whose value did not change is not rewritten just
    # because last_seen moved. The stored one stays a lower bound of expiry
    # (last_seen only grows within a record).
    live_until: int = field(default=0, compare=False)


def entries(profile: Profile | None, needs: Needs) -> dict[str, Entry]:
    """The index entries a profile should have: none before its first closed session."""
    if profile is None or profile.total_sessions <= 0 or not needs:
        return {}
    pk = f"{profile.account_id}#{profile.uuid}"
    shard = shard_of(pk)
    live_until = profile.last_activity + RETENTION_MS
    found: dict[str, Entry] = {}
    for name in INDEXED_STANDARD:
        token = value_token(getattr(profile, name))
        if token is not None and BY_VALUE in needs.get(name, ()):
            sk = ENTRY_PREFIX + name
            # Range key 0: equality queries need no order, and a constant
            # keeps the entry unchanged while the value is.
            key = value_key(profile.account_id, shard, name, token)
            found[sk] = Entry(sk, key, None, 0, getattr(profile, name), live_until)
    for name, custom in profile.custom.items():
        attribute = f"custom.{name}"
        wanted = needs.get(attribute)
        token = value_token(custom.value)
        if not wanted or token is None:
            continue
        sk = ENTRY_PREFIX + attribute
        found[sk] = Entry(
            sk,
            value_key(profile.account_id, shard, attribute, token) if BY_VALUE in wanted else None,
            attr_key(profile.account_id, shard, attribute) if BY_CHANGE in wanted else None,
            custom.changed_since,
            custom.value,
            live_until,
        )
    return found


@dataclass(frozen=True, slots=True)
class Changes:
    pk: str
    puts: tuple[Entry, ...]
    deletes: tuple[str, ...]  # sk values

    def __bool__(self) -> bool:
        return bool(self.puts or self.deletes)


def changes(old: Profile | None, new: Profile | None, needs: Needs) -> Changes:
    """Entries to write and to delete after a profile went from old to new.

    Nothing is written for an entry that is the same in both images, so a
    profile write that leaves indexed values alone costs no index write.
    """
    ref = new or old
    pk = "" if ref is None else f"{ref.account_id}#{ref.uuid}"
    before, after = entries(old, needs), entries(new, needs)
    puts = tuple(e for sk, e in after.items() if before.get(sk) != e)
    deletes = tuple(sk for sk in before if sk not in after)
    return Changes(pk, puts, deletes)
