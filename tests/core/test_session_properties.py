"""Property: whatever the batching, in-request order and retries, attributes equal the oracle's.

Random users' event sequences (offsets near the timeout and the 12-hour cap,
empty sessions, property changes, recent or days old) go through the real
track handler on the local stack, split into requests of random sizes, each
shuffled inside; some requests are retried at once with the same body (same
sent_at, so the clock-skew memory must undo the delay), others after the
window closed with a fresh sent_at, as the README asks of clients. Then time
moves on and one of the three close paths (sweeper, TTL, lazy) closes the
windows. The oracle sorts each user's events and splits them as the spec says.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insights import clock
from insights.domain.core.accounts import AccountSettings
from insights.domain.core.timefmt import DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, format_time
from tests.conftest import Stack, iso

CAP = 12 * HOUR_MS
PATHS = ("sweep", "ttl", "lazy")


@dataclass(frozen=True)
class Ev:
    uuid: str
    ts: int
    interactive: bool
    props: dict[str, Any]

    def body(self) -> dict[str, Any]:
        event: dict[str, Any] = {"uuid": self.uuid, "timestamp": iso(self.ts)}
        if not self.interactive:
            event["interactive"] = False
        if self.props:
            event["user_properties"] = self.props
        return event


def offsets(timeout: int) -> st.SearchStrategy[int]:
    """Offsets from a user's first event: random, or on the edges that matter."""
    edges = [k * timeout + d for k in (1, 2, 3) for d in (-SECOND_MS, -1, 0, 1, SECOND_MS)] + [
        CAP + d for d in (-timeout, -1, 0, 1, timeout - 1, timeout)
    ]
    return st.one_of(st.sampled_from(edges), st.integers(0, 16 * HOUR_MS))


props = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {}, optional={"role": st.sampled_from(["admin", "viewer", 3, True]), "plan": st.just("vip")}
    ),
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    timeout_minutes = draw(st.sampled_from([30, 240]))
    timeout = timeout_minutes * MINUTE_MS
    events: list[Ev] = []
    for user in range(draw(st.integers(1, 2))):
        uuid = f"user-{user}"
        found = sorted(draw(st.lists(offsets(timeout), min_size=1, max_size=10)))
        age = draw(st.sampled_from([0, DAY_MS, 3 * DAY_MS]))
        base = clock.now_ms() - age - found[-1] - MINUTE_MS
        for offset in found:
            interactive = draw(st.sampled_from([True, True, True, False]))
            events.append(Ev(uuid, base + offset, interactive, draw(props)))
    events.sort(key=lambda e: e.ts)
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=len(events)))
    requests, n = [], 0
    while n < len(events):
        size = sizes[len(requests) % len(sizes)]
        requests.append(events[n : n + size])
        n += size
    return {
        "timeout_minutes": timeout_minutes,
        "events": events,
        "requests": requests,
        "retries": [draw(st.sampled_from(["", "", "again", "after"])) for _ in requests],
        "path": draw(st.sampled_from(PATHS)),
        "shuffle": draw(st.randoms(use_true_random=False)),
    }


def oracle(events: list[Ev], timeout: int) -> dict[str, dict[str, Any]]:
    """The spec, in order: split at gaps of the timeout and at the cap; empty sessions dropped."""
    result = {}
    for uuid in sorted({e.uuid for e in events}):
        mine = sorted((e for e in events if e.uuid == uuid), key=lambda e: e.ts)
        sessions: list[list[Ev]] = []
        for e in mine:
            last = sessions[-1] if sessions else None
            if last is None or e.ts - last[-1].ts >= timeout or e.ts - last[0].ts >= CAP:
                sessions.append([e])
            else:
                last.append(e)
        kept = [s for s in sessions if any(e.interactive for e in s)]
        if not kept:
            result[uuid] = {}
            continue
        total = sum(s[-1].ts - s[0].ts for s in kept)
        first, last_seen = kept[0][0].ts, kept[-1][-1].ts
        custom: dict[str, tuple[int, str, Any]] = {}
        for e in (e for s in kept for e in s):
            for name, value in e.props.items():
                key = (e.ts, json.dumps(value, sort_keys=True), value)
                if name not in custom or key[:2] > custom[name][:2]:
                    custom[name] = key
        n = len(kept)
        result[uuid] = {
            "first_seen": format_time(first),
            "last_seen": format_time(last_seen),
            "total_sessions": n,
            "total_session_duration": round(total / 1000, 3),
            "avg_session_duration": round(total / n / 1000, 3),
            "avg_time_between_sessions": None
            if n < 2
            else round((last_seen - first - total) / (n - 1) / 1000, 3),
            "custom": {name: value for name, (_t, _j, value) in custom.items()},
        }
    return result


def test_attributes_equal_the_in_order_oracle(stack: Stack) -> None:
    from insights.services.core.accounts import create_account

    used_paths: set[str] = set()
    examples = iter(range(10_000))

    @settings(
        max_examples=16,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(scenarios())
    def check(case: dict[str, Any]) -> None:
        used_paths.add(case["path"])
        account = create_account(
            f"prop-{next(examples)}",
            AccountSettings(session_timeout_minutes=case["timeout_minutes"], backfill_days=10),
        )
        shuffle: random.Random = case["shuffle"]

        def send(events: list[Ev], sent_at: str) -> dict[str, Any]:
            response = stack.send(account, [e.body() for e in events], sent_at=sent_at)
            assert response.status == 200, response.body
            return response.json()

        later: list[list[Ev]] = []
        for request, retry in zip(case["requests"], case["retries"], strict=True):
            request = shuffle.sample(request, len(request))
            sent_at = iso(clock.now_ms())
            assert send(request, sent_at)["rejected"] == []
            stack.advance(1)
            if retry == "again":  # no answer seen: the same body again (same sent_at)
                send(request, sent_at)
                stack.advance(1)
            elif retry == "after":
                later.append(request)

        stack.advance(case["timeout_minutes"] * 60 + 90)
        if case["path"] == "sweep":
            stack.sweep()
        elif case["path"] == "ttl":
            stack.ttl()
        else:  # the next request of each user closes their window
            for uuid in sorted({e.uuid for e in case["events"]}):
                last = max((e for e in case["events"] if e.uuid == uuid), key=lambda e: e.ts)
                assert send([last], iso(clock.now_ms()))["late"] == 1
        assert stack.cloud.items("SessionsTable") == []
        for request in later:  # retried much later, sent_at set for the attempt
            send(request, iso(clock.now_ms()))
        stack.advance(case["timeout_minutes"] * 60 + 90)
        stack.sweep()

        expected = oracle(case["events"], case["timeout_minutes"] * MINUTE_MS)
        for uuid, want in expected.items():
            response = stack.user(account, uuid)
            if not want:
                assert response.status == 404, response.body
                continue
            assert response.status == 200, response.body
            body = response.json()
            std = body["standard"]
            assert {k: std[k] for k in want if k != "custom"} == {
                k: v for k, v in want.items() if k != "custom"
            }
            assert (std["country"], std["browser_name"]) == ("United Kingdom", "Chrome")
            assert {name: c["value"] for name, c in body["custom"].items()} == want["custom"]

    check()
    assert used_paths == set(PATHS)
