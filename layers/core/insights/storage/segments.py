"""Segment storage: definitions, index entries and index queries."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from pynamodb.exceptions import PutError

from insights.domain.core.profile import CustomValue, Profile
from insights.domain.segments import catalogue
from insights.domain.segments.catalogue import Catalogue
from insights.domain.segments.definitions import Segment
from insights.domain.segments.indexing import (
    ENTRY_PREFIX,
    INDEXED_STANDARD,
    SHARDS,
    Changes,
    Entry,
    shard_key,
)
from insights.domain.segments.planner import Query
from insights.storage.core.models import (
    BackfillProgressItem,
    IndexCatalogueItem,
    IndexEntryItem,
    SegmentsItem,
    UserItem,
)
from insights.storage.core.records import (
    PROFILE_SK,
    ProfileRecord,
    profile_from_item,
    profile_to_item,
    split_pk,
)
from insights.storage.core.store import Conflict

# DynamoDB items stop at 400 KB of UTF-8 (names and values), not 400,000 characters:
# an \u00e9 takes two bytes, an emoji four. The rest is left for the item's other fields.
MAX_ITEM_BYTES = 350_000


class TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class SegmentSet:
    account_id: str
    segments: tuple[Segment, ...]
    cursor_key: bytes
    version: int | None  # None: nothing stored yet

    def find(self, segment_id: str) -> Segment | None:
        return next((s for s in self.segments if s.id == segment_id), None)


def _pk(account_id: str) -> str:
    return f"seg#{account_id}"


# ------------------------------------------------------------- definitions
def load_segments(account_id: str, *, consistent: bool = True) -> SegmentSet:
    try:
        item = SegmentsItem.get(_pk(account_id), consistent_read=consistent)
    except SegmentsItem.DoesNotExist:
        # Not stored until the first segment is saved; the key is created then.
        return SegmentSet(account_id, (), secrets.token_bytes(32), None)
    segments = tuple(Segment(**raw) for raw in json.loads(item.segments))
    return SegmentSet(account_id, segments, bytes.fromhex(item.cursor_key), item.version)


def definitions(segments: Iterable[Segment]) -> str:
    """The stored form of an account's segments. Raises TooLarge past the item limit."""
    body = json.dumps(
        [
            {
                "id": s.id,
                "name": s.name,
                "description": s.description,
                "rules": s.rules,
                "created_at": s.created_at,
                "updated_at": s.updated_at,
                "targeting": s.targeting,
                "notify": s.notify,
            }
            for s in segments
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    size = len(body.encode())
    if size > MAX_ITEM_BYTES:
        raise TooLarge(
            f"the account's segment definitions would take {size // 1000} KB of UTF-8; "
            f"together they must fit in {MAX_ITEM_BYTES // 1000} KB (one DynamoDB item): "
            "shorten this segment's lists or values, or delete segments you no longer use"
        )
    return body


def save_segments(
    current: SegmentSet, segments: list[Segment], body: str | None = None
) -> SegmentSet:
    """Write the whole set, conditional on the version read. Raises Conflict, TooLarge.

    body: definitions(segments), when the caller already checked it.
    """
    if body is None:
        body = definitions(segments)
    item = SegmentsItem(_pk(current.account_id), segments=body, cursor_key=current.cursor_key.hex())
    version = _save_versioned(item, current.version, "segments")
    return SegmentSet(current.account_id, tuple(segments), current.cursor_key, version)


def _save_versioned(item: Any, version: int | None, what: str) -> int:
    """Put an item conditional on the version read; its new version. Raises Conflict.

    version None: pynamodb adds "must not exist yet", so a racing first save
    cannot overwrite another's (the segments' cursor key, say).
    """
    if version is not None:
        item.version = version
    try:
        item.save()
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise Conflict(f"{what} changed since read") from exc
        raise
    return int(item.version)


# ------------------------------------------------------ index catalogue
@dataclass(frozen=True, slots=True)
class StoredCatalogue:
    account_id: str
    indexes: Catalogue
    version: int | None  # None: nothing stored yet


def load_catalogue(account_id: str, *, consistent: bool = True) -> StoredCatalogue:
    try:
        item = IndexCatalogueItem.get(f"segidx#{account_id}", consistent_read=consistent)
    except IndexCatalogueItem.DoesNotExist:
        return StoredCatalogue(account_id, (), None)
    return StoredCatalogue(account_id, catalogue.from_json(json.loads(item.indexes)), item.version)


def save_catalogue(current: StoredCatalogue, indexes: Catalogue) -> StoredCatalogue:
    """Write the catalogue, conditional on the version read. Raises Conflict."""
    item = IndexCatalogueItem(
        f"segidx#{current.account_id}",
        indexes=json.dumps([s.as_dict() for s in indexes], separators=(",", ":")),
    )
    version = _save_versioned(item, current.version, "index catalogue")
    return StoredCatalogue(current.account_id, indexes, version)


# ------------------------------------------------------------ index entries
def profile_from_image(image: dict[str, Any] | None) -> Profile | None:
    """A stream image (DynamoDB JSON) of a profile item back into a Profile."""
    if not image or image.get("sk", {}).get("S") != PROFILE_SK:
        return None
    return profile_from_item(UserItem.from_raw_data(image)).profile


def entry_item(pk: str, entry: Entry) -> IndexEntryItem:
    """The stored item of one index entry beside the user's profile."""
    return IndexEntryItem(
        pk,
        entry.sk,
        ix_value=entry.ix_value,
        ix_attr=entry.ix_attr,
        ix_changed=entry.ix_changed,
        # JSON keeps the exact type (True is not 1, "12" is not 12).
        ix_json=json.dumps(entry.value, separators=(",", ":"), ensure_ascii=False),
        live_until=entry.live_until,
    )


def stored_entries(pk: str) -> dict[str, Entry]:
    """Every index entry stored for one user, as the domain compares them."""
    found: dict[str, Entry] = {}
    for item in IndexEntryItem.query(pk, IndexEntryItem.sk.startswith(ENTRY_PREFIX)):
        value = None if item.ix_json is None else json.loads(item.ix_json)
        found[item.sk] = Entry(
            item.sk,
            item.ix_value,
            item.ix_attr,
            int(item.ix_changed),
            value,
            0 if item.live_until is None else int(item.live_until),
        )
    return found


def apply_index_changes(changes: Changes) -> int:
    """Write and delete index entries (idempotent: puts overwrite, deletes of nothing pass)."""
    if not changes:
        return 0
    with IndexEntryItem.batch_write() as batch:
        for entry in changes.puts:
            batch.save(entry_item(changes.pk, entry))
        for sk in changes.deletes:
            batch.delete(IndexEntryItem(changes.pk, sk))
    return len(changes.puts) + len(changes.deletes)


# ------------------------------------------------------------- index reads
# A position in one index stream, compact enough for a cursor: [user pk,
# range key value]. The rest of the key follows from the query.
Position = list[Any]


@dataclass(frozen=True, slots=True)
class Hit:
    pk: str  # the user's pk
    position: Position  # where to resume after this hit
    # What the index item says of the user (only the projected fields are
    # set), and for an entry the live_until it carries.
    partial: Profile
    live_until: int | None = None


_INDEX_KEYS = {
    "by_first_seen": ("ix_shard", "first_seen"),
    "by_last_seen": ("ix_active", "last_seen"),
    "by_value": ("ix_value", "ix_changed"),
    "by_change": ("ix_attr", "ix_changed"),
}


def read_index(
    query: Query, after: Position | None, limit: int
) -> tuple[list[Hit], Position | None]:
    """Up to `limit` hits of one stream after `after`; where to go on, or None at the end."""
    hash_name, range_name = _INDEX_KEYS[query.index]
    model: Any = UserItem if query.index in ("by_first_seen", "by_last_seen") else IndexEntryItem
    index = getattr(model, query.index)
    attr = getattr(model, range_name)
    condition = None
    if query.low is not None and query.high is not None:
        condition = attr.between(query.low, query.high)
    elif query.low is not None:
        condition = attr >= query.low
    elif query.high is not None:
        condition = attr <= query.high
    start = None
    if after is not None:
        pk, value = after
        start = {
            "pk": {"S": pk},
            "sk": {"S": query.sk},
            hash_name: {"S": query.hash_key},
            range_name: {"N": _num(value)},
        }
    results = index.query(
        query.hash_key,
        range_key_condition=condition,
        limit=limit,
        last_evaluated_key=start,
        page_size=min(limit, 1000),
    )
    hits = [
        Hit(item.pk, [item.pk, _plain(getattr(item, range_name))], *_partial(item, query))
        for item in results
    ]
    more = results.last_evaluated_key
    if not more:
        return hits, None
    return hits, [more["pk"]["S"], _plain(more[range_name]["N"])]


def _plain(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def _num(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _partial(item: Any, query: Query) -> tuple[Profile, int | None]:
    """The profile fields an index item carries (its projection), and its live_until."""
    account_id, uuid = split_pk(item.pk)
    if isinstance(item, UserItem):
        first_seen = None if item.first_seen is None else int(item.first_seen)
        last_seen = None if item.last_seen is None else int(item.last_seen)
        profile = Profile(
            account_id=account_id,
            uuid=uuid,
            created_at=first_seen or 0,  # not projected; unused once last_seen is set
            first_seen=first_seen,
            last_seen=last_seen,
            total_sessions=int(item.total_sessions or 0),
            total_duration_ms=int(item.total_duration_ms or 0),
            country=item.country,
            region=item.region,
            city=item.city,
            browser_name=item.browser_name,
            browser_version=item.browser_version,
        )
        return profile, None
    attribute = query.sk[len(ENTRY_PREFIX) :]
    value = None if item.ix_json is None else json.loads(item.ix_json)
    live_until = None if item.live_until is None else int(item.live_until)
    profile = Profile(account_id=account_id, uuid=uuid, created_at=0)
    if attribute.startswith("custom."):
        # ix_changed is the value's changed_since: all `changed_within` needs.
        custom = CustomValue(value, int(item.ix_changed), "index")
        profile = replace(profile, custom={attribute[len("custom.") :]: custom})
    elif attribute in INDEXED_STANDARD:
        profile = replace(profile, **{attribute: value})
    return profile, live_until


# ------------------------------------------------------------------ reindex
# Where a walk of an account's visible profiles stands: [shard, the last key
# read in it (DynamoDB JSON) or None].
WalkPosition = list[Any]


def visible_profile_pks(
    account_id: str, position: WalkPosition, limit: int, *, step: int = 1
) -> tuple[list[str], WalkPosition | None]:
    """Up to `limit` pks of visible profiles after `position` (by_first_seen, shard by shard,
    every `step`th shard from the position's).

    Only visible profiles have index entries (none before the first closed
    session), and only they carry the by_first_seen key, so the walk reads
    the account's own keys, never another account's.
    """
    shard, after = int(position[0]), position[1]
    while shard < SHARDS:
        results = UserItem.by_first_seen.query(
            shard_key(account_id, shard), limit=limit, last_evaluated_key=after
        )
        pks = [item.pk for item in results]
        more = results.last_evaluated_key
        if more:
            return pks, [shard, more]
        shard, after = shard + step, None
        if pks:
            return pks, ([shard, None] if shard < SHARDS else None)
    return [], None


def backfill_chain_done(account_id: str, since: int, chain: int, *, expires_at: int) -> int:
    """Record that chain `chain` of backfill `since` has walked its shards; how many
    chains have. An ADD to a set: atomic between chains, and a retried slice adds nothing."""
    item = BackfillProgressItem(f"segidx#{account_id}#{since}")
    item.update(
        actions=[
            BackfillProgressItem.chains_done.add({chain}),
            BackfillProgressItem.expires_at.set(expires_at),
        ]
    )
    return len(item.chains_done or ())


def account_profiles(account_id: str) -> Iterator[tuple[ProfileRecord, tuple[Any, ...]]]:
    """Every profile of one account with its stored (ix_shard, ix_active, ix_listed), by a Scan.

    Only for the one-off re-index: the profile GSIs are what it repairs, so
    it cannot use them. It reads (and pays for) every item of every account.
    """
    condition = (UserItem.sk == PROFILE_SK) & (UserItem.account_id == account_id)
    for item in UserItem.scan(filter_condition=condition):
        yield profile_from_item(item), (item.ix_shard, item.ix_active, item.ix_listed)


def rewrite_index_keys(record: ProfileRecord, stored: tuple[Any, ...]) -> bool:
    """Put the profile back with the index keys this code writes; False if already so.

    Conditional on the version read: a writer that got there first wrote the
    same keys (every writer goes through profile_to_item), so a conflict is
    left alone.
    """
    wanted = profile_to_item(record.profile, record.version)
    if stored == (wanted.ix_shard, wanted.ix_active, wanted.ix_listed):
        return False
    try:
        wanted.save()
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def entry_sks(pk: str) -> list[str]:
    """The sk of every index entry stored for one user."""
    return [
        item.sk
        for item in IndexEntryItem.query(
            pk, IndexEntryItem.sk.startswith(ENTRY_PREFIX), attributes_to_get=["pk", "sk"]
        )
    ]
