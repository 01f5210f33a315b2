"""Keeping the segment index entries in step with profiles, from the UsersTable stream.

Why the stream and not the profile write's transaction: profiles are written
by three close paths, ingest, erasure, retention and imports. The stream
sees every one of them, including writers that do not know segments exist,
at no cost to the session-close path (DESIGN invariant 9: one transaction
per close, no extra reads). The price is a lag of about a second before an
entry follows a changed value. Listings that decide from the entry
(index-only evaluation) see that lag both ways; the per-user call reads the
profile and has none (docs/segments.md, "Lag").

Entries are kept only for the indexes the account's segments need
(domain.segments.catalogue). The catalogue is read once per invocation,
after the records arrived, so a record of a profile written after a
segment was saved is always indexed with that segment's needs; the profiles
written before are the backfill's (below).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from insights import clock
from insights.domain.segments import catalogue
from insights.domain.segments.indexing import SHARDS, Changes, Needs, changes, entries
from insights.domain.segments.planner import index_needs
from insights.domain.segments.rules import Node
from insights.services.core.closing import MAX_ATTEMPTS, backoff
from insights.storage import segments as seg_store
from insights.storage.core import queues, store
from insights.storage.core.records import user_pk
from insights.storage.core.store import Conflict

# The catalogue of each account seen in the current invocation.
_needs: dict[str, Needs] = {}
BACKFILL_PAGE = 100
# A backfill runs as this many chains of slices side by side, chain c walking
# shards c, c + chains, ... One per shard: a user's entries are written to its
# own shard's keys, so each entry key still takes only what one chain writes
# (as when a single chain walked the shards one after another), and a backfill
# finishes SHARDS times sooner (benchmarks/scale_model.py: 10M users' largest
# account in ~15 h instead of ~5 days).
BACKFILL_CHAINS = SHARDS
# The record of which chains are done outlives any backfill (issue 27: hours).
BACKFILL_PROGRESS_S = 30 * 86_400


def new_invocation() -> None:
    """Forget the catalogues read: an invocation reads each account's afresh."""
    _needs.clear()


def needs_for(account_id: str) -> Needs:
    found = _needs.get(account_id)
    if found is None:
        indexes = seg_store.load_catalogue(account_id).indexes
        found = _needs[account_id] = catalogue.needs_of(indexes)
    return found


def apply_record(record: dict[str, Any]) -> int:
    """One stream record of a profile item; returns the index writes made (0 when unchanged)."""
    data = record.get("dynamodb", {})
    pk = data.get("Keys", {}).get("pk", {}).get("S", "")
    if record.get("eventName") == "REMOVE":
        # Erased, or expired and removed by TTL: every entry goes, including
        # those of indexes no segment needs any more.
        stale = tuple(seg_store.entry_sks(pk))
        return seg_store.apply_index_changes(Changes(pk, (), stale))
    old = seg_store.profile_from_image(data.get("OldImage"))
    new = seg_store.profile_from_image(data.get("NewImage"))
    if new is None:
        return 0
    return seg_store.apply_index_changes(changes(old, new, needs_for(new.account_id)))


def reconcile(pk: str, needs: Needs) -> tuple[int, int]:
    """Make one user's stored entries those its profile should have: (written, deleted).

    Re-checked against the profile's version after writing: a profile write
    that raced this one is indexed by the stream, but the stream's entry
    could have landed before this older one, so the user is done again.
    """
    written = deleted = 0
    for _ in range(MAX_ATTEMPTS):
        record = store.get_profile(pk, consistent=True)
        wanted = entries(record.profile, needs) if record else {}
        stored = seg_store.stored_entries(pk)
        puts = tuple(e for sk, e in wanted.items() if stored.get(sk) != e)
        deletes = tuple(sk for sk in stored if sk not in wanted)
        seg_store.apply_index_changes(Changes(pk, puts, deletes))
        written, deleted = written + len(puts), deleted + len(deletes)
        again = store.get_profile(pk, consistent=True)
        if (again.version if again else None) == (record.version if record else None):
            break
    return written, deleted


def backfill_messages(account_id: str, since: int) -> list[dict[str, Any]]:
    """The first slice of each chain of a new backfill."""
    return [
        {"account_id": account_id, "since": since, "chain": chain, "chains": BACKFILL_CHAINS}
        for chain in range(BACKFILL_CHAINS)
    ]


def backfill(message: dict[str, Any], time_left: Callable[[], bool]) -> dict[str, Any] | None:
    """One slice of a chain of an account's backfill; the message for the chain's next
    slice, or None when the chain is done.

    The message names the newest need the backfill completes (`since`):
    needs added later have their own. Every user is reconciled with every
    need of the current catalogue, so a slice that runs again, or two
    backfills that overlap, write each entry at most once more. The chain
    that finishes last marks the needs ready (a message without `chains`,
    queued before chains existed, is the only chain).
    """
    account_id, since = str(message["account_id"]), int(message["since"])
    chain, chains = int(message.get("chain", 0)), int(message.get("chains", 1))
    if not 0 <= chain < chains:
        raise ValueError(f"backfill message: chain {chain} is not one of {chains} chains")
    position: seg_store.WalkPosition | None = message.get("position") or [chain, None]
    needs = catalogue.needs_of(seg_store.load_catalogue(account_id).indexes)
    while position is not None:
        pks, position = seg_store.visible_profile_pks(
            account_id, position, BACKFILL_PAGE, step=chains
        )
        for pk in pks:
            reconcile(pk, needs)
        if position is not None and not time_left():
            return {**message, "position": position}
    if chains > 1:
        expires_at = since // 1000 + BACKFILL_PROGRESS_S
        if seg_store.backfill_chain_done(account_id, since, chain, expires_at=expires_at) < chains:
            return None  # the last chain to finish marks the needs ready
    _mark_ready(account_id, since)
    return None


def _mark_ready(account_id: str, since: int) -> None:
    for attempt in range(MAX_ATTEMPTS):
        current = seg_store.load_catalogue(account_id)
        done = catalogue.mark_ready(current.indexes, since)
        if done == current.indexes:
            return
        try:
            seg_store.save_catalogue(current, done)
            return
        except Conflict:
            backoff(attempt)
    raise RuntimeError(f"could not mark the index catalogue ready after {MAX_ATTEMPTS} attempts")


def ready_for(account_id: str) -> Needs:
    """The entry indexes complete for an account: the ones a plan may read."""
    indexes = seg_store.load_catalogue(account_id, consistent=False).indexes
    return catalogue.needs_of(indexes, ready_only=True)


def sync_catalogue(account_id: str, rules: list[Node], *, start_backfill: bool = True) -> None:
    """Store the needs of the account's new rules; start a backfill for new ones.

    Raises Conflict when another writer changed the catalogue since it was
    read (the caller's whole mutation is retried).
    """
    now = clock.now_ms()
    current = seg_store.load_catalogue(account_id)
    wanted = catalogue.updated(current.indexes, index_needs(rules, now), now)
    if wanted == current.indexes:
        return
    seg_store.save_catalogue(current, wanted)
    added = {(s.attribute, s.index) for s in wanted} - {
        (s.attribute, s.index) for s in current.indexes
    }
    if added and start_backfill:
        for message in backfill_messages(account_id, now):
            queues.send_backfill(message)


@dataclass(slots=True)
class Reindexed:
    profiles: int = 0
    keys_rewritten: int = 0
    entries_written: int = 0
    entries_deleted: int = 0


def reindex_account(account_id: str) -> Reindexed:
    """Rewrite the segment index keys and entries of every profile of one account.

    For a deployment whose profiles or entries predate the current index
    layout (docs/segments.md, "Known limits"). Idempotent; safe while traffic
    flows (profile writes are conditional on the version read, and entries
    are reconciled against the profile's version as the backfill does).
    """
    done = Reindexed()
    started = clock.now_ms()
    rules = [s.parsed() for s in seg_store.load_segments(account_id).segments]
    sync_catalogue(account_id, rules, start_backfill=False)  # this walk is the backfill
    needs = catalogue.needs_of(seg_store.load_catalogue(account_id).indexes)
    for record, keys in seg_store.account_profiles(account_id):
        done.profiles += 1
        done.keys_rewritten += seg_store.rewrite_index_keys(record, keys)
        pk = user_pk(record.profile.account_id, record.profile.uuid)
        written, deleted = reconcile(pk, needs)
        done.entries_written += written
        done.entries_deleted += deleted
    _mark_ready(account_id, started)
    return done
