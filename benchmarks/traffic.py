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

Issue 26 adds shapes that batch as the browser SDK does (``sdk``, ``sdk_5s``:
its flush policy replayed on the model's event times, SDK_POLICIES) and a
month of a SaaS product (``saas_month``): 30 days, 30% of users new in the
month (the others had a session before it, replayed unmetered as a prelude),
5 traits resent at every session's start with 10% of them changed since the
user's last session, delivered by the SDK's current policy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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
    # Delivery: None sends fixed chunks of batch_size (the first shapes);
    # a name in SDK_POLICIES replays the browser SDK's flush policy.
    sdk_policy: str | None = None
    # saas_month: users with a session before the window (prelude), traits
    # resent at each session's start and the share of them that changed.
    existing_share: float = 0.0
    traits: int = 0
    trait_change_share: float = 0.0


class FlushPolicy(NamedTuple):
    """When the browser SDK sends what it queued."""

    flush_at: int  # events queued: send now
    flush_interval_ms: int  # after the first event queued, send what is there
    batch_max: int  # events per request; the rest goes in the next one


# The browser SDK's delivery (layers/core/insights/sdk/insights.js: DEFAULTS,
# enqueue(), flush(), beacon(), the visibilitychange listener): a request when
# flush_at events are queued or flush_interval_ms after the first queued event,
# and, when the page is hidden, a "page_hidden" event and a flush of everything
# queued (sendBeacon on pagehide takes anything left, in chunks of flush_at).
# Edit here to replay another policy.
SDK_POLICIES = {
    "sdk_5s": FlushPolicy(flush_at=20, flush_interval_ms=5_000, batch_max=100),  # SDK 1.0.0
    "sdk": FlushPolicy(flush_at=20, flush_interval_ms=30_000, batch_max=100),  # issue 26's
}
TRAIT_VALUES: dict[str, list[Any]] = {
    "status": ["free", "pro", "VIP"],
    "role": ROLES,
    "type": TYPES,
    "seats": [1, 3, 5, 10, 25, 50],
    "company_size": ["1-10", "11-50", "51-200", "201-1000", "1000+"],
}


# The reference model of issue 6, the shapes issue 18 adds and those of issue
# 26: the reference is the kindest shape there is (8.7 events a request, ~30
# a session, 70% returning users). Issue 18's per_event (one event a request)
# is gone: sdk_5s is what the SDK really sent at one event a request.
SHAPES: dict[str, TrafficModel] = {
    "reference": TrafficModel(),
    # About 2 events a request, 10 a session, half the users seen once.
    "product": TrafficModel(batch_size=2, max_events=19, single_session_share=0.5),
    # 70% of users come once for a short visit.
    "bounce": TrafficModel(bounce_share=0.7),
    # What insights.js sends for the reference model's users: its 1.0.0 policy
    # (5 s after the first queued event) and the one issue 26 asks for (30 s).
    "sdk_5s": TrafficModel(sdk_policy="sdk_5s"),
    "sdk": TrafficModel(sdk_policy="sdk"),
    # A month of a SaaS product: 30% of users new in the month, 5 traits resent
    # each session, 10% of them changed; delivered by the SDK's current policy.
    "saas_month": TrafficModel(
        days=30, sdk_policy="sdk", existing_share=0.7, traits=5, trait_change_share=0.1
    ),
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
    return generate_with_prelude(model, start_ms, seed)[1]


def generate_with_prelude(
    model: TrafficModel, start_ms: int, seed: int
) -> tuple[list[Request], list[Request]]:
    """(prelude, requests): the prelude is each existing user's session before the window."""
    rng = random.Random(seed)
    requests: list[Request] = []
    prelude: list[Request] = []
    for n in range(model.users):
        uuid = f"user-{seed}-{n:05d}"
        requests.extend(_user_requests(model, rng, uuid, start_ms, prelude))
    requests.sort(key=lambda r: (r.at_ms, r.uuid))
    prelude.sort(key=lambda r: (r.at_ms, r.uuid))
    return prelude, requests


def _user_requests(
    model: TrafficModel,
    rng: random.Random,
    uuid: str,
    start_ms: int,
    prelude: list[Request] | None = None,
) -> list[Request]:
    traits: dict[str, Any] = {}
    if model.traits:
        names = list(TRAIT_VALUES)[: model.traits]
        traits = {name: rng.choice(TRAIT_VALUES[name]) for name in names}
        if rng.random() < model.existing_share and prelude is not None:
            # Seen before the window: one event, 1 to 30 days before it.
            # (an hour or more before it: the replay closes it before the window opens)
            at = start_ms - rng.randint(1, 30) * DAY_MS + rng.randrange(DAY_MS - 60 * MINUTE_MS)
            event = {"uuid": uuid, "type": "page_view", "timestamp": format_time(at)}
            event |= {"interactive": True, "properties": dict(traits)}
            prelude.append(Request(at, uuid, make_ip(rng), rng.choice(USER_AGENTS), [event]))
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
        if traits and s:
            for name in traits:  # resent every session; some changed since the last
                if rng.random() < model.trait_change_share:
                    others = [v for v in TRAIT_VALUES[name] if v != traits[name]]
                    traits[name] = rng.choice(others)
        for e in range(rng.randint(1, max_events)):
            if e:
                t += rng.randint(model.min_event_gap_ms, model.max_event_gap_ms)
            props: dict[str, Any] = {}
            if traits and e == 0:
                props = dict(traits)
            elif s == 0 and e == 0:
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
                event["user_properties"] = props
            events.append((t, event))
        if model.sdk_policy is not None:
            # The user leaves (the page is hidden) some time after the last event.
            hidden = t + rng.randint(model.min_event_gap_ms, model.max_event_gap_ms)
            sent = sdk_requests(SDK_POLICIES[model.sdk_policy], events, hidden, uuid)
            requests.extend(Request(at, uuid, ip, user_agent, chunk) for at, chunk in sent)
            t = hidden
        else:
            for i in range(0, len(events), model.batch_size):
                chunk = events[i : i + model.batch_size]
                requests.append(Request(chunk[-1][0], uuid, ip, user_agent, [e for _, e in chunk]))
        free_at = t + model.min_session_gap_ms
        if rng.random() < model.network_switch_share:
            ip = make_ip(rng)
    return requests


def sdk_requests(
    policy: FlushPolicy, events: list[tuple[int, dict[str, Any]]], hidden_ms: int, uuid: str
) -> list[tuple[int, list[dict[str, Any]]]]:
    """(time sent, events) of each request the SDK makes for one page's events.

    enqueue(): a flush at once when flush_at events are queued, else a timer
    flush_interval_ms after the first queued event (not restarted by later
    ones); a flush sends up to batch_max and re-arms for the rest. When the
    page is hidden, a non-interactive "page_hidden" event is queued and
    everything is flushed (sendBeacon on pagehide takes what batch_max left).
    """
    sent: list[tuple[int, list[dict[str, Any]]]] = []
    queue: list[dict[str, Any]] = []
    timer: int | None = None

    def flush(at: int) -> None:
        nonlocal queue, timer
        timer = None
        while queue:
            sent.append((at, queue[: policy.batch_max]))
            queue = queue[policy.batch_max :]
            if len(queue) < policy.flush_at:
                timer = at + policy.flush_interval_ms if queue else None
                return

    for at, event in events:
        while timer is not None and timer <= at:
            flush(timer)
        queue.append(event)
        if len(queue) >= policy.flush_at:
            flush(at)
        elif timer is None:
            timer = at + policy.flush_interval_ms
    while timer is not None and timer <= hidden_ms:
        flush(timer)
    queue.append(
        {
            "uuid": uuid,
            "type": "page_hidden",
            "timestamp": format_time(hidden_ms),
            "interactive": False,
        }
    )
    while queue:  # visibilitychange's flush, then the beacon for any rest
        sent.append((hidden_ms, queue[: policy.batch_max]))
        queue = queue[policy.batch_max :]
    return sent
