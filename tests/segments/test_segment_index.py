"""Index entries follow profiles through the stream: written on change only, gone with the user."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Stack
from tests.segments.segments_helpers import count, create, listed, segments_of

MINUTE = 60
DAY = 86_400


def entry_writes(stack: Stack) -> list[str]:
    """Every write of an index entry so far, read back from the UsersTable stream."""
    cloud = stack.cloud
    arn = cloud.dynamodb.describe_table(TableName="UsersTable")["Table"]["LatestStreamArn"]
    found = []
    for shard in cloud.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = cloud.streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = cloud.streams.get_records(ShardIterator=iterator, Limit=1000)
            iterator = page["NextShardIterator"]
            if not page["Records"]:
                break
            for record in page["Records"]:
                sk = record["dynamodb"]["Keys"]["sk"]["S"]
                if sk.startswith("idx#"):
                    found.append(f"{record['eventName']} {sk}")
    return found


def entries_of(stack: Stack, account: Any, uuid: str) -> set[str]:
    pk = f"{account.account.account_id}#{uuid}"
    return {
        item["sk"]
        for item in stack.cloud.items("UsersTable")
        if item["pk"] == pk and item["sk"].startswith("idx#")
    }


def session(stack: Stack, account: Any, uuid: str, **props: Any) -> None:
    assert stack.send(account, [{"uuid": uuid, "user_properties": props}]).status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()


def test_entries_are_written_only_when_an_indexed_value_changes(stack: Stack) -> None:
    acme = stack.account()
    create(stack, acme, {"attribute": "custom.plan", "op": "equals", "value": "VIP"})
    create(stack, acme, {"attribute": "country", "op": "in", "value": ["Sweden"]})
    stack.cloud.settle()
    session(stack, acme, "u", plan="VIP", role="admin")
    # only what a segment reads: no role, region, city or browser entries
    assert entries_of(stack, acme, "u") == {"idx#country", "idx#custom.plan"}
    writes = entry_writes(stack)
    assert len(writes) == 2
    # another session with the same values: the profile changes, no entry does
    stack.advance(DAY)
    session(stack, acme, "u", plan="VIP", role="admin")
    assert stack.standard(acme, "u")["total_sessions"] == 2
    assert entry_writes(stack) == writes
    # a new plan: exactly that entry is rewritten
    stack.advance(DAY)
    session(stack, acme, "u", plan="free")
    assert entry_writes(stack) == [*writes, "MODIFY idx#custom.plan"]


def test_an_account_without_segments_writes_no_entries(stack: Stack) -> None:
    acme = stack.account()
    session(stack, acme, "u", plan="VIP", role="admin")
    assert stack.user(acme, "u").status == 200
    assert entries_of(stack, acme, "u") == set() and entry_writes(stack) == []


def test_a_new_segment_is_answered_by_a_scan_until_its_index_is_backfilled(
    stack: Stack,
) -> None:
    acme = stack.account()
    for n in range(5):
        session(stack, acme, f"u{n}", plan="VIP" if n % 2 else "free")
    rule = {"attribute": "custom.plan", "op": "equals", "value": "VIP"}
    vip = create(stack, acme, rule, settle=False)
    before = count(stack, acme, vip)
    assert before["count"] == 2 and before["plan"]["path"] == "scan"
    stack.cloud.settle()  # the backfill slice runs from its queue
    assert {n: entries_of(stack, acme, f"u{n}") for n in range(5)} == {
        n: {"idx#custom.plan"} for n in range(5)
    }
    after = count(stack, acme, vip)
    assert after["count"] == 2 and after["plan"]["index"] == "custom.plan (value)"
    assert sorted(listed(stack, acme, vip)) == ["u1", "u3"]
    # changed_within reads the change index: a need of its own, backfilled too
    changed = {"attribute": "custom.plan", "op": "changed_within", "value": "7d"}
    recent = create(stack, acme, changed, settle=False)
    assert count(stack, acme, recent)["plan"]["path"] == "scan"
    stack.cloud.settle()
    assert count(stack, acme, recent)["plan"]["index"] == "custom.plan (change time)"
    assert count(stack, acme, recent)["count"] == 5


def test_a_need_dropped_and_added_again_is_rebuilt_from_the_profiles(stack: Stack) -> None:
    acme = stack.account()
    rule = {"attribute": "custom.plan", "op": "equals", "value": "VIP"}
    vip = create(stack, acme, rule)
    stack.cloud.settle()
    session(stack, acme, "u", plan="VIP")
    assert listed(stack, acme, vip) == ["u"]
    deleted = stack.cloud.http("DELETE", f"/v1/segments/{vip}", headers=stack.auth(acme))
    assert deleted.status == 204
    # no segment reads the index now: the entry is left as it was
    stack.advance(DAY)
    session(stack, acme, "u", plan="free")
    again = create(stack, acme, rule, settle=False)
    first = count(stack, acme, again)
    assert first["count"] == 0 and first["plan"]["path"] == "scan"
    stack.cloud.settle()
    # the stale VIP entry is gone, or the index would still count the user
    found = count(stack, acme, again)
    assert found["count"] == 0 and found["plan"]["path"] == "index"


def test_entries_wait_for_the_first_closed_session(stack: Stack) -> None:
    acme = stack.account()
    create(stack, acme, {"attribute": "custom.plan", "op": "is_set"})
    stack.cloud.settle()
    assert stack.send(acme, [{"uuid": "u", "user_properties": {"plan": "VIP"}}]).status == 200
    stack.cloud.settle()
    assert entries_of(stack, acme, "u") == set()
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()
    assert "idx#custom.plan" in entries_of(stack, acme, "u")


def test_erased_users_lose_their_entries_and_memberships(stack: Stack) -> None:
    acme = stack.account()
    session(stack, acme, "gone", plan="VIP")
    session(stack, acme, "stays", plan="VIP")
    vip = create(stack, acme, {"attribute": "custom.plan", "op": "equals", "value": "VIP"})
    stack.cloud.settle()
    assert sorted(listed(stack, acme, vip)) == ["gone", "stays"]
    # an entry of an index no segment needs any more goes with the user too
    stale = create(stack, acme, {"attribute": "custom.role", "op": "is_set"})
    session(stack, acme, "gone", role="admin")
    stack.cloud.settle()
    stack.cloud.http("DELETE", f"/v1/segments/{stale}", headers=stack.auth(acme))
    assert "idx#custom.role" in entries_of(stack, acme, "gone")
    assert stack.cloud.http("DELETE", "/v1/users/gone", headers=stack.auth(acme)).status == 204
    stack.cloud.settle()
    assert entries_of(stack, acme, "gone") == set()
    assert listed(stack, acme, vip) == ["stays"]
    assert segments_of(stack, acme, "gone") == set()
    assert count(stack, acme, vip)["plan"]["index_items_read"] == 1


def test_expired_users_leave_segments_at_once_and_their_entries_with_ttl(stack: Stack) -> None:
    acme = stack.account()
    session(stack, acme, "u", plan="VIP")
    vip = create(stack, acme, {"attribute": "custom.plan", "op": "equals", "value": "VIP"})
    everyone = create(stack, acme, {"not": {"attribute": "country", "op": "equals", "value": "?"}})
    stack.cloud.settle()
    assert segments_of(stack, acme, "u") == {vip, everyone}
    stack.advance(181 * DAY)
    # logically gone before TTL has removed anything
    assert entries_of(stack, acme, "u")
    assert segments_of(stack, acme, "u") == set()
    assert listed(stack, acme, vip) == [] and listed(stack, acme, everyone) == []
    # physically gone after TTL and the retention cascade
    stack.ttl()
    assert entries_of(stack, acme, "u") == set()
    # a returning user starts a fresh record, indexed again
    session(stack, acme, "u", plan="VIP")
    assert listed(stack, acme, vip) == ["u"]


def visible_users(stack: Stack, account: Any, uuids: list[str], **props: Any) -> None:
    for uuid in uuids:
        assert stack.send(account, [{"uuid": uuid, "user_properties": props}]).status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()


def queued_backfills(stack: Stack) -> list[dict[str, Any]]:
    """Take the backfill's first slices off its queue, to run them one by one."""
    url = stack.cloud.deployment.queues["SegmentBackfillQueue"]
    found = []
    while page := stack.cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        for message in page:
            found.append(json.loads(message["Body"]))
            stack.cloud.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def run_chain(message: dict[str, Any] | None) -> int:
    """Every slice of one chain, each stopping after one page; returns the slices."""
    from insights.services.segments import index

    slices = 0
    while message is not None:
        chain = message.get("chain", 0)
        message = index.backfill(message, lambda: False)
        slices += 1
        if message is not None:  # the next slice stays on the chain's shards
            assert message.get("chain", 0) == chain
            assert message["position"][0] % message.get("chains", 1) == chain
    return slices


def test_a_backfill_runs_one_chain_per_shard_and_is_ready_when_the_last_ends(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from insights.domain.segments.indexing import shard_of
    from insights.services.segments import index

    acme = stack.account()
    account_id = acme.account.account_id
    uuids = [f"u{n}" for n in range(12)]
    visible_users(stack, acme, uuids, plan="VIP")
    shard = {uuid: shard_of(f"{account_id}#{uuid}") for uuid in uuids}
    rule = {"attribute": "custom.plan", "op": "equals", "value": "VIP"}
    vip = create(stack, acme, rule, settle=False)
    chains = queued_backfills(stack)
    assert sorted(m["chain"] for m in chains) == list(range(index.BACKFILL_CHAINS))
    assert {m["chains"] for m in chains} == {index.BACKFILL_CHAINS}
    users_of = {m["chain"]: {u for u in uuids if shard[u] == m["chain"]} for m in chains}
    # The chain with the most users ends last; the first one runs twice (a retried slice).
    chains.sort(key=lambda m: len(users_of[m["chain"]]))
    monkeypatch.setattr(index, "BACKFILL_PAGE", 1)  # a slice per user
    walked: set[str] = set()
    for message in [chains[0], *chains]:
        assert "custom.plan" not in index.ready_for(account_id)
        assert run_chain(message) >= len(users_of[message["chain"]])
        walked |= users_of[message["chain"]]
        # A chain writes the entries of its own shard's users, and no others.
        assert {u for u in uuids if entries_of(stack, acme, u)} == walked
    assert walked == set(uuids)
    assert "custom.plan" in index.ready_for(account_id)
    found = count(stack, acme, vip)
    assert found["count"] == len(uuids) and found["plan"]["index"] == "custom.plan (value)"


def test_a_backfill_queued_before_chains_walks_every_shard_alone(stack: Stack) -> None:
    from insights.services.segments import index

    acme = stack.account()
    account_id = acme.account.account_id
    uuids = [f"u{n}" for n in range(12)]
    visible_users(stack, acme, uuids, plan="VIP")
    create(stack, acme, {"attribute": "custom.plan", "op": "is_set"}, settle=False)
    (since,) = {m["since"] for m in queued_backfills(stack)}
    run_chain({"account_id": account_id, "since": since})
    assert all(entries_of(stack, acme, u) == {"idx#custom.plan"} for u in uuids)
    assert "custom.plan" in index.ready_for(account_id)
    with pytest.raises(ValueError, match="chain 8 is not one of 8 chains"):
        index.backfill({"account_id": account_id, "since": since, "chain": 8, "chains": 8}, bool)
