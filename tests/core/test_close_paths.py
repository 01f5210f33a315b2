"""The three close paths, alone and racing: every session is applied exactly once."""

from __future__ import annotations

import json

import pytest

from insights import clock
from insights.services.core.closing import close_deleted, close_due
from insights.storage.core import store
from insights.storage.core.records import user_pk
from tests.conftest import MINUTE, Stack


def open_session(stack: Stack, account, uuid: str = "u1"):
    assert stack.send(account, [{"uuid": uuid, "user_properties": {"role": "admin"}}]).status == 200
    stack.advance(10 * MINUTE)
    assert stack.send(account, [{"uuid": uuid}]).status == 200
    return user_pk(account.account_id, uuid)


def assert_one_session(stack: Stack, account, uuid: str = "u1", duration: float = 600.0) -> None:
    std = stack.standard(account, uuid)
    assert std["total_sessions"] == 1
    assert std["total_session_duration"] == duration


def test_open_session_is_invisible_until_closed(stack: Stack) -> None:
    acme = stack.account()
    open_session(stack, acme)
    response = stack.user(acme, "u1")
    assert response.status == 404 and "no closed session yet" in response.json()["message"]


def test_lazy_close_by_the_next_event_after_the_gap(stack: Stack) -> None:
    acme = stack.account()
    open_session(stack, acme)
    stack.advance(31 * MINUTE)
    assert stack.send(acme, [{"uuid": "u1"}]).status == 200
    assert_one_session(stack, acme)


def test_sweeper_closes_after_the_deadline_and_not_before(stack: Stack) -> None:
    acme = stack.account()
    open_session(stack, acme)
    stack.advance(29 * MINUTE)
    assert stack.sweep()["closed"] == 0
    assert stack.user(acme, "u1").status == 404
    stack.advance(1 * MINUTE)
    assert stack.sweep()["closed"] == 1
    assert_one_session(stack, acme)
    assert stack.cloud.items("SessionsTable") == []


def test_sweeper_scans_open_sessions_in_segments_sized_from_its_last_run(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from insights.services.core import sweep

    monkeypatch.setattr(sweep, "ITEMS_PER_SEGMENT", 2)
    monkeypatch.setattr(sweep, "_last_scanned", 0)
    acme = stack.account()
    for n in range(5):
        assert stack.send(acme, [{"uuid": f"u{n}"}]).status == 200
        stack.advance(5 * MINUTE)
    # Deadlines are 30 min after each event (+30 ... +50 min): at +40 three are due.
    stack.advance(15 * MINUTE)
    first = stack.sweep()
    assert (first["segments"], first["scanned"], first["closed"]) == (1, 5, 3)
    stack.advance(10 * MINUTE)
    second = stack.sweep()  # 5 open sessions last time: 3 parallel segments of at most 2
    assert (second["segments"], second["scanned"], second["closed"]) == (3, 2, 2)
    assert stack.sweep()["segments"] == 1
    assert stack.cloud.items("SessionsTable") == []
    assert all(stack.user(acme, f"u{n}").status == 200 for n in range(5))


def test_ttl_deletion_on_the_stream_closes_the_session(stack: Stack) -> None:
    acme = stack.account()
    open_session(stack, acme)
    stack.advance(31 * MINUTE)
    assert stack.ttl() == 1
    assert stack.cloud.invocations.get("SessionCloseFunction") == 1
    assert_one_session(stack, acme)


def test_the_sweeper_closes_by_deleting_and_the_stream_consumer_applies(stack: Stack) -> None:
    acme = stack.account()
    pk = open_session(stack, acme)
    stack.advance(31 * MINUTE)
    due = store.get_sessions([pk], consistent=True)
    assert close_due(due.values(), clock.now_ms()) == 1
    assert store.get_session(pk) is None  # one conditional delete, no transaction
    assert stack.user(acme, "u1").status == 404  # applied by the stream consumer, not yet
    stack.cloud.settle()
    assert stack.cloud.invocations.get("SessionCloseFunction") == 1
    assert_one_session(stack, acme)
    stack.cloud.settle()  # a redelivered record applies nothing twice
    close_deleted(due[pk], clock.now_ms(), path="sweep")
    assert_one_session(stack, acme)


def test_an_erasures_deleted_window_is_never_applied(stack: Stack, monkeypatch) -> None:
    """The consumer gets every deletion; the erasure's is marked and skipped, even
    when the consumer reads it before the erasure has deleted the profile."""
    acme = stack.account()
    pk = open_session(stack, acme)
    stack.cloud.settle()
    real_delete_items = store.delete_user_items
    profiles_mid_erasure = []

    def consumer_first(user: str, **kw):
        stack.cloud.settle()  # the window's REMOVE is consumed before the rest of the erasure
        profiles_mid_erasure.append(store.get_profile(user, consistent=True))
        return real_delete_items(user, **kw)

    monkeypatch.setattr(store, "delete_user_items", consumer_first)
    response = stack.cloud.http("DELETE", "/v1/users/u1", headers=stack.auth(acme))
    assert response.status == 204
    assert profiles_mid_erasure == [None]
    assert stack.cloud.invocations.get("SessionCloseFunction") == 1  # it saw the deletion
    assert store.get_session(pk) is None
    assert stack.user(acme, "u1").status == 404


def test_sweeper_and_ttl_racing_apply_once(stack: Stack) -> None:
    acme = stack.account()
    pk = open_session(stack, acme)
    stack.advance(31 * MINUTE)
    seen_by_sweeper = store.get_sessions([pk], consistent=True)
    stack.ttl()  # TTL wins the race and the stream consumer applies the session
    assert close_due(seen_by_sweeper.values(), clock.now_ms()) == 0
    assert_one_session(stack, acme)


def test_ttl_record_arriving_after_the_sweeper_changes_nothing(stack: Stack) -> None:
    acme = stack.account()
    pk = open_session(stack, acme)
    stack.advance(31 * MINUTE)
    old_image = store.get_session(pk)
    assert old_image is not None
    stack.sweep()
    close_deleted(old_image, clock.now_ms())  # a late or retried TTL record
    close_deleted(old_image, clock.now_ms())
    assert_one_session(stack, acme)


def test_lazy_close_racing_the_sweeper_applies_once(stack: Stack) -> None:
    acme = stack.account()
    pk = open_session(stack, acme)
    stack.advance(31 * MINUTE)
    seen_by_sweeper = store.get_sessions([pk], consistent=True)
    assert stack.send(acme, [{"uuid": "u1"}]).status == 200  # lazy close wins
    assert close_due(seen_by_sweeper.values(), clock.now_ms()) == 0
    assert_one_session(stack, acme)
    assert len(stack.cloud.items("SessionsTable")) == 1  # the new session stays open


def test_event_extending_the_session_beats_a_slow_sweeper(stack: Stack) -> None:
    acme = stack.account()
    pk = open_session(stack, acme)
    stack.advance(29 * MINUTE)
    seen = store.get_sessions([pk], consistent=True)
    assert stack.send(acme, [{"uuid": "u1"}]).status == 200
    stack.advance(2 * MINUTE)
    # The sweeper's stale copy says "due" only by its old deadline; it must not close.
    assert close_due(seen.values(), clock.now_ms()) == 0
    assert stack.user(acme, "u1").status == 404


def test_empty_session_records_nothing(stack: Stack) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "ghost", "interactive": False, "user_properties": {"role": "x"}}])
    stack.advance(31 * MINUTE)
    assert stack.sweep()["closed"] == 1
    assert stack.user(acme, "ghost").status == 404
    assert stack.cloud.items("UsersTable") == []
    assert stack.cloud.items("SessionsTable") == []


def test_session_is_capped_at_twelve_hours(stack: Stack) -> None:
    acme = stack.account()
    for _ in range(13 * 3):  # an event every 20 minutes for 13 hours
        assert stack.send(acme, [{"uuid": "busy"}]).status == 200
        stack.advance(20 * MINUTE)
        stack.sweep()
    std = stack.standard(acme, "busy")
    assert std["total_sessions"] == 1
    assert std["total_session_duration"] < 12 * 3600
    stack.advance(31 * MINUTE)
    stack.sweep()
    assert stack.standard(acme, "busy")["total_sessions"] == 2


def test_stream_failures_are_retried_then_sent_to_the_failure_queue(
    stack: Stack, monkeypatch
) -> None:
    import insights.services.core.closing as closing

    acme = stack.account()
    open_session(stack, acme)
    stack.advance(31 * MINUTE)
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("DynamoDB is having a bad day")

    module = stack.cloud.handler("SessionCloseFunction").__module__
    import sys

    monkeypatch.setattr(sys.modules[module], "close_deleted", broken)
    stack.cloud.expire_ttl()
    for _ in range(15):
        stack.cloud.pump_streams()
    assert len(calls) == 11  # first try + MaximumRetryAttempts (10)
    queue = stack.cloud.deployment.queues["StreamFailureQueue"]
    messages = stack.cloud.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    assert len(messages["Messages"]) == 1
    assert "DDBStreamBatchInfo" in messages["Messages"][0]["Body"]
    assert closing  # the real close function is untouched for other tests


# ------------------------------------------------- windows of several runs
def open_window_of_three_runs(stack: Stack, account, uuid: str = "u1") -> str:
    """Three sessions' worth of old events in one window (an offline flush)."""
    from tests.conftest import iso

    start = clock.now_ms() - 24 * 60 * MINUTE * 1000
    events = [
        {"uuid": uuid, "timestamp": iso(start + minutes * MINUTE * 1000)}
        for minutes in (0, 10, 100, 105, 300, 329)
    ]
    assert stack.send(account, events).json()["late"] == 0
    return user_pk(account.account_id, uuid)


def assert_three_sessions(stack: Stack, account, uuid: str = "u1") -> None:
    std = stack.standard(account, uuid)
    assert std["total_sessions"] == 3
    assert std["total_session_duration"] == (10 + 5 + 29) * 60


@pytest.mark.parametrize("path", ["sweep", "ttl", "lazy"])
def test_a_window_of_several_runs_closes_whole_on_every_path(stack: Stack, path: str) -> None:
    acme = stack.account()
    open_window_of_three_runs(stack, acme)
    stack.advance(29 * MINUTE)
    assert stack.sweep()["closed"] == 0 and stack.ttl() == 0  # not due yet: old events
    stack.advance(1 * MINUTE)
    if path == "sweep":
        assert stack.sweep()["closed"] == 3
    elif path == "ttl":
        assert stack.ttl() == 1
    else:
        assert stack.send(acme, [{"uuid": "u1"}]).json()["late"] == 0
    assert_three_sessions(stack, acme)


def test_every_path_racing_on_a_window_applies_each_run_once(stack: Stack) -> None:
    acme = stack.account()
    pk = open_window_of_three_runs(stack, acme)
    stack.advance(31 * MINUTE)
    old_image = store.get_session(pk)
    assert old_image is not None
    seen_by_sweeper = store.get_sessions([pk], consistent=True)
    assert stack.send(acme, [{"uuid": "u1"}]).status == 200  # lazy close wins
    assert close_due(seen_by_sweeper.values(), clock.now_ms()) == 0
    close_deleted(old_image, clock.now_ms())  # a stale TTL record: every run already applied
    assert_three_sessions(stack, acme)


def test_the_sweeper_closes_a_run_cut_by_the_cap_and_keeps_the_rest_open(stack: Stack) -> None:
    acme = stack.account()
    pk = user_pk(acme.account_id, "busy")
    for _ in range(12 * 3 + 1):  # an event every 20 minutes, the last one at the cap
        assert stack.send(acme, [{"uuid": "busy"}]).status == 200
        stack.advance(20 * MINUTE)
    record = store.get_session(pk)
    assert record is not None and len(record.window.runs) == 2
    # The capped run has been quiet for 40 minutes; the window, for 20.
    assert stack.sweep()["closed"] == 1
    assert stack.standard(acme, "busy")["total_sessions"] == 1
    remaining = store.get_session(pk)
    assert remaining is not None and len(remaining.window.runs) == 1
    assert remaining.window.prev_end == record.window.runs[0].end


def test_a_ttl_image_of_the_shape_before_windows_still_closes(stack: Stack) -> None:
    """Items written before an upgrade are read as a window of one run."""
    from insights.storage.core.records import session_from_stream_image

    acme = stack.account()
    pk = user_pk(acme.account_id, "old")
    start = clock.now_ms() - 40 * MINUTE * 1000
    image = {
        "pk": {"S": pk},
        "start": {"N": str(start)},
        "end": {"N": str(start + 600_000)},
        "interactive": {"BOOL": True},
        "timeout_ms": {"N": "1800000"},
        "deadline": {"N": str(start + 600_000 + 1_800_000)},
        "props": {"S": json.dumps({"role": ["admin", start]})},
        "expires_at": {"N": str((start + 2_400_000) // 1000)},
        "version": {"N": "3"},
    }
    assert close_deleted(session_from_stream_image(image), clock.now_ms()) == 1
    std = stack.standard(acme, "old")
    assert (std["total_sessions"], std["total_session_duration"]) == (1, 600.0)


def test_one_function_sweeps_on_its_schedule_and_applies_its_stream(stack: Stack) -> None:
    """SessionCloseFunction takes both: the scheduler's event (no Records) runs a sweep,
    whose deletion comes back to it as a stream batch that applies the session."""
    acme = stack.account()
    open_session(stack, acme)
    stack.advance(31 * MINUTE)
    scheduled = {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "resources": [],
        "detail": {},
    }
    summary = stack.cloud.invoke("SessionCloseFunction", scheduled)
    assert summary["closed"] == 1
    assert stack.user(acme, "u1").status == 404  # deleted, not applied yet
    stack.cloud.settle()
    assert stack.cloud.invocations.get("SessionCloseFunction") == 2  # the sweep, then the batch
    assert_one_session(stack, acme)
