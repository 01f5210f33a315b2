"""The reference traffic model of issue 6 and the shapes of issue 18, as timed HTTP requests.

1,000 users over 14 days; 1-20 sessions each, 30% of users one session only;
1-60 events per session, 10% of sessions empty (no interactive event); the
events of a session go out in requests of up to 10, as a batching browser
SDK sends them: a request when 10 events are queued and one with the rest
when the page is hidden at the session's end.

What the issue leaves open is taken from the demo (insights.local.demo), not
chosen for the benchmark: 5 s to 4 min between a session's events, the
demo's User-Agents and addresses (15% of sessions switch network), the
demo's analytics properties (name/role/type/status on a user's first event,
20% of users upgrade to VIP half-way). Sessions start at uniformly random
times in the window, at least 45 minutes (the demo's shortest gap) after the
user's previous session ends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from insights.domain.core.timefmt import DAY_MS, MINUTE_MS, format_time
from insights.local.demo import EVENT_TYPES, ROLES, TYPES, USER_AGENTS, make_ip


@dataclass(frozen=True)
class TrafficModel:
    users: int = 1000
    days: int = 14
    max_sessions: int = 20
    single_session_share: float = 0.3
    max_events: int = 60
    empty_session_share: float = 0.1
    batch_size: int = 10
    min_event_gap_ms: int = 5_000
    max_event_gap_ms: int = 4 * MINUTE_MS
    min_session_gap_ms: int = 45 * MINUTE_MS
    upgrade_share: float = 0.2
    network_switch_share: float = 0.15
    # Bounce visitors: one short session of 1 to bounce_max_events events.
    bounce_share: float = 0.0
    bounce_max_events: int = 3


# The reference model of issue 6 and the three shapes issue 18 adds: the
# reference is the kindest shape there is (8.7 events a request, ~30 a
# session, 70% returning users).
SHAPES: dict[str, TrafficModel] = {
    "reference": TrafficModel(),
    # About 2 events a request, 10 a session, half the users seen once.
    "product": TrafficModel(batch_size=2, max_events=19, single_session_share=0.5),
    # An SDK that sends every event at once (or beacons).
    "per_event": TrafficModel(batch_size=1),
    # 70% of users come once for a short visit.
    "bounce": TrafficModel(bounce_share=0.7),
}


@dataclass
class Request:
    at_ms: int  # when the SDK sends it: the time of its last event
    uuid: str
    ip: str
    user_agent: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {
            "sent_at": format_time(self.at_ms),
            "context": {"ip": self.ip, "user_agent": self.user_agent},
            "events": self.events,
        }


def generate(model: TrafficModel, start_ms: int, seed: int) -> list[Request]:
    """Every request of every user, in the order they reach the endpoint."""
    rng = random.Random(seed)
    requests: list[Request] = []
    for n in range(model.users):
        requests.extend(_user_requests(model, rng, f"user-{seed}-{n:05d}", start_ms))
    requests.sort(key=lambda r: (r.at_ms, r.uuid))
    return requests


def _user_requests(
    model: TrafficModel, rng: random.Random, uuid: str, start_ms: int
) -> list[Request]:
    bounce = rng.random() < model.bounce_share
    single = bounce or rng.random() < model.single_session_share
    count = 1 if single else rng.randint(2, model.max_sessions)
    max_events = model.bounce_max_events if bounce else model.max_events
    starts = sorted(start_ms + rng.randrange(model.days * DAY_MS) for _ in range(count))
    ip, user_agent = make_ip(rng), rng.choice(USER_AGENTS)
    upgrades = rng.random() < model.upgrade_share
    first_props = {
        "name": f"User {uuid}",
        "role": rng.choice(ROLES),
        "type": rng.choice(TYPES),
        "status": "free",
    }
    requests: list[Request] = []
    free_at = start_ms
    for s, planned in enumerate(starts):
        t = max(planned, free_at)
        empty = rng.random() < model.empty_session_share
        events = []
        for e in range(rng.randint(1, max_events)):
            if e:
                t += rng.randint(model.min_event_gap_ms, model.max_event_gap_ms)
            props: dict[str, Any] = {}
            if s == 0 and e == 0:
                props = dict(first_props)
            if upgrades and s == count // 2 and e == 0:
                props |= {"status": "VIP", "info": "upgraded from the pricing page"}
            event = {
                "uuid": uuid,
                "type": "heartbeat" if empty else rng.choice(EVENT_TYPES),
                "timestamp": format_time(t),
                "interactive": not empty,
            }
            if props:
                event["properties"] = props
            events.append((t, event))
        for i in range(0, len(events), model.batch_size):
            chunk = events[i : i + model.batch_size]
            requests.append(Request(chunk[-1][0], uuid, ip, user_agent, [e for _, e in chunk]))
        free_at = t + model.min_session_gap_ms
        if rng.random() < model.network_switch_share:
            ip = make_ip(rng)
    return requests
