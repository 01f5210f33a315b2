"""`insights demo`: realistic traffic against a running stack, then a look at the users.

A few hundred users over the last two weeks: sessions of varied length and
gaps, real browser User-Agents (desktop and mobile), addresses in several
countries, analytics properties that change (some users upgrade: `status`
and `plan` go from "free" to "VIP", as in the README's segment example),
some empty sessions and some users who never come back. Every session ends
at least an hour before now; sessions close by arrival time (the session
timeout after a user's last request), so on the local stack the demo then
moves the stack's clock past the timeout (for good: the clock stays ahead)
and runs the sweeper before it looks. The summary counts what will be
recorded, split into sessions as Insights splits them: empty sessions
(no interactive event) and late events record nothing.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from insights import clock
from insights.domain.core.events import Event
from insights.domain.core.sessions import chain, from_event
from insights.domain.core.timefmt import DAY_MS, HOUR_MS, MINUTE_MS, format_time, parse_time

USER_AGENTS = [
    # Desktop
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 13_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
    # Mobile
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/130.0.6723.90 Mobile/15E148 Safari/604.1",
]

# Public addresses in MaxMind's test networks: their country is the same in
# the bundled sample database and in a real GeoLite2-City database (cities
# may differ between database editions).
NETWORKS = [
    "81.2.69.{}",  # London, United Kingdom
    "2.125.160.{}",  # Boxford, United Kingdom (216-223)
    "89.160.20.{}",  # Linköping, Sweden
    "216.160.83.{}",  # Milton, United States (56-63)
    "175.16.199.{}",  # Changchun, China
    "202.196.224.{}",  # Philippines
]
_HOST_RANGES = {"2.125.160.{}": (216, 223), "216.160.83.{}": (56, 63)}

ROLES = ["admin", "editor", "viewer", "owner"]
TYPES = ["trial", "customer", "partner"]
EVENT_TYPES = ["page_view", "click", "search", "form_submit", "video_play"]


@dataclass
class DemoUser:
    uuid: str
    ip: str
    user_agent: str
    sessions: list[list[dict[str, Any]]] = field(default_factory=list)


def make_ip(rng: random.Random) -> str:
    network = rng.choice(NETWORKS)
    low, high = _HOST_RANGES.get(network, (1, 254))
    return network.format(rng.randint(low, high))


def plan_users(count: int, now_ms: int, seed: int = 42) -> list[DemoUser]:
    rng = random.Random(seed)
    users = []
    for n in range(count):
        user = DemoUser(f"demo-{n:04d}", make_ip(rng), rng.choice(USER_AGENTS))
        name = f"User {n}"
        role, kind = rng.choice(ROLES), rng.choice(TYPES)
        status = "free"
        upgrades = rng.random() < 0.2
        returning = rng.random() > 0.3  # 30% are seen once and never again
        sessions = rng.randint(2, 12) if returning else 1
        start = now_ms - 14 * DAY_MS + rng.randint(0, 7 * DAY_MS)
        for s in range(sessions):
            if start > now_ms - 2 * HOUR_MS:
                break
            events = []
            t = start
            empty = rng.random() < 0.1
            for e in range(rng.randint(1, 40)):
                if t > now_ms - HOUR_MS:
                    break
                props: dict[str, Any] = {}
                if s == 0 and e == 0:
                    props = {
                        "name": name,
                        "role": role,
                        "type": kind,
                        "status": status,
                        "plan": status,
                    }
                if upgrades and s == sessions // 2 and e == 0:
                    status = "VIP"
                    props |= {
                        "status": status,
                        "plan": status,
                        "info": "upgraded from the pricing page",
                    }
                events.append(
                    {
                        "uuid": user.uuid,
                        "type": "heartbeat" if empty else rng.choice(EVENT_TYPES),
                        "timestamp": format_time(t),
                        "interactive": not empty,
                        **({"user_properties": props} if props else {}),
                    }
                )
                t += rng.randint(5_000, 4 * MINUTE_MS)
            user.sessions.append(events)
            if rng.random() < 0.15:  # some users switch network or device
                user.ip = make_ip(rng)
            start = t + rng.choice([45 * MINUTE_MS, 3 * HOUR_MS, DAY_MS, 2 * DAY_MS, 4 * DAY_MS])
        users.append(user)
    return users


class Api:
    def __init__(self, base_url: str, write_key: str, secret_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.write_key = write_key
        self.secret_key = secret_key

    def request(self, method: str, path: str, body: Any = None, *, secret: bool = True) -> Any:
        headers = {"content-type": "application/json"}
        if secret:
            headers["authorization"] = f"Bearer {self.secret_key}"
        else:
            headers["x-insights-key"] = self.write_key
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise SystemExit(f"{method} {path}: HTTP {exc.code} {exc.read().decode()}") from None
        return json.loads(text) if text else None


# The demo's history reaches 14 days back; events older than the account's
# backfill window would be rejected.
HISTORY_DAYS = 14
DEMO_BACKFILL_DAYS = 30


def run_demo(
    api: Api, users: int = 200, show: int = 8, *, change_settings: bool = True
) -> dict[str, Any]:
    """Send the traffic; the summary says what it changed and what will be recorded."""
    now = clock.now_ms()
    account = api.request("GET", "/v1/account")
    changed: dict[str, Any] = {}
    backfill = account["settings"]["backfill_days"]
    if backfill <= HISTORY_DAYS and change_settings:
        api.request("PATCH", "/v1/account", {"backfill_days": DEMO_BACKFILL_DAYS})
        changed["backfill_days"] = {"from": backfill, "to": DEMO_BACKFILL_DAYS}
    planned = plan_users(users, now)
    timeout_s = int(account["settings"].get("session_timeout_minutes", 30)) * 60

    def send_user(user: DemoUser) -> Sent:
        sent = Sent()
        for events in user.sessions:  # the SDK flushes once per session (<= 40 events)
            body = {
                "sent_at": format_time(clock.now_ms()),
                "context": {"ip": user.ip, "user_agent": user.user_agent},
                "events": events,
            }
            answer = api.request("POST", "/v1/events", body, secret=False)
            sent.add(events, answer)
        return sent

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(send_user, planned))
    recorded = [r.sessions(timeout_s * 1000) for r in results]
    summary: dict[str, Any] = {
        "users": len(planned),
        "sessions_sent": sum(len(u.sessions) for u in planned),
        "events": sum(r.accepted for r in results),
        "rejected": sum(r.rejected for r in results),
        "late": sum(r.late for r in results),
        # What the users' profiles will show once these sessions close: a
        # session with no interactive event records nothing (nor does a user
        # who had only such sessions), and late events change no session.
        "recorded": {
            "users": sum(1 for count in recorded if count),
            "sessions": sum(recorded),
            "empty_sessions": sum(r.empty for r in results),
        },
        "settings_changed": changed,
        "clock_advanced_seconds": None,
    }
    # A local stack answers these (a deployed one 404s: its sessions close on their own).
    if api.request("POST", f"/_local/clock?advance={timeout_s + 60}") is not None:
        api.request("POST", "/_local/tick")
        summary["clock_advanced_seconds"] = timeout_s + 60
    rows = []
    for user in planned:
        if len(rows) >= show:
            break
        found = api.request("GET", f"/v1/users/{user.uuid}")
        if found is not None:
            rows.append(found)
    summary["shown"] = rows
    return summary


@dataclass
class Sent:
    """One user's events as Insights took them: accepted, and not late."""

    accepted: int = 0
    rejected: int = 0
    late: int = 0
    empty: int = 0  # requests (the demo sends a session per request) with no interaction
    kept: list[Event] = field(default_factory=list)

    def add(self, events: list[dict[str, Any]], answer: dict[str, Any]) -> None:
        refused = {r["index"] for r in answer["rejected"]}
        taken = sorted(
            (
                Event(i, e["uuid"], parse_time(e["timestamp"]), e["interactive"], {})
                for i, e in enumerate(events)
                if i not in refused
            ),
            key=lambda e: e.ts,
        )
        self.accepted += answer["accepted"]
        self.rejected += len(refused)
        self.late += answer["late"]
        self.empty += not any(e.interactive for e in taken)
        # Late events (at or before the end of a session the user already
        # had: a second run for the same users) are the request's earliest.
        self.kept += taken[answer["late"] :]

    def sessions(self, timeout_ms: int) -> int:
        """Non-empty sessions these events make, split as Insights splits them."""
        runs = chain((from_event(e, None, 0) for e in self.kept), timeout_ms)
        return sum(1 for run in runs if run.interactive)


def print_summary(summary: dict[str, Any]) -> None:
    for name, change in summary.get("settings_changed", {}).items():
        print(
            f"Changed the account's {name} from {change['from']} to {change['to']} so events "
            f"from the last {HISTORY_DAYS} days are accepted (PATCH /v1/account to set it "
            "back; --keep-settings leaves it alone).\n"
        )
    recorded = summary["recorded"]
    print(
        f"Sent {summary['events']} events in {summary['sessions_sent']} sessions for "
        f"{summary['users']} users ({summary['rejected']} rejected)."
    )
    empty = recorded["empty_sessions"]
    lines = [
        f"Recorded: {recorded['sessions']} sessions of {recorded['users']} users "
        "(what the console and the API show once the sessions close)."
    ]
    if empty:
        lines.append(
            f"{empty} of the sessions sent had no interaction (only background events): "
            "empty sessions record nothing, as the spec says."
        )
    if summary.get("late"):
        lines.append(
            f"{summary['late']} events were late (older than sessions these users already "
            "had, from an earlier run): they change no session."
        )
    elif summary["users"] > recorded["users"]:
        lines.append(
            f"{summary['users'] - recorded['users']} users had only empty sessions: "
            "they have no profile."
        )
    advanced = summary.get("clock_advanced_seconds")
    if advanced:
        lines.append(
            f"Moved the local stack's clock {advanced // 60} minutes on "
            f"(POST /_local/clock?advance={advanced}) so the sessions close now instead of "
            "after the session timeout; the clock stays ahead, across restarts too "
            "(GET /_local/clock reads it)."
        )
    else:
        lines.append("Sessions close by themselves after the account's session timeout.")
    print("\n".join(lines) + "\n")
    header = (
        "uuid",
        "sessions",
        "first seen",
        "last seen",
        "avg s",
        "country",
        "city",
        "browser",
        "status",
    )
    rows = []
    for user in summary["shown"]:
        std, custom = user["standard"], user["custom"]
        rows.append(
            (
                user["uuid"],
                str(std["total_sessions"]),
                (std["first_seen"] or "")[:16],
                (std["last_seen"] or "")[:16],
                f"{std['avg_session_duration'] or 0:.0f}",
                std["country"] or "-",
                std["city"] or "-",
                f"{std['browser_name'] or '-'} {std['browser_version'] or ''}".strip(),
                str(custom.get("status", {}).get("value", "-")),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
