"""Imports at speed: writes side by side give what one at a time gave, paced and backing off."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import GetError, PutError

from insights.domain.core import limits
from insights.domain.core.attributes import Row
from insights.domain.core.sessions import Stamped
from insights.domain.imports import pace
from insights.domain.segments.indexing import SHARDS
from insights.services.core import attributes as attribute_path
from insights.services.imports import slices as import_service
from insights.storage.core import store
from insights.storage.imports import objects
from tests.conftest import Stack
from tests.imports.test_imports import drop, report, stored

STAMP = "2026-01-01T00:00:00Z"


# ------------------------------------------------------------------ the cap
def test_the_rate_cap_keeps_every_key_an_import_feeds_under_its_share() -> None:
    cap = pace.rows_per_second_cap()
    assert cap == pace.IMPORT_KEY_SHARE * pace.KEY_WCU * SHARDS / pace.WRITES_PER_ROW_PER_KEY
    # A shard's key sees 1/SHARDS of the rows, 2 writes each at the worst.
    assert cap / SHARDS * pace.WRITES_PER_ROW_PER_KEY == pytest.approx(750)
    # 10M rows that all change their user fit in the hour issue 27 asks for.
    assert 10_000_000 / cap < 3600
    assert pace.rows_per_second_cap(64) == 8 * pace.rows_per_second_cap(8)
    with pytest.raises(ValueError):
        pace.rows_per_second_cap(8, share=1.5)


def test_the_pause_is_what_brings_the_average_down_to_the_rate() -> None:
    assert pace.pause_seconds(300, 0.5, 200.0) == pytest.approx(1.0)
    assert pace.pause_seconds(300, 2.0, 200.0) == 0.0  # behind the rate: no wait
    assert pace.pause_seconds(300, 0.5, 200.0, burst=100) == pytest.approx(0.5)


# ------------------------------------------------------- writes side by side
def _file(n: int) -> bytes:
    """New users, bad rows, rows the stored values already hold, and a user past the caps."""
    lines = ["uuid,plan,score,extra,more,timestamp"]
    for i in range(n):
        if i % 11 == 3:
            lines.append(f",free,{i},,,{STAMP}")  # no uuid
        elif i % 5 == 0:
            lines.append(f"kept-{i % 4},free,{i % 4},,,{STAMP}")  # as the first file left them
        else:
            lines.append(f"user-{i},{'paid' if i % 3 else 'free'},{i},,,{STAMP}")
    lines += [f"capped,a,1,x,,{STAMP}", f"capped,,,,y,{STAMP}"]  # the 4th name is refused
    return ("\n".join(lines) + "\n").encode()


KEPT = b"uuid,plan,score,timestamp\n" + b"".join(
    b"kept-%d,free,%d,%s\n" % (i, i, STAMP.encode()) for i in range(4)
)


class InFlight:
    """store.commit, counting the writes in flight at once (each held a moment)."""

    def __init__(self) -> None:
        self.real = store.commit
        self.now = self.most = self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, writes: list[Any]) -> None:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.005)
            self.real(writes)
        finally:
            with self.lock:
                self.now -= 1


def _run(stack: Stack, name: str, concurrency: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    account = stack.account(name)
    drop(stack, account, "kept.csv", KEPT)
    stack.advance(1)  # the listing's newest job is the next one
    monkeypatch.setattr(import_service, "IMPORT_WRITE_CONCURRENCY", concurrency)
    counter = InFlight()
    monkeypatch.setattr(store, "commit", counter)
    job = drop(stack, account, "big.csv", _file(60))
    monkeypatch.setattr(store, "commit", counter.real)
    users = {f"user-{i}" for i in range(60)} | {f"kept-{i}" for i in range(4)} | {"capped"}
    values = {u: stored(account, u) for u in sorted(users)}
    return job, report(job), values, counter


def test_writes_side_by_side_give_what_one_at_a_time_gave(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", 3)
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "9")  # several batches, several users in each
    one_job, one_report, one_values, one = _run(stack, "One", 1, monkeypatch)
    many_job, many_report, many_values, many = _run(stack, "Many", 8, monkeypatch)
    assert one.most == 1 and many.most > 1  # the writes did overlap
    # One write per new user and one for "capped"; the kept rows wrote nothing either way.
    new_users = sum(1 for i in range(60) if i % 11 != 3 and i % 5 != 0)
    assert many.calls == one.calls == new_users + 1
    assert many_report == one_report
    assert many_values == one_values
    for key in ("status", "rows", "invocations"):
        assert many_job[key] == one_job[key], key
    bad = sum(1 for i in range(60) if i % 11 == 3)
    assert many_job["rows"] == {"total": 62, "read": 62, "imported": 61 - bad, "rejected": bad + 1}
    assert many_report[-1].startswith("63,,") and "at most 3 per user" in many_report[-1]
    assert many_values["kept-1"] == {"plan": ("free", "s3"), "score": ("1", "s3")}


# ------------------------------------------------------------------ backing off
def test_a_batch_dynamodb_keeps_throttling_waits_and_is_counted_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "4")
    monkeypatch.setattr(attribute_path, "_throttle_pause", lambda attempt, deadline=None: None)
    data = b"uuid,n\n" + b"".join(
        b"%s,%d\n" % (b"" if i == 6 else b"u%d" % i, i) for i in range(12)
    )
    baseline = drop(stack, stack.account("Calm"), "a.csv", data)

    acme = stack.account("Busy")
    real_commit, real_send = store.commit, objects.send_continuation
    throttles = {"u5": 0}
    delays: list[int] = []

    def throttled(writes: list[Any]) -> None:
        # u5 is throttled past every retry once (its batch, rows 5-8, is the second).
        if writes[0].profile.uuid == "u5" and throttles["u5"] < 2 * attribute_path.MAX_ATTEMPTS:
            throttles["u5"] += 1
            cause = ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem"
            )
            raise PutError("throttled", cause)
        real_commit(writes)

    def send(message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        delays.append(delay_seconds)
        real_send(message)  # the local queue would hold a delayed message for real seconds

    monkeypatch.setattr(store, "commit", throttled)
    monkeypatch.setattr(objects, "send_continuation", send)
    job = drop(stack, acme, "a.csv", data)
    assert throttles["u5"] == 2 * attribute_path.MAX_ATTEMPTS
    assert import_service.THROTTLED_DELAY_SECONDS in delays  # it waited rather than failed
    assert job["status"] == baseline["status"] == "partially_succeeded"
    assert (
        job["rows"] == baseline["rows"] == {"total": 12, "read": 12, "imported": 11, "rejected": 1}
    )
    assert report(job) == report(baseline) == ["row,column,reason", "8,uuid,empty uuid"]
    assert job["invocations"] == baseline["invocations"] + 1  # one slice more
    assert all(stored(acme, f"u{i}") == {"n": (str(i), "s3")} for i in range(12) if i != 6)


def test_a_throttled_re_read_after_a_conflict_backs_off_too(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that loses to another writer re-reads the user's record; DynamoDB
    throttling that read is throttling all the same: the slice waits and goes
    on, rather than failing and spending one of the message's deliveries."""
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "4")
    monkeypatch.setattr(attribute_path, "_throttle_pause", lambda attempt, deadline=None: None)
    monkeypatch.setattr(attribute_path, "backoff", lambda attempt: None)
    data = b"uuid,n\n" + b"".join(b"u%d,%d\n" % (i, i) for i in range(12))
    baseline = drop(stack, stack.account("Calm"), "a.csv", data)

    acme = stack.account("Busy")
    real_commit, real_get, real_send = store.commit, store.get_profile, objects.send_continuation
    seen = {"conflicts": 0, "throttles": 0}
    delays: list[int] = []

    def commit(writes: list[Any]) -> None:
        # u5's first write loses to a session close, so its record is read again...
        if writes[0].profile.uuid == "u5" and not seen["conflicts"]:
            seen["conflicts"] += 1
            raise store.Conflict("condition failed")
        real_commit(writes)

    def get_profile(pk: str, *, consistent: bool = True) -> Any:
        # ...and that read is throttled past every retry, once.
        throttling = seen["conflicts"] and seen["throttles"] < attribute_path.MAX_ATTEMPTS
        if pk.endswith("#u5") and throttling:
            seen["throttles"] += 1
            cause = ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "GetItem",
            )
            raise GetError("throttled", cause)
        return real_get(pk, consistent=consistent)

    def send(message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        delays.append(delay_seconds)
        real_send(message)

    monkeypatch.setattr(store, "commit", commit)
    monkeypatch.setattr(store, "get_profile", get_profile)
    monkeypatch.setattr(objects, "send_continuation", send)
    job = drop(stack, acme, "a.csv", data)
    monkeypatch.setattr(store, "get_profile", real_get)
    assert seen == {"conflicts": 1, "throttles": attribute_path.MAX_ATTEMPTS}
    assert import_service.THROTTLED_DELAY_SECONDS in delays  # it waited rather than failed
    assert job["status"] == baseline["status"] == "succeeded"
    assert job["rows"] == baseline["rows"]
    assert job["invocations"] == baseline["invocations"] + 1  # one slice more, none failed
    assert all(stored(acme, f"u{i}") == {"n": (str(i), "s3")} for i in range(12))


def test_conflicts_and_throttles_back_off_by_their_own_counts(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write throttled five times, then losing once to a session close, waits as
    a first conflict does (up to 20 ms), not as the sixth retry (up to 1.3 s)."""
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "4")
    pauses: list[tuple[str, int]] = []
    monkeypatch.setattr(
        attribute_path,
        "_throttle_pause",
        lambda attempt, deadline=None: pauses.append(("throttle", attempt)),
    )
    monkeypatch.setattr(
        attribute_path, "backoff", lambda attempt: pauses.append(("conflict", attempt))
    )
    acme = stack.account("Busy")
    real_commit = store.commit
    failures = ["throttle"] * 5 + ["conflict", "throttle"]

    def commit(writes: list[Any]) -> None:
        if writes[0].profile.uuid == "u1" and failures:
            if failures.pop(0) == "conflict":
                raise store.Conflict("condition failed")
            cause = ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem"
            )
            raise PutError("throttled", cause)
        real_commit(writes)

    monkeypatch.setattr(store, "commit", commit)
    job = drop(stack, acme, "a.csv", b"uuid,n\nu0,0\nu1,1\n")
    assert job["status"] == "succeeded"
    assert pauses == [("throttle", n) for n in range(5)] + [("conflict", 0), ("throttle", 5)]
    assert stored(acme, "u1") == {"n": ("1", "s3")}


# ------------------------------------------------------------------ pacing
class FakeTime:
    """The slice's clock: writes take no time, waits are recorded."""

    def __init__(self) -> None:
        self.t = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.t += seconds


def test_a_slice_waits_so_its_writes_keep_to_the_rate(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "10")
    monkeypatch.setattr(import_service, "IMPORT_ROWS_PER_SECOND", 50.0)
    fake = FakeTime()
    monkeypatch.setattr(import_service, "time", fake)
    acme = stack.account()
    data = b"uuid,n,timestamp\n" + b"".join(
        b"u%d,%d,%s\n" % (i, i, STAMP.encode()) for i in range(40)
    )
    job = drop(stack, acme, "a.csv", data)
    assert job["rows"]["imported"] == 40
    # 40 writes at 50 a second, the first batch of 10 allowed ahead: 0.6 s of waiting.
    assert sum(fake.waits) == pytest.approx(0.6)
    stack.advance(1)  # the listing's newest job is the next one
    again = drop(stack, acme, "a.csv", data)  # the same rows again write nothing: no wait
    assert again["rows"]["imported"] == 40 and sum(fake.waits) == pytest.approx(0.6)


def test_throttling_near_the_time_budget_backs_off_before_the_timeout(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One user's throttle retries pause ~23 s in all, more than a slice may
    have left: a pause that would pass the deadline gives up at once, so the
    slice records its checkpoint and queues the rest in time."""
    acme = stack.account()
    attempts = {"n": 0}

    def throttled(writes: list[Any]) -> None:
        attempts["n"] += 1
        cause = ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "PutItem"
        )
        raise PutError("throttled", cause)

    monkeypatch.setattr(store, "commit", throttled)
    row = Row(2, "u1", {"plan": Stamped("VIP", 1_767_225_600_000)})
    started = time.monotonic()
    with pytest.raises(attribute_path.Throttled, match="time budget"):
        attribute_path.apply_rows(
            acme.account.account_id, [row], "s3", deadline=time.monotonic() + 0.3
        )
    assert time.monotonic() - started < 1.5  # not the ~23 s of every retry's pause
    assert 1 <= attempts["n"] < 2 * attribute_path.MAX_ATTEMPTS


def test_a_slice_gives_its_writes_a_deadline_inside_its_reserve(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float] = []
    real = import_service.apply_rows

    def spy(*args: Any, deadline: float | None = None, **kwargs: Any) -> Any:
        assert deadline is not None
        seen.append(deadline - time.monotonic())
        return real(*args, deadline=deadline, **kwargs)

    monkeypatch.setattr(import_service, "apply_rows", spy)
    job = drop(stack, stack.account(), "a.csv", b"uuid,n\nu1,1\n")
    assert job["rows"]["imported"] == 1 and seen
    # ImportFunction's 300 s timeout less half the 30 s reserve, less what ran before.
    assert all(250 < left <= 285 for left in seen)
