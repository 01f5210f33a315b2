"""Keeping the console's daily stats and attribute catalogue, from the UsersTable stream.

SegmentIndexFunction already receives every profile write with its old and
new image (a third reader of the stream would exceed the two per shard that
DynamoDB Streams supports without throttling), so it also sums what each
change adds (domain/console_stats.py) and applies the sums at the end of
its batch:

- One transaction per batch, not per record: an aggregate item is written
  once per batch however many closes it holds, so a busy account's "today"
  item takes at most one write per stream shard per invocation (not one per
  close) and needs no sharding (docs/console-api.md, "Hot keys").
- Exactly once: the transaction's ClientRequestToken is derived from the
  records it sums, so Lambda retrying the same records within 10 minutes
  applies nothing twice, and a failed transaction applied nothing. Only the
  records before the batch's first failed one are summed: Lambda redelivers
  that record and every later one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from insights.domain.console_stats import MAX_EXAMPLES, Deltas
from insights.storage import aggregates
from insights.storage.aggregates import Update
from insights.storage.records import split_pk
from insights.storage.segments import profile_from_image


def deltas_of(records: Sequence[dict[str, Any]]) -> dict[str, Deltas]:
    """What the records add up to, by account."""
    found: dict[str, Deltas] = {}
    for record in records:
        data = record.get("dynamodb", {})
        pk = data.get("Keys", {}).get("pk", {}).get("S", "")
        old = profile_from_image(data.get("OldImage"))
        new = (
            profile_from_image(data.get("NewImage"))
            if record.get("eventName") != "REMOVE"
            else None
        )
        if old is None and new is None:
            continue
        account_id, _ = split_pk(pk)
        found.setdefault(account_id, Deltas()).add_profile_change(old, new)
    return found


def updates_of(
    account_id: str, deltas: Deltas, stored_examples: dict[str, set[str]] | None = None
) -> list[Update]:
    """The aggregate updates of one account's sums; stored_examples (the catalogue's
    current examples) lets new values in while an attribute has fewer than five."""
    updates: list[Update] = []
    day_pk = aggregates.day_pk(account_id)
    for day, counters in sorted(deltas.nonzero_days().items()):
        updates.append(Update(day_pk, day, counters))
    if deltas.users:
        updates.append(Update(day_pk, aggregates.USERS_SK, {"count": deltas.users}))
    attr_pk = aggregates.attribute_pk(account_id)
    counted = deltas.nonzero_attributes()
    for name in sorted(counted.keys() | deltas.examples_seen.keys()):
        gone = frozenset(deltas.examples_gone.get(name, ()))
        new: frozenset[str] = frozenset()
        if stored_examples is not None and not gone:  # one set action per item and write
            have = stored_examples.get(name, set())
            room = MAX_EXAMPLES - len(have)
            fresh = sorted(deltas.examples_seen.get(name, set()) - have)
            new = frozenset(fresh[: max(0, room)])
        if counted.get(name) or gone or new:
            updates.append(Update(attr_pk, name, counted.get(name, {}), gone, new))
    return updates


def apply_records(records: Sequence[dict[str, Any]]) -> int:
    """Sum the records' changes and apply them; returns the aggregate items written."""
    if not records:
        return 0
    updates: list[Update] = []
    for account_id, deltas in sorted(deltas_of(records).items()):
        stored = _stored_examples(account_id) if deltas.examples_seen else None
        updates.extend(updates_of(account_id, deltas, stored))
    token = hashlib.sha256(
        "\n".join(
            str(r.get("eventID") or r["dynamodb"]["SequenceNumber"]) for r in records
        ).encode()
    ).hexdigest()
    aggregates.apply(updates, token)
    return len(updates)


def _stored_examples(account_id: str) -> dict[str, set[str]]:
    """The catalogue's examples (one Query), read only when a batch saw new values."""
    return {
        name: set(item.get(aggregates.EXAMPLES) or ())
        for name, item in aggregates.read_attributes(account_id).items()
    }
