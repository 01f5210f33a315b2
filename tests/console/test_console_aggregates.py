"""The console's aggregates kept from the users stream: pending sums per batch and
account, folded at most once an hour (a quiet account's after a day), counted
exactly once whatever Lambda redelivers (services/console/aggregates.py).
Records are built as the stream delivers them and handed to the service, so
redeliveries can be replayed exactly."""

from __future__ import annotations

from typing import Any

import pytest

from insights.domain.console.user_list import parse
from insights.domain.core.profile import CustomValue, Profile
from insights.services.console import aggregates as console_aggregates
from insights.services.console import reads as console
from insights.storage.console import aggregates
from insights.storage.core.records import profile_to_item
from tests.conftest import MINUTE, T0_MS, Stack

HOUR_MS = 60 * MINUTE * 1000


def new_user(account_id: str, uuid: str, at: int, plan: str) -> Profile:
    return Profile(
        account_id,
        uuid,
        created_at=at,
        first_seen=at,
        last_seen=at + 60_000,
        total_sessions=1,
        total_duration_ms=60_000,
        custom={"plan": CustomValue(plan, at, "track")},
    )


def record(profile: Profile, sequence: int, created_ms: int) -> dict[str, Any]:
    image = profile_to_item(profile, 1).serialize()
    return {
        "eventID": f"e{sequence}",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": created_ms // 1000,
            "SequenceNumber": str(sequence),
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
        },
    }


def counts(account_id: str, now_ms: int) -> tuple[int, int, dict[str, int]]:
    """(users, sessions over 30 days, users holding each plan) as the console reads them."""
    stats = console.stats(account_id, 30, now_ms)
    sessions = sum(day["sessions"] for day in stats["days"])
    catalogue = console.attributes(account_id, parse(None, None, None, default=1000, most=1000))
    held = {a["name"]: a["users"] for a in catalogue["attributes"]}
    return stats["users"], sessions, held


def test_redelivered_and_bisected_batches_count_once(stack: Stack) -> None:
    account = stack.account()
    now = T0_MS + HOUR_MS
    batch = [
        record(new_user(account.account_id, f"u{i}", T0_MS, "free"), 100 + i, now) for i in range(4)
    ]
    console_aggregates.apply_records(batch, now)
    console_aggregates.apply_records(batch, now)  # the same batch again
    # Lambda bisects a failed batch: the halves overwrite / follow the first key.
    console_aggregates.apply_records(batch[:2], now)
    console_aggregates.apply_records(batch[2:], now)
    # ... or resumes after a reported failure at the third record.
    console_aggregates.apply_records(batch[2:], now)
    assert counts(account.account_id, now) == (4, 4, {"plan": 4})


def test_a_quiet_accounts_roll_up_waits_a_day_then_folds_once(stack: Stack) -> None:
    account = stack.account()
    now = T0_MS + HOUR_MS
    first = [record(new_user(account.account_id, "a", T0_MS, "free"), 1, now)]
    console_aggregates.apply_records(first, now)
    assert aggregates.read_rolled(account.account_id) == aggregates.NOTHING_ROLLED
    # Two hours on, one pending item is not worth a fold: it stays pending,
    # and readers count it all the same.
    later = now + 2 * HOUR_MS
    second = [record(new_user(account.account_id, "b", later, "VIP"), 2, later)]
    console_aggregates.apply_records(second, later)
    assert aggregates.read_rolled(account.account_id) == aggregates.NOTHING_ROLLED
    assert counts(account.account_id, later) == (2, 2, {"plan": 2})
    # A day after the first, the next batch folds both (and writes its own pending).
    day_on = now + console_aggregates.QUIET_FOLD_AFTER_MS
    third = [record(new_user(account.account_id, "c", day_on, "free"), 3, day_on)]
    console_aggregates.apply_records(third, day_on)
    assert aggregates.read_rolled(account.account_id) != aggregates.NOTHING_ROLLED
    pending = console_aggregates.pending(account.account_id)
    assert (pending.users, dict(pending.attributes["plan"])["users"]) == (1, 1)
    # Forced, the rest folds; then there is nothing left to fold.
    assert console_aggregates.roll_up(account.account_id, day_on + 2 * HOUR_MS, force=True) > 0
    assert console_aggregates.roll_up(account.account_id, day_on + 2 * HOUR_MS, force=True) == 0
    assert counts(account.account_id, day_on) == (3, 3, {"plan": 3})
    assert console_aggregates.pending(account.account_id).is_empty()


def test_a_busy_account_still_folds_every_hour(stack: Stack) -> None:
    """An hour with QUIET_PENDING_ITEMS batches or more is folded an hour later."""
    account = stack.account()
    now = T0_MS + HOUR_MS
    batches = console_aggregates.QUIET_PENDING_ITEMS
    for n in range(batches):
        at = now + n * 2 * 60_000
        user = new_user(account.account_id, f"u{n}", at, "free")
        console_aggregates.apply_records([record(user, n + 1, at)], at)
    assert aggregates.read_rolled(account.account_id) == aggregates.NOTHING_ROLLED
    later = now + 2 * HOUR_MS
    last = [record(new_user(account.account_id, "z", later, "VIP"), batches + 1, later)]
    console_aggregates.apply_records(last, later)
    assert aggregates.read_rolled(account.account_id) != aggregates.NOTHING_ROLLED
    assert console_aggregates.pending(account.account_id).users == 1  # only the last batch
    assert counts(account.account_id, later) == (batches + 1, batches + 1, {"plan": batches + 1})


def test_one_pending_item_short_of_busy_waits(stack: Stack) -> None:
    account = stack.account()
    now = T0_MS + HOUR_MS
    for n in range(console_aggregates.QUIET_PENDING_ITEMS - 1):
        at = now + n * 60_000
        user = new_user(account.account_id, f"u{n}", at, "free")
        console_aggregates.apply_records([record(user, n + 1, at)], at)
    assert console_aggregates.roll_up(account.account_id, now + 3 * HOUR_MS) == 0
    assert console_aggregates.roll_up(account.account_id, now + 3 * HOUR_MS, force=True) > 0


def test_a_roll_up_reads_only_the_batches_it_folds(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newer batches a busy account leaves pending are not read (nor billed)."""
    account = stack.account()
    now = T0_MS + HOUR_MS
    for n in range(console_aggregates.QUIET_PENDING_ITEMS + 6):
        at = now + n * 5 * 60_000  # two hours of batches, 5 minutes apart
        user = new_user(account.account_id, f"u{n}", at, "free")
        console_aggregates.apply_records([record(user, n + 1, at)], at)
    client = aggregates._client()
    returned: list[str] = []

    def query(**params: Any) -> Any:
        page = real_query(**params)
        returned.extend(item["sk"]["S"] for item in page.get("Items", []))
        return page

    real_query = client.query
    monkeypatch.setattr(client, "query", query)
    roll_at = now + 3 * HOUR_MS
    upto = f"{roll_at - console_aggregates.ROLL_UP_LAG_MS:013d}~"
    assert console_aggregates.roll_up(account.account_id, roll_at, force=True) > 0
    pending = [sk for sk in returned if sk[:1].isdigit()]  # not the marker or sums
    assert pending and max(pending) <= upto
    assert aggregates.read_rolled(account.account_id) <= upto
    monkeypatch.undo()
    # What it left is still there, and a roll-up from before the marker reads nothing.
    assert console_aggregates.pending(account.account_id).users > 0
    assert aggregates.read_pending(account.account_id, upto, "0") == []


def test_two_roll_ups_from_one_marker_apply_once(stack: Stack) -> None:
    account = stack.account()
    now = T0_MS + HOUR_MS
    console_aggregates.apply_records(
        [record(new_user(account.account_id, "a", T0_MS, "free"), 1, now)], now
    )
    previous = aggregates.read_rolled(account.account_id)
    (sk, sums), *_ = aggregates.read_pending(account.account_id, previous)
    updates = console_aggregates.updates_of(account.account_id, _decoded(sums), None)
    assert aggregates.roll_up(account.account_id, updates, previous, sk) is True
    assert aggregates.roll_up(account.account_id, updates, previous, sk) is False
    assert counts(account.account_id, now + 3 * HOUR_MS) == (1, 1, {"plan": 1})


def test_a_late_batch_is_applied_at_once_and_never_left_behind_the_marker(
    stack: Stack,
) -> None:
    account = stack.account()
    now = T0_MS + 3 * HOUR_MS
    late = [record(new_user(account.account_id, "a", T0_MS, "free"), 1, now - 45 * MINUTE * 1000)]
    # Applied in one transaction whose ClientRequestToken makes a retry within
    # 10 minutes a no-op on DynamoDB (moto does not implement tokens, so the
    # retry is not replayed here).
    console_aggregates.apply_records(late, now)
    assert console_aggregates.pending(account.account_id).is_empty()
    assert counts(account.account_id, now) == (1, 1, {"plan": 1})


def _decoded(sums: str) -> Any:
    from insights.domain.console.stats import Deltas

    return Deltas.decode(sums)
