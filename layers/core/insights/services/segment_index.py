"""Keeping the segment index entries in step with profiles, from the UsersTable stream.

Why the stream and not the profile write's transaction: profiles are written
by three close paths, ingest, erasure, retention and (soon) imports. The
stream sees every one of them, including writers that do not know segments
exist, at no cost to the session-close path (DESIGN invariant 9: one
transaction per close, no extra reads). The price is a lag of about a second
before an entry follows a changed value. Listings that decide from the entry
(index-only evaluation) see that lag both ways; the per-user call reads the
profile and has none (docs/segments.md, "Lag").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from insights.domain.segments.indexing import Changes, changes, entries
from insights.storage import segments as seg_store
from insights.storage.records import user_pk


def apply_record(record: dict[str, Any]) -> int:
    """One stream record of a profile item; returns the index writes made (0 when unchanged)."""
    data = record.get("dynamodb", {})
    old = seg_store.profile_from_image(data.get("OldImage"))
    new = seg_store.profile_from_image(data.get("NewImage"))
    if record.get("eventName") == "REMOVE":
        new = None  # erased, or expired and removed by TTL: every entry goes
    return seg_store.apply_index_changes(changes(old, new))


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
    are the pure function of the profile that the stream writes too).
    """
    done = Reindexed()
    for record, keys in seg_store.account_profiles(account_id):
        done.profiles += 1
        done.keys_rewritten += seg_store.rewrite_index_keys(record, keys)
        pk = user_pk(record.profile.account_id, record.profile.uuid)
        wanted = entries(record.profile)
        stale = tuple(sk for sk in seg_store.entry_sks(pk) if sk not in wanted)
        seg_store.apply_index_changes(Changes(pk, tuple(wanted.values()), stale))
        done.entries_written += len(wanted)
        done.entries_deleted += len(stale)
    return done
