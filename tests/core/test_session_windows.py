"""Sessions do not depend on batching, arrival order or retries (issues 10 and 12.4).

Through the real track handler on the local stack: the same events give the
same attributes whatever the request sizes, the order requests arrive in
while the user's window is open, and however late or often a request is
retried.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from insights import clock
from insights.domain.core.timefmt import DAY_MS, MINUTE_MS, SECOND_MS
from tests.conftest import MINUTE, Stack, iso


def now_iso() -> str:
    return iso(clock.now_ms())


def close_everything(stack: Stack, timeout_minutes: int = 30) -> None:
    stack.advance((timeout_minutes + 2) * MINUTE)
    stack.sweep()


def attributes(stack: Stack, account: Any, uuid: str) -> dict[str, Any]:
    response = stack.user(account, uuid)
    assert response.status == 200, response.body
    body = response.json()
    return {"standard": body["standard"], "custom": body["custom"]}


# ----------------------------------------------------------- offline flush
def offline_queue(uuid: str) -> list[dict[str, Any]]:
    """40 events 19 minutes apart from three days ago: one 12.35-hour visit."""
    start = clock.now_ms() - 3 * DAY_MS
    return [
        {
            "uuid": uuid,
            "type": "screen",
            "timestamp": iso(start + n * 19 * MINUTE_MS),
            "user_properties": {"status": f"step-{n}"},
        }
        for n in range(40)
    ]


@pytest.mark.parametrize("batch", [1, 10, 40])
def test_an_offline_flush_gives_the_same_sessions_at_any_batch_size(
    stack: Stack, batch: int
) -> None:
    acme = stack.account()
    queue = offline_queue("phone")
    start = clock.now_ms() - 3 * DAY_MS
    for n in range(0, len(queue), batch):
        response = stack.send(acme, queue[n : n + batch], sent_at=now_iso())
        assert response.status == 200 and response.json()["late"] == 0
        stack.advance(0.005)  # a few milliseconds apart
    close_everything(stack)
    std = stack.standard(acme, "phone")
    # Split by the 12-hour cap: events 0-37 (703 min) and 38-39 (19 min).
    assert std["total_sessions"] == 2
    assert std["first_seen"] == iso(start)
    assert std["last_seen"] == iso(start + 39 * 19 * MINUTE_MS)
    assert std["total_session_duration"] == (703 + 19) * 60
    assert std["avg_time_between_sessions"] == 19 * 60
    assert stack.user(acme, "phone").json()["custom"]["status"]["value"] == "step-39"
    assert stack.cloud.items("SessionsTable") == []


def test_an_offline_flush_is_the_same_in_every_batch_size_on_one_stack(stack: Stack) -> None:
    acme = stack.account()
    for batch in (1, 10, 40):
        queue = offline_queue(f"phone-{batch}")
        for n in range(0, len(queue), batch):
            assert stack.send(acme, queue[n : n + batch], sent_at=now_iso()).status == 200
    close_everything(stack)
    found = [attributes(stack, acme, f"phone-{batch}") for batch in (1, 10, 40)]
    assert found[0] == found[1] == found[2]


# ------------------------------------------------------------ arrival order
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_three_events_around_the_timeout_in_any_arrival_order(
    stack: Stack, order: tuple[int, ...]
) -> None:
    acme = stack.account()
    t0 = clock.now_ms() - 2 * 60 * MINUTE_MS
    times = [t0, t0 + 29 * MINUTE_MS + 59 * SECOND_MS, t0 + 30 * MINUTE_MS + 1 * SECOND_MS]
    for n in order:
        response = stack.send(acme, [{"uuid": "u", "timestamp": iso(times[n])}])
        assert response.json() == {"accepted": 1, "late": 0, "rejected": []}
        stack.advance(2)
    close_everything(stack)
    std = stack.standard(acme, "u")
    assert (std["total_sessions"], std["total_session_duration"]) == (1, 1801.0)
    assert (std["first_seen"], std["last_seen"]) == (iso(times[0]), iso(times[2]))


def test_an_event_arriving_after_its_window_closed_is_late(stack: Stack) -> None:
    """The reordering a window cannot absorb: the bridge comes after the window closed."""
    acme = stack.account()
    t0 = clock.now_ms() - 2 * 60 * MINUTE_MS
    stack.send(acme, [{"uuid": "u", "timestamp": iso(t0)}])
    stack.send(acme, [{"uuid": "u", "timestamp": iso(t0 + 61 * MINUTE_MS)}])
    close_everything(stack)
    response = stack.send(acme, [{"uuid": "u", "timestamp": iso(t0 + 30 * MINUTE_MS)}])
    assert response.json()["late"] == 1
    close_everything(stack)
    assert stack.standard(acme, "u")["total_sessions"] == 2


def test_a_window_kept_open_by_new_arrivals_absorbs_a_bridge_much_later(stack: Stack) -> None:
    acme = stack.account()
    t0 = clock.now_ms() - 5 * 60 * MINUTE_MS
    stack.send(acme, [{"uuid": "u", "timestamp": iso(t0)}])
    stack.advance(20 * MINUTE)
    stack.send(acme, [{"uuid": "u", "timestamp": iso(t0 + 59 * MINUTE_MS)}])
    stack.advance(20 * MINUTE)  # the first run has been quiet for 40 minutes
    stack.sweep()
    stack.send(acme, [{"uuid": "u", "timestamp": iso(t0 + 29 * MINUTE_MS + 30 * SECOND_MS)}])
    close_everything(stack)
    std = stack.standard(acme, "u")
    assert (std["total_sessions"], std["total_session_duration"]) == (1, 59 * 60.0)


# ------------------------------------------------------------------ retries
def test_a_retry_after_its_session_closed_is_late_and_changes_no_metric(stack: Stack) -> None:
    acme = stack.account()
    t0 = clock.now_ms() - 3 * 60 * MINUTE_MS
    first = [
        {"uuid": "u", "timestamp": iso(t0), "user_properties": {"role": "admin", "plan": "free"}},
        {"uuid": "u", "timestamp": iso(t0 + 10 * MINUTE_MS)},
    ]
    later = iso(t0 + 90 * MINUTE_MS)
    second = [{"uuid": "u", "timestamp": later, "user_properties": {"role": "viewer"}}]
    stack.send(acme, first)
    stack.send(acme, second)
    close_everything(stack)
    before = attributes(stack, acme, "u")
    assert before["standard"]["total_sessions"] == 2
    # The client never saw the answer to `first` and sends it again, long after.
    stack.advance(3 * 60 * MINUTE)
    response = stack.send(acme, first, sent_at=now_iso())
    assert response.json() == {"accepted": 2, "late": 2, "rejected": []}
    close_everything(stack)
    assert attributes(stack, acme, "u") == before
    assert before["custom"]["role"]["value"] == "viewer"  # the retry's older role loses
    # A late event still competes by event time: newer than the stored plan, it wins.
    late = [{"uuid": "u", "timestamp": iso(t0 + 5 * MINUTE_MS), "user_properties": {"plan": "vip"}}]
    assert stack.send(acme, late).json()["late"] == 1
    close_everything(stack)
    after = attributes(stack, acme, "u")
    assert after["standard"] == before["standard"]
    assert after["custom"]["plan"]["value"] == "vip"
    assert after["custom"]["role"]["value"] == "viewer"


def retried_body(t_sent: int) -> dict[str, Any]:
    """One minute of events, stamped by a device whose clock is 5 minutes slow."""
    skew = -5 * MINUTE_MS
    return {
        "sent_at": iso(t_sent + skew),
        "events": [
            {"uuid": "u", "timestamp": iso(t_sent + skew - 60 * SECOND_MS)},
            {"uuid": "u", "timestamp": iso(t_sent + skew), "user_properties": {"role": "admin"}},
        ],
    }


@pytest.mark.parametrize("delay_s", [600, 1900])
@pytest.mark.parametrize("close_first", [False, True])
def test_a_retry_with_the_same_sent_at_changes_nothing_whatever_its_delay(
    stack: Stack, delay_s: int, close_first: bool
) -> None:
    acme = stack.account()
    body = retried_body(clock.now_ms())
    assert stack.send(acme, body["events"], sent_at=body["sent_at"]).json()["late"] == 0
    stack.advance(delay_s)
    if close_first:
        stack.sweep()  # after 1,900 s the window has closed: the profile remembers sent_at
    response = stack.send(acme, body["events"], sent_at=body["sent_at"])
    assert response.json()["late"] == (2 if delay_s > 1800 else 0)
    close_everything(stack)
    std = stack.standard(acme, "u")
    assert (std["total_sessions"], std["total_session_duration"]) == (1, 60.0)


def test_a_retry_with_a_fresh_sent_at_after_the_window_is_late(stack: Stack) -> None:
    """What the README asks of clients: sent_at is the time of each attempt."""
    acme = stack.account()
    body = retried_body(clock.now_ms())
    stack.send(acme, body["events"], sent_at=body["sent_at"])
    stack.advance(1900)
    fresh = retried_body(clock.now_ms())["sent_at"]
    assert stack.send(acme, body["events"], sent_at=fresh).json()["late"] == 2
    close_everything(stack)
    std = stack.standard(acme, "u")
    assert (std["total_sessions"], std["total_session_duration"]) == (1, 60.0)


def test_a_retry_inside_a_long_open_window_reuses_its_offset(stack: Stack) -> None:
    acme = stack.account()
    sent = clock.now_ms()
    body = retried_body(sent)
    stack.send(acme, body["events"], sent_at=body["sent_at"])
    for _ in range(8):  # the user stays active for two hours (no sent_at in these)
        stack.advance(15 * MINUTE)
        stack.send(acme, [{"uuid": "u", "type": "click"}])
    stack.advance(10 * MINUTE)  # shifted by its delay, the retry would end the session later
    response = stack.send(acme, body["events"], sent_at=body["sent_at"])
    assert response.json()["late"] == 0
    close_everything(stack)
    std = stack.standard(acme, "u")
    # Corrected for the slow clock the first time, and the same on the retry.
    assert std["total_sessions"] == 1 and std["first_seen"] == iso(sent - 60 * SECOND_MS)
    assert std["total_session_duration"] == 2 * 3600 + 60
