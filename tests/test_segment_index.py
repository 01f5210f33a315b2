"""Index entries follow profiles through the stream: written on change only, gone with the user."""

from __future__ import annotations

from typing import Any

from tests.conftest import Stack
from tests.segments_helpers import count, create, listed, segments_of

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
    assert stack.send(account, [{"uuid": uuid, "properties": props}]).status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()


def test_entries_are_written_only_when_an_indexed_value_changes(stack: Stack) -> None:
    acme = stack.account()
    session(stack, acme, "u", plan="VIP", role="admin")
    assert entries_of(stack, acme, "u") == {
        "idx#country",
        "idx#region",
        "idx#city",
        "idx#browser_name",
        "idx#custom.plan",
        "idx#custom.role",
    }
    writes = entry_writes(stack)
    assert len(writes) == 6
    # another session with the same values: the profile changes, no entry does
    stack.advance(DAY)
    session(stack, acme, "u", plan="VIP", role="admin")
    assert stack.standard(acme, "u")["total_sessions"] == 2
    assert entry_writes(stack) == writes
    # a new plan: exactly that entry is rewritten
    stack.advance(DAY)
    session(stack, acme, "u", plan="free")
    assert entry_writes(stack) == [*writes, "MODIFY idx#custom.plan"]


def test_entries_wait_for_the_first_closed_session(stack: Stack) -> None:
    acme = stack.account()
    assert stack.send(acme, [{"uuid": "u", "properties": {"plan": "VIP"}}]).status == 200
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
    assert sorted(listed(stack, acme, vip)) == ["gone", "stays"]
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
