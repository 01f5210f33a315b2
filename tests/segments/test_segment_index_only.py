"""Index-only evaluation: what the index items carry, what it costs in writes, what it answers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks.capacity import gsi_writes, item_size, projected
from insights.domain.core.profile import RETENTION_MS, CustomValue, tombstone
from insights.domain.core.timefmt import DAY_MS
from insights.domain.segments import indexing
from insights.local.template import Template
from insights.storage.core import store
from insights.storage.core.records import profile_to_item, user_pk
from insights.storage.core.store import PutProfile
from insights.storage.segments import entry_item
from tests.conftest import Stack
from tests.segments.segments_helpers import count, create, pages, segments_of
from tests.segments.test_segment_planner import EVERY_NEED
from tests.segments.test_segments_api import NOW, c, frozen, person, population, seed

__all__ = ["frozen"]  # the fixture, imported for its use below

ROOT = Path(__file__).resolve().parents[2]
USERS = Template.load(ROOT / "template.yaml").resources["UsersTable"]["Properties"]
INDEXES = {i["IndexName"]: i for i in USERS["GlobalSecondaryIndexes"]}
KEYS = [k["AttributeName"] for k in USERS["KeySchema"]]


def stored(profile: Any) -> dict[str, Any]:
    item = profile_to_item(profile, None)
    item.version = 3
    return item.serialize()


# ------------------------------------------------------ what the GSIs hold
def test_hidden_profiles_and_tombstones_are_in_no_profile_index() -> None:
    hidden = person(
        "acc_1",
        "imported-only",
        first_seen=None,
        last_seen=None,
        total_sessions=0,
        custom={"plan": CustomValue("VIP", NOW, "import")},
    )
    for profile in (hidden, tombstone("acc_1", "erased", NOW)):
        item = stored(profile)
        for name in ("by_first_seen", "by_last_seen"):
            assert projected(item, INDEXES[name], KEYS) is None, (profile.uuid, name)
        assert indexing.entries(profile, EVERY_NEED) == {}  # and no entry items


def test_a_session_close_costs_the_same_gsi_writes_as_with_keys_only() -> None:
    before = person("acc_1", "u", total_sessions=1, last_seen=NOW - DAY_MS, country="SE")
    closes = [
        # 1 -> 2 sessions: the bucket moves with last_seen
        replace(before, total_sessions=2, last_seen=NOW, total_duration_ms=700_000),
        # 2 -> 3: same bucket, new last_seen, new place and browser
        replace(before, total_sessions=3, last_seen=NOW, country="NO", browser_version="2"),
    ]
    keys_only = {**INDEXES["by_last_seen"], "Projection": {"ProjectionType": "KEYS_ONLY"}}
    for after in closes:
        old = stored(before if after.total_sessions == 2 else replace(before, total_sessions=2))
        new = stored(after)
        include = gsi_writes(old, new, INDEXES["by_last_seen"], KEYS)
        assert include == gsi_writes(old, new, keys_only, KEYS) == [1, 1]  # key moved
        assert item_size(projected(new, INDEXES["by_last_seen"], KEYS)) < 1024
        assert gsi_writes(old, new, INDEXES["by_first_seen"], KEYS) == []


def test_an_import_writes_no_profile_index() -> None:
    before = person("acc_1", "u", custom={"plan": CustomValue("free", NOW - DAY_MS, "event")})
    after = replace(before, custom={"plan": CustomValue("VIP", NOW, "import")})
    for name in ("by_first_seen", "by_last_seen"):
        assert gsi_writes(stored(before), stored(after), INDEXES[name], KEYS) == [], name


def test_entries_are_rewritten_when_the_value_changes_not_when_last_seen_does() -> None:
    plan = CustomValue("VIP", NOW - DAY_MS, "event", NOW - 5 * DAY_MS)
    before = person("acc_1", "u", last_seen=NOW - DAY_MS, country="SE", custom={"plan": plan})
    later = replace(
        before,
        last_seen=NOW,
        total_sessions=3,
        custom={"plan": replace(plan, updated_at=NOW)},  # the same value resent
    )
    assert not indexing.changes(before, later, EVERY_NEED)  # live_until moved, no write
    upgraded = replace(later, custom={"plan": CustomValue("Gold", NOW, "event")})
    (put,) = indexing.changes(later, upgraded, EVERY_NEED).puts
    assert put.value == "Gold" and put.live_until == NOW + RETENTION_MS
    item = entry_item(user_pk("acc_1", "u"), put).serialize()
    shown = projected(item, INDEXES["by_value"], KEYS)
    assert shown is not None and shown["ix_json"] == {"S": '"Gold"'}
    assert shown["live_until"] == {"N": str(NOW + RETENTION_MS)}


# ------------------------------------------------------- what it answers
@pytest.mark.parametrize(
    ("rules", "unproven"),
    [
        (c("first_seen", "within_last", "7d"), 0),
        # first_seen older than the retention window proves nothing: profile read
        (c("first_seen", "before", "7d"), 1),
        (c("custom.plan", "changed_within", "3d", to="vip", ignore_case=True), 0),
        # the expired user's entry carries a past live_until: profile read
        (c("country", "equals", "Sweden"), 1),
        # last_seen and total_sessions are in by_last_seen: exact, no read
        ({"all": [c("total_sessions", "equals", 1), c("last_seen", "before", "1d")]}, 0),
        ({"not": c("country", "equals", "Sweden")}, 0),
    ],
)
def test_counts_read_profiles_only_where_the_index_cannot_prove_visibility(
    stack: Stack, frozen: int, rules: Any, unproven: int
) -> None:
    from insights.domain.segments.evaluate import is_member
    from insights.domain.segments.rules import parse_rules

    acme = stack.account()
    people = seed(stack, acme)
    node = parse_rules(rules)
    answer = count(stack, acme, create(stack, acme, rules))
    assert answer["count"] == sum(1 for p in people if is_member(node, p, frozen))
    assert answer["plan"]["reads"] == "index"
    assert answer["plan"]["profiles_read"] == unproven


def test_listings_show_full_profiles_reading_members_only(stack: Stack, frozen: int) -> None:
    acme = stack.account()
    people = {p.uuid: p for p in seed(stack, acme)}
    vip = create(stack, acme, c("custom.plan", "equals", "VIP"))
    page = pages(stack, acme, vip, 100)[0]
    assert page["users"] and page["plan"]["reads"] == "index"
    # entries carry no standard attributes: each member shown is read, and the
    # expired user whose entry cannot prove visibility; no one else
    assert page["plan"]["profiles_read"] == len(page["users"]) + 1
    for user in page["users"]:
        assert user["standard"] == people[user["uuid"]].standard()
    recent = create(stack, acme, c("last_seen", "within_last", "5d"))
    page = pages(stack, acme, recent, 100)[0]
    assert page["users"] and page["plan"]["profiles_read"] == 0  # by_last_seen carries them
    for user in page["users"]:
        assert user["standard"] == people[user["uuid"]].standard()


def test_a_changed_value_lags_in_listings_until_the_stream_delivers(
    stack: Stack, frozen: int
) -> None:
    acme = stack.account()
    seed(stack, acme)
    account_id = acme.account.account_id
    vip = create(stack, acme, c("custom.plan", "equals", "VIP"))
    before = count(stack, acme, vip)["count"]
    pk = user_pk(account_id, "user-01")  # a VIP (population: PLANS[1])
    record = store.get_profile(pk)
    assert record is not None and record.profile.custom["plan"].value == "VIP"
    downgraded = replace(
        record.profile,
        custom={**record.profile.custom, "plan": CustomValue("free", NOW, "import")},
    )
    store.commit([PutProfile(downgraded, record.version)])
    # The per-user call reads the profile: no lag.
    assert vip not in segments_of(stack, acme, "user-01")
    # Index-only answers see the entry until SegmentIndexFunction rewrites it.
    assert count(stack, acme, vip)["count"] == before
    stack.cloud.settle()
    assert count(stack, acme, vip)["count"] == before - 1


def test_erasure_leaves_index_only_answers_at_once(stack: Stack, frozen: int) -> None:
    acme = stack.account()
    seed(stack, acme)
    account_id = acme.account.account_id
    by_entry = create(stack, acme, c("custom.plan", "equals", "VIP"))
    by_last_seen = create(stack, acme, c("last_seen", "within_last", "30d"))
    counts = {s: count(stack, acme, s)["count"] for s in (by_entry, by_last_seen)}
    assert "user-01" in {u["uuid"] for u in pages(stack, acme, by_entry, 100)[0]["users"]}
    # The erasure deletes the entries itself (everything under the user's pk)
    # and leaves a tombstone without index keys: no stream delivery needed.
    store.erase_user(user_pk(account_id, "user-01"), tombstone(account_id, "user-01", NOW))
    for segment_id, before in counts.items():
        assert count(stack, acme, segment_id)["count"] == before - 1


def test_population_has_the_users_these_tests_rely_on() -> None:
    people = {p.uuid: p for p in population("acc_1")}
    assert people["user-01"].custom["plan"].value == "VIP"
    assert people["user-01"].last_seen is not None
    assert people["user-01"].last_seen >= NOW - 30 * DAY_MS


def test_reindex_repairs_profiles_and_entries_from_before_the_layout(
    stack: Stack, frozen: int, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from insights.cli import main as cli
    from insights.storage.core.models import IndexEntryItem, UserItem

    acme = stack.account()
    people = seed(stack, acme)
    account_id = acme.account.account_id
    recent = create(stack, acme, c("last_seen", "within_last", "30d"))
    vip = create(stack, acme, c("custom.plan", "equals", "VIP"))
    want = {s: count(stack, acme, s)["count"] for s in (recent, vip)}
    # What an older deployment left: no ix_active, entries without value or
    # live_until, and an entry the profile no longer has.
    for p in people:
        pk = user_pk(account_id, p.uuid)
        item = UserItem.get(pk, "profile")
        item.update(actions=[UserItem.ix_active.remove()])
        for entry in IndexEntryItem.query(pk, IndexEntryItem.sk.startswith("idx#")):
            entry.ix_json = entry.live_until = None
            entry.save()
    old = indexing.value_key(account_id, 0, "custom.gone", "s:x")
    gone = IndexEntryItem(user_pk(account_id, "user-00"), "idx#custom.gone", ix_value=old)
    gone.ix_changed = 1
    gone.save()
    stack.cloud.settle()
    assert count(stack, acme, recent)["count"] == 0  # orphaned: not in by_last_seen
    before = count(stack, acme, vip)
    assert before["count"] == want[vip]  # entries without proof: profiles read, still right
    assert before["plan"]["profiles_read"] == before["plan"]["index_items_read"]

    assert cli.main(["segments", "reindex", "--account", account_id, "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    visible = [p for p in people if p.total_sessions > 0]
    assert done["profiles"] == len(people) and done["keys_rewritten"] == len(visible)
    assert done["entries_deleted"] == 1
    stack.cloud.settle()
    assert count(stack, acme, recent)["count"] == want[recent]
    after = count(stack, acme, vip)
    assert after["count"] == want[vip] and after["plan"]["profiles_read"] == 1  # the expired one
    # idempotent: nothing left to rewrite
    assert cli.main(["segments", "reindex", "--account", account_id, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["keys_rewritten"] == 0 and again["entries_deleted"] == 0
