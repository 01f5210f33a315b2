"""LocalCloud's stream delivery survives cancelled transactions, as DynamoDB Streams do.

moto rolls a cancelled TransactWriteItems back by putting deep copies of the
touched tables in place, which left LocalCloud's shard iterators reading a
stream nothing writes to any more: every TTL close, index update and
retention cascade after the first conflicting close was silently lost.
"""

from __future__ import annotations

import pytest

from insights import clock
from insights.domain.core.profile import Profile
from insights.services.core.closing import close_due
from insights.storage.core import store
from insights.storage.core.records import user_pk
from tests.conftest import MINUTE, Stack
from tests.segments.segments_helpers import create, listed

DAY = 86_400


def conflicting_close(stack: Stack, account) -> None:
    """A close that splits a window (profile put + window put, one transaction) from a
    stale copy loses to an event that changed the window: the transaction is
    cancelled on the window's version condition."""
    stack.cloud.settle()  # the consumers are reading the streams, as the server's loop does
    assert stack.send(account, [{"uuid": "racer"}]).status == 200
    stack.advance(29 * MINUTE)
    pk = user_pk(account.account_id, "racer")
    stale = store.get_session(pk, consistent=True)
    assert stale is not None
    assert stack.send(account, [{"uuid": "racer"}]).status == 200
    cancelled = stack.cloud.transactions_cancelled
    profile = Profile(account_id=account.account_id, uuid="racer", created_at=clock.now_ms())
    with pytest.raises(store.Conflict):
        store.commit(
            [
                store.PutProfile(profile, None),
                store.PutSession(pk, stale.window, stale.timeout_ms, stale.version),
            ]
        )
    assert stack.cloud.transactions_cancelled > cancelled


def test_streams_keep_delivering_after_a_cancelled_transaction(stack: Stack) -> None:
    acme = stack.account()
    vip = create(stack, acme, {"attribute": "custom.plan", "op": "equals", "value": "VIP"})
    conflicting_close(stack, acme)

    # TTL close: the session expiry function gets the TTL REMOVE record.
    assert stack.send(acme, [{"uuid": "u", "user_properties": {"plan": "VIP"}}]).status == 200
    stack.advance(31 * MINUTE)
    assert stack.ttl() >= 1
    assert stack.standard(acme, "u")["total_sessions"] == 1

    # Segment index: the profile's entries arrived through the UsersTable stream.
    assert listed(stack, acme, vip) == ["u"]

    # Retention cascade: the expired profile's other items go with it.
    stack.advance(181 * DAY)
    stack.ttl()
    pk = f"{acme.account_id}#u"
    assert [i for i in stack.cloud.items("UsersTable") if i["pk"] == pk] == []


def test_a_cancelled_transaction_leaves_no_stream_records(stack: Stack) -> None:
    acme = stack.account()
    conflicting_close(stack, acme)
    stack.cloud.settle()
    before = stack.cloud.invocations.get("SegmentIndexFunction", 0)
    # Nothing the cancelled transaction tried to write reaches a consumer.
    assert close_due([], clock.now_ms()) == 0
    stack.cloud.settle()
    assert stack.cloud.invocations.get("SegmentIndexFunction", 0) == before
    assert stack.user(acme, "racer").status == 404  # the session is still open


def test_a_replaced_stream_shard_is_reopened_where_reading_stopped(stack: Stack) -> None:
    """Belt and braces: if moto ever swaps a table's objects again, the consumer
    re-opens the new shard after the last record it read: nothing lost or repeated."""
    import copy

    from insights.local import motopatch

    acme = stack.account()
    assert stack.send(acme, [{"uuid": "u"}]).status == 200
    stack.cloud.settle()
    backend = motopatch.backend()
    backend.tables["SessionsTable"] = copy.deepcopy(backend.tables["SessionsTable"])
    stack.advance(31 * MINUTE)
    before = stack.cloud.invocations.get("SessionCloseFunction", 0)
    assert stack.ttl() == 1
    assert stack.cloud.invocations.get("SessionCloseFunction", 0) == before + 1
    assert stack.standard(acme, "u")["total_sessions"] == 1


def test_read_stream_records_are_trimmed(stack: Stack) -> None:
    from insights.local import motopatch

    stack.cloud.trim_streams = True  # as `insights serve` runs it
    acme = stack.account()
    for n in range(5):
        assert stack.send(acme, [{"uuid": f"u{n}"}]).status == 200
    stack.cloud.settle()
    shard = motopatch.backend().tables["SessionsTable"].stream_shard
    assert shard.items == []  # every consumer has read them
    assert stack.send(acme, [{"uuid": "u9"}]).status == 200
    stack.advance(31 * MINUTE)
    assert stack.ttl() == 6  # new records still flow after the trim
    assert stack.standard(acme, "u9")["total_sessions"] == 1
