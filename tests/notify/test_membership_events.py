"""Membership events end to end: a scripted history on the local stack, read by a consumer
of a real queue (the template's MembershipEventsQueue, a target of the bus's rule on moto)."""

from __future__ import annotations

import json
from typing import Any

from insights import clock
from insights.domain.core.timefmt import DAY_MS, format_time, parse_time
from tests.conftest import MINUTE, T0_MS, Stack

DAY = 24 * 3600

ACTIVE = {"attribute": "last_seen", "op": "within_last", "value": "7d"}
VIP = {"attribute": "custom.plan", "op": "equals", "value": "VIP"}


def notify_segment(stack: Stack, account: Any, name: str, rules: Any, notify: bool = True) -> str:
    body = {"name": name, "rules": rules, "notify": notify}
    response = stack.cloud.http("POST", "/v1/segments", headers=stack.auth(account), body=body)
    assert response.status == 201, response.body
    assert response.json()["notify"] is notify
    stack.cloud.settle()
    return response.json()["id"]


def visit(stack: Stack, account: Any, uuid: str) -> int:
    """One interactive event now, then the session's close by the sweeper; the event's time."""
    at = clock.now_ms()
    response = stack.send(account, [{"uuid": uuid, "type": "click", "timestamp": format_time(at)}])
    assert response.status == 200, response.body
    stack.advance(31 * MINUTE)
    stack.sweep()
    return at


def drop_import(stack: Stack, account: Any, data: bytes) -> None:
    bucket = stack.cloud.deployment.buckets["ImportsBucket"]
    key = f"imports/{account.account.account_id}/plans-{clock.now_ms()}.csv"
    stack.cloud.s3.put_object(Bucket=bucket, Key=key, Body=data)
    stack.cloud.settle()


class Consumer:
    """Reads the queue as a customer's worker would: deletes what it read, drops seen ids."""

    def __init__(self, stack: Stack) -> None:
        self.sqs = stack.cloud.sqs
        self.url = stack.cloud.deployment.queues["MembershipEventsQueue"]
        self.seen: set[str] = set()
        self.received = 0

    def read(self) -> list[dict[str, Any]]:
        fresh = []
        while True:
            page = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            messages = page.get("Messages", [])
            if not messages:
                return fresh
            for message in messages:
                event = json.loads(message["Body"])
                assert event["source"] == "insights"
                assert event["detail-type"] == "Segment Membership Changed"
                self.received += 1
                detail = event["detail"]
                if detail["event_id"] not in self.seen:
                    self.seen.add(detail["event_id"])
                    fresh.append(detail)
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


def changes(
    details: list[dict[str, Any]], names: dict[str, str]
) -> list[tuple[str, str, str, int]]:
    return sorted(
        (d["uuid"], names[d["segment_id"]], d["change"], parse_time(d["time"])) for d in details
    )


def test_a_scripted_history_reaches_a_queue_consumer_exactly(stack: Stack) -> None:
    now = clock.now_ms
    acme = stack.account()
    active = notify_segment(stack, acme, "Active this week", ACTIVE)
    vip = notify_segment(stack, acme, "VIP", VIP)
    notify_segment(
        stack,
        acme,
        "Not announced",
        {"attribute": "total_sessions", "op": "gte", "value": 1},
        notify=False,
    )
    names = {active: "active", vip: "vip"}
    consumer = Consumer(stack)
    delivered: list[dict[str, Any]] = []
    invoke = stack.cloud.invoke

    def recording(function: str, event: dict[str, Any]) -> Any:
        if function in ("SegmentIndexFunction", "NotifyFunction"):
            delivered.append({"function": function, "event": json.loads(json.dumps(event))})
        return invoke(function, event)

    stack.cloud.invoke = recording  # type: ignore[method-assign]

    # 1. Session closes: u1 and u2 become active (they enter when the close is written).
    u1_seen = visit(stack, acme, "u1")
    u1_closed = now()
    u2_seen = visit(stack, acme, "u2")
    u2_closed = now()
    got = changes(consumer.read(), names)
    assert [(u, s, c) for u, s, c, _ in got] == [
        ("u1", "active", "entered"),
        ("u2", "active", "entered"),
    ]
    # Entered at the close's write, between the sweep's start and its stream delivery.
    assert u1_seen + 31 * MINUTE * 1000 <= got[0][3] <= u1_closed
    assert u2_seen + 31 * MINUTE * 1000 <= got[1][3] <= u2_closed

    # 2. An import: u1 becomes VIP, u3 (no session yet, hidden) does not enter anything.
    stack.advance(DAY)
    drop_import(stack, acme, b"uuid,plan\nu1,VIP\nu2,free\nu3,VIP\n")
    imported = changes(consumer.read(), names)
    assert [(u, s, c) for u, s, c, _ in imported] == [("u1", "vip", "entered")]

    # 3. Erasure: u2 leaves what it was in, at once.
    erased_at = now()
    response = stack.cloud.http("DELETE", "/v1/users/u2", headers=stack.auth(acme))
    assert response.status in (200, 204), response.body
    stack.cloud.settle()
    erased = changes(consumer.read(), names)
    assert [(u, s, c) for u, s, c, _ in erased] == [("u2", "active", "exited")]
    # The removal's own time (the stream's, to the second), never before the last write.
    assert erased_at - 1000 <= erased[0][3] <= now() + 1

    # 4. Seven days pass with no write: u1 leaves "active" exactly 7 days after its
    # last event, found by its timer; VIP stays.
    stack.advance(7 * DAY)
    stack.cloud.run_schedules(["NotifyFunction"])
    stack.cloud.settle()
    timed = changes(consumer.read(), names)
    assert timed == [("u1", "active", "exited", u1_seen + 7 * DAY_MS + 1)]

    # Nothing else is pending: another timer run, a sweep, more time send nothing.
    stack.advance(DAY)
    stack.cloud.run_schedules(["NotifyFunction"])
    stack.sweep()
    assert consumer.read() == []
    first_pass = set(consumer.seen)
    received = consumer.received

    # Redelivery: every stream batch and timer run delivered again (at least once, as
    # Lambda and the scheduler may). The queue gets copies; their ids are the ones seen.
    for call in delivered:
        invoke(call["function"], call["event"])
    stack.cloud.settle()
    assert consumer.read() == []
    assert consumer.seen == first_pass
    assert consumer.received > received  # the copies did arrive, and were dropped by id


def test_an_account_without_notify_segments_sends_nothing_and_keeps_no_timer(
    stack: Stack,
) -> None:
    acme = stack.account()
    response = stack.cloud.http(
        "POST",
        "/v1/segments",
        headers=stack.auth(acme),
        body={"name": "Active", "rules": ACTIVE},
    )
    assert response.status == 201 and response.json()["notify"] is False
    stack.send(acme, [{"uuid": "u1", "type": "click"}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.advance(8 * DAY)
    stack.cloud.run_schedules(["NotifyFunction"])
    stack.cloud.settle()
    assert Consumer(stack).read() == []
    assert stack.cloud.items("NotifyTimersTable") == []


def test_marking_a_segment_notify_arms_the_users_written_before(stack: Stack) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "u1", "type": "click", "timestamp": format_time(T0_MS)}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    created = stack.cloud.http(
        "POST", "/v1/segments", headers=stack.auth(acme), body={"name": "A", "rules": ACTIVE}
    ).json()
    body = {"name": "A", "rules": ACTIVE, "notify": True}
    replaced = stack.cloud.http(
        "PUT", f"/v1/segments/{created['id']}", headers=stack.auth(acme), body=body
    )
    assert replaced.status == 200 and replaced.json()["notify"] is True
    stack.cloud.settle()  # the re-arm message: u1's timer is set
    assert [i["pk"] for i in stack.cloud.items("NotifyTimersTable")] == [
        f"{acme.account.account_id}#u1"
    ]
    stack.advance(7 * DAY)
    stack.cloud.run_schedules(["NotifyFunction"])
    stack.cloud.settle()
    got = Consumer(stack).read()
    assert [(d["uuid"], d["change"], parse_time(d["time"])) for d in got] == [
        ("u1", "exited", T0_MS + 7 * DAY_MS + 1)
    ]
    assert stack.cloud.items("NotifyTimersTable") == []  # nothing more to wait for
