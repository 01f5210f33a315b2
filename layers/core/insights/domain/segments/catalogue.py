"""Which entry indexes an account keeps, and which of them are complete.

An account's segments decide the entry indexes it needs (planner.index_needs).
A need a segment adds is *building* from the moment it is saved: the stream
writes its entries for every profile that changes from then on, and a
backfill (services.segment_index.backfill) writes them for every profile
that does not. Only when the backfill has walked the whole account is the
need *ready* and the planner allowed to read it; until then a rule on it is
answered by the last_seen scan, slower but exact. A need no segment uses
any more is dropped: its entries are no longer kept up to date, so using it
again starts a new backfill.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from insights.domain.segments.indexing import Needs


@dataclass(frozen=True, slots=True)
class IndexState:
    attribute: str
    index: str  # indexing.BY_VALUE or BY_CHANGE
    since: int  # when the need was added: names its backfill
    ready: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "index": self.index,
            "since": self.since,
            "ready": self.ready,
        }


Catalogue = tuple[IndexState, ...]


def from_json(raw: list[dict[str, Any]] | None) -> Catalogue:
    return tuple(IndexState(**entry) for entry in raw or ())


def needs_of(catalogue: Catalogue, *, ready_only: bool = False) -> Needs:
    found: dict[str, set[str]] = {}
    for state in catalogue:
        if state.ready or not ready_only:
            found.setdefault(state.attribute, set()).add(state.index)
    return {attribute: frozenset(kinds) for attribute, kinds in found.items()}


def updated(current: Catalogue, needed: Needs, now_ms: int) -> Catalogue:
    """The catalogue after the account's segments changed to ones that need `needed`."""
    kept = {(s.attribute, s.index): s for s in current}
    wanted = sorted((attribute, index) for attribute, kinds in needed.items() for index in kinds)
    return tuple(kept.get(key) or IndexState(key[0], key[1], now_ms) for key in wanted)


def building_since(catalogue: Catalogue) -> int | None:
    """The newest `since` of the needs still building: the backfill that completes them."""
    pending = [s.since for s in catalogue if not s.ready]
    return max(pending) if pending else None


def mark_ready(catalogue: Catalogue, backfill_since: int) -> Catalogue:
    """After a backfill that started once every need up to `backfill_since` was added."""
    return tuple(
        replace(s, ready=True) if not s.ready and s.since <= backfill_since else s
        for s in catalogue
    )
