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

from typing import Any

from insights.domain.segments.indexing import changes
from insights.storage import segments as seg_store


def apply_record(record: dict[str, Any]) -> int:
    """One stream record of a profile item; returns the index writes made (0 when unchanged)."""
    data = record.get("dynamodb", {})
    old = seg_store.profile_from_image(data.get("OldImage"))
    new = seg_store.profile_from_image(data.get("NewImage"))
    if record.get("eventName") == "REMOVE":
        new = None  # erased, or expired and removed by TTL: every entry goes
    return seg_store.apply_index_changes(changes(old, new))
