"""The local stack's snapshot: everything comes back, and nothing runs twice."""

from __future__ import annotations

import json
from pathlib import Path

from insights import clock
from insights.local import motopatch, snapshot
from tests.conftest import MINUTE, Stack


def wipe(stack: Stack) -> None:
    """What a new process starts with: the template's resources, empty."""
    cloud = stack.cloud
    for table in cloud.deployment.tables.values():
        motopatch.backend().tables[table].items.clear()
    bucket = cloud.deployment.buckets["ImportsBucket"]
    for obj in cloud.s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        cloud.s3.delete_object(Bucket=bucket, Key=obj["Key"])
    for url in cloud.deployment.queues.values():
        cloud.sqs.purge_queue(QueueUrl=url)


def test_tables_files_queued_work_and_clock_come_back_without_rerunning(
    stack: Stack, tmp_path: Path
) -> None:
    cloud = stack.cloud
    acme = stack.account()
    assert stack.send(acme, [{"uuid": "u", "user_properties": {"plan": "VIP"}}]).status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()
    key = f"imports/{acme.account.account_id}/crm.csv"
    bucket = cloud.deployment.buckets["ImportsBucket"]
    cloud.s3.put_object(Bucket=bucket, Key=key, Body=b"uuid,seats\nu,12\n")
    cloud.settle()
    queue = cloud.deployment.queues["ImportsQueue"]
    cloud.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"waiting": True}))
    user = stack.user(acme, "u").json()
    assert user["custom"]["seats"]["value"] == "12"
    offset = clock.offset_ms()
    saved = snapshot.save(cloud, tmp_path, {"account": {"account_id": acme.account.account_id}})
    assert (saved / "dynamodb" / "UsersTable.jsonl").exists()
    assert (saved / "s3" / "ImportsBucket" / key).read_bytes() == b"uuid,seats\nu,12\n"

    wipe(stack)
    assert stack.user(acme, "u").status == 404  # the tables are empty
    invocations = dict(cloud.invocations)
    meta = snapshot.restore(cloud, tmp_path)
    assert meta is not None and meta["account"]["account_id"] == acme.account.account_id
    assert meta["clock_offset_ms"] == offset
    assert stack.user(acme, "u").json() == user  # same keys, same user
    body = cloud.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == b"uuid,seats\nu,12\n"
    waiting = cloud.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in waiting] == [{"waiting": True}]
    cloud.sqs.delete_message(QueueUrl=queue, ReceiptHandle=waiting[0]["ReceiptHandle"])
    cloud.settle()
    # The restored file is not imported again, and no restored item streams again.
    for function in ("ImportFunction", "SegmentIndexFunction", "SessionCloseFunction"):
        assert cloud.invocations.get(function, 0) == invocations.get(function, 0), function
    # The stack goes on working on the restored data.
    assert stack.send(acme, [{"uuid": "u"}]).status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()
    assert stack.standard(acme, "u")["total_sessions"] == 2


def test_no_snapshot_means_an_empty_start(stack: Stack, tmp_path: Path) -> None:
    assert snapshot.restore(stack.cloud, tmp_path) is None
    assert snapshot.load_meta(tmp_path) is None
