"""The browser SDK in a real headless Chromium against the local stack over HTTP.

Pages come from the running stack (`/_local/page`, `/demo`), the SDK from
its tracking function URL, and every assertion is on what reached Insights
(the track answers, the users and segments APIs), never on mocks. One
stack and one browser serve the whole module; each test gets a fresh
browser context (its own localStorage) and its own users.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.e2e.relay import Relay
from tests.e2e.served import RunningStack

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output"
FAST = {"flush-interval": "300", "retry-base": "200", "debug": "true"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = RunningStack(tmp_path_factory.mktemp("browser-stack"))
    yield running
    running.stop()


class Tab:
    """A page plus what its SDK sent and what Insights answered."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.sent: list[dict[str, Any]] = []  # request bodies that got a 200
        self.answers: list[dict[str, Any]] = []
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if "/v1/events" in response.url and response.status == 200:
            self.sent.append(json.loads(response.request.post_data or "{}"))
            self.answers.append(response.json())

    def accepted(self) -> int:
        return sum(a["accepted"] for a in self.answers)

    def events(self) -> list[dict[str, Any]]:
        return [e for body in self.sent for e in body["events"]]

    def wait_until(self, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"timed out; sent so far: {self.sent}")

    def delivered(self) -> None:
        """Wait until the SDK has nothing left to send."""
        self.wait_until(
            lambda: (
                self.page.evaluate("insights.pending().queued === 0")
                and not self.page.evaluate("insights.pending().held")
            )
        )


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context()
    context.set_default_timeout(60_000)  # a loaded CI machine, not a slow SDK
    yield Tab(context.new_page())
    context.close()


def open_page(
    tab: Tab, stack: RunningStack, key: str | None = None, *, policy: bool = False, **options: str
) -> None:
    """The test page with the SDK; `policy` keeps the SDK's own flush policy."""
    base = {"debug": "true"} if policy else FAST
    query = {"key": key or stack.state["account"]["write_key"], **base, **options}
    tab.page.goto(f"{stack.url}/_local/page?{urlencode(query)}")
    tab.page.wait_for_function("window.insights && !Array.isArray(window.insights)")


def stored_queue(tab: Tab) -> Any:
    """The page's stored queue (localStorage `insights:<write key>#<page>`), None when empty."""
    return tab.page.evaluate(
        "Object.keys(localStorage).filter(k => /^insights:[^:#]+#/.test(k))"
        ".map(k => localStorage.getItem(k))[0] || null"
    )


def close_sessions(stack: RunningStack) -> None:
    for path in ("/_local/clock?advance=1860", "/_local/tick"):
        status, _ = stack.request("POST", path)
        assert status == 200


def read_user(stack: RunningStack, uuid: str, secret: str | None = None) -> tuple[int, Any]:
    secret = secret or stack.state["account"]["secret_key"]
    return stack.request(
        "GET", f"/v1/users/{quote(uuid, safe='')}", headers={"Authorization": f"Bearer {secret}"}
    )


def new_account(stack: RunningStack) -> dict[str, Any]:
    env = stack.env
    done = subprocess.run(
        [sys.executable, "-m", "insights.cli", "accounts", "create", "--name", "B", "--json"],
        cwd=stack.home,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ------------------------------------------------------------------- tests
def test_identify_and_clicks_make_a_user_with_its_properties(stack: RunningStack, tab: Tab) -> None:
    open_page(tab, stack)
    tab.page.evaluate('insights.identify("sdk-ada", {role: "admin", status: "VIP", name: "Ada"})')
    tab.page.click("#buy")
    tab.page.fill("#name", "hello")
    tab.page.evaluate('insights.track("exported report", {format: "pdf"})')
    tab.delivered()
    assert {e["type"] for e in tab.events()} >= {
        "page_view",
        "identify",
        "click",
        "input",
        "exported report",
    }
    assert all(e["uuid"] == "sdk-ada" for e in tab.events())
    assert all("sent_at" in body for body in tab.sent)
    interactive = {e["type"]: e["interactive"] for e in tab.events()}
    assert interactive["click"] and interactive["input"] and not interactive["page_view"]
    close_sessions(stack)
    status, user = read_user(stack, "sdk-ada")
    assert status == 200, user
    assert user["standard"]["total_sessions"] == 1
    assert "Chrom" in user["standard"]["browser_name"]
    # identify's traits are user properties; track's {format: "pdf"} describes
    # the event and stays off the profile (docs/event-properties.md).
    custom = {name: v["value"] for name, v in user["custom"].items()}
    assert custom == {"role": "admin", "status": "VIP", "name": "Ada"}
    sent = {e["type"]: e for e in tab.events()}
    assert sent["identify"]["user_properties"] == {"role": "admin", "status": "VIP", "name": "Ada"}
    assert sent["exported report"]["properties"] == {"format": "pdf"}
    assert "user_properties" not in sent["exported report"]


def test_an_account_keeps_the_event_properties_it_names(stack: RunningStack, tab: Tab) -> None:
    account = new_account(stack)
    status, body = stack.request(
        "PATCH",
        "/v1/account",
        {"event_properties_as_attributes": ["format"]},
        {"Authorization": f"Bearer {account['secret_key']}"},
    )
    assert status == 200, body
    open_page(tab, stack, key=account["write_key"])
    tab.page.evaluate('insights.identify("sdk-keeper", {role: "admin"})')
    tab.page.evaluate('insights.track("exported report", {format: "pdf", pages: 3})')
    tab.page.click("#buy")
    tab.delivered()
    close_sessions(stack)
    status, user = read_user(stack, "sdk-keeper", account["secret_key"])
    assert status == 200, user
    custom = {name: v["value"] for name, v in user["custom"].items()}
    assert custom == {"role": "admin", "format": "pdf"}  # pages is not named: not kept
    assert user["custom"]["format"]["source"] == "event"


def test_nothing_is_sent_before_an_id_is_known(stack: RunningStack, tab: Tab) -> None:
    open_page(tab, stack, **{"uuid-variable": "app.user.id"})
    tab.page.click("#buy")
    tab.page.wait_for_timeout(1200)  # four flush intervals
    assert tab.sent == []
    # The app sets its user later: the held events go out with that id.
    tab.page.evaluate('window.app = {user: {id: "sdk-late-id"}}; insights.track("hello")')
    tab.delivered()
    assert {e["uuid"] for e in tab.events()} == {"sdk-late-id"}
    assert {"page_view", "click", "hello"} <= {e["type"] for e in tab.events()}


def test_uuid_from_a_cookie_hashed_in_the_browser(stack: RunningStack, tab: Tab) -> None:
    tab.page.context.add_cookies([{"name": "uid", "value": "raw-42", "url": stack.url}])
    open_page(tab, stack, **{"uuid-cookie": "uid", "hash-uuid": "true"})
    tab.page.click("#buy")
    tab.delivered()
    expected = hashlib.sha256(b"raw-42").hexdigest()
    assert {e["uuid"] for e in tab.events()} == {expected}
    assert "raw-42" not in json.dumps(tab.sent)


def test_a_page_left_idle_produces_nothing(stack: RunningStack, tab: Tab) -> None:
    open_page(tab, stack, heartbeat="0.3", **{"heartbeat-flush": "300"})
    tab.page.evaluate('insights.identify("sdk-idle")')
    tab.wait_until(lambda: tab.accepted() >= 4)  # a page view and heartbeats arrived
    assert not any(e["interactive"] for e in tab.events())
    close_sessions(stack)
    status, body = read_user(stack, "sdk-idle")
    assert status == 404, body  # an empty session shows no data


def test_offline_then_online_delivers_everything_once(stack: RunningStack, tab: Tab) -> None:
    attempts: list[str] = []

    def offline(route: Route) -> None:
        attempts.append(route.request.post_data or "")
        route.abort("internetdisconnected")

    tab.page.route("**/v1/events*", offline)
    open_page(tab, stack)
    tab.page.evaluate('insights.identify("sdk-offline", {status: "trial"})')
    for _ in range(3):
        tab.page.click("#buy")
        tab.page.wait_for_timeout(1000)  # past the click throttle
    tab.wait_until(lambda: len(attempts) >= 3)  # retried with backoff, nothing lost
    assert tab.page.evaluate("insights.pending().queued") >= 5
    stored = tab.page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('insights:'))")
    assert stored, "undelivered events are kept in localStorage"
    tab.page.unroute("**/v1/events*", offline)
    tab.page.evaluate("window.dispatchEvent(new Event('online'))")
    tab.delivered()
    captured = [(e["type"], e["timestamp"]) for e in tab.events()]
    assert len(captured) == len(set(captured)) == tab.accepted()  # each event once
    assert sum(t == "click" for t, _ in captured) == 3
    assert stored_queue(tab) is None
    close_sessions(stack)
    status, user = read_user(stack, "sdk-offline")
    assert status == 200 and user["standard"]["total_sessions"] == 1
    assert user["custom"]["status"]["value"] == "trial"


def test_events_kept_offline_survive_a_reload(stack: RunningStack, tab: Tab) -> None:
    tab.page.route("**/v1/events*", lambda route: route.abort("internetdisconnected"))
    open_page(tab, stack)
    tab.page.evaluate('insights.identify("sdk-reload", {role: "reader"})')
    tab.page.click("#buy")
    tab.page.wait_for_timeout(500)
    tab.page.evaluate("Object.defineProperty(navigator, 'onLine', {get: () => false})")
    tab.page.unroute("**/v1/events*")
    open_page(tab, stack)  # reload: the stored queue is sent by the new page
    # (its own page view waits for an id: this page never identifies)
    tab.wait_until(lambda: tab.page.evaluate("insights.pending()") == {"held": 1, "queued": 0})
    assert {"identify", "click"} <= {e["type"] for e in tab.events() if e["uuid"] == "sdk-reload"}
    close_sessions(stack)
    status, user = read_user(stack, "sdk-reload")
    assert status == 200 and user["custom"]["role"]["value"] == "reader"


def test_pagehide_delivers_the_last_batch_by_beacon(stack: RunningStack, tab: Tab) -> None:
    # Chromium does not report requests of a page being unloaded to Playwright,
    # so the page counts its sendBeacon calls in sessionStorage (kept across
    # the navigation) and Insights says what arrived.
    tab.page.add_init_script(
        "const send = navigator.sendBeacon.bind(navigator);"
        "navigator.sendBeacon = (url, data) => {"
        " const ok = send(url, data);"
        " if (String(url).includes('/v1/events'))"
        "  sessionStorage.setItem('beacons', Number(sessionStorage.getItem('beacons')) + ok);"
        " return ok; };"
    )
    open_page(tab, stack, **{"flush-interval": "600000"})  # no timed flush
    tab.page.evaluate('insights.identify("sdk-beacon", {role: "leaver"})')
    # A new browser's first events go at once (their answer tells the timeout).
    tab.wait_until(lambda: tab.accepted() == 2)
    tab.page.click("#buy")
    # A trait (a user property): a track's properties stay off the profile.
    tab.page.evaluate('insights.identify("sdk-beacon", {step: "by beacon"})')
    assert tab.page.evaluate("insights.pending().queued") == 2
    tab.page.click("#away")  # navigate: pagehide
    tab.page.wait_for_url("**/_local/health")
    assert len(tab.sent) == 1  # nothing more went out by fetch
    assert int(tab.page.evaluate("sessionStorage.getItem('beacons')") or 0) >= 1
    deadline = time.monotonic() + 60  # a loaded machine may take a while
    while True:  # the beacon arrives a moment after the navigation
        close_sessions(stack)
        status, user = read_user(stack, "sdk-beacon")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status == 200, user
    assert user["custom"]["step"]["value"] == "by beacon"


def test_a_retried_batch_does_not_double_count(stack: RunningStack, tab: Tab) -> None:
    reached: list[int] = []

    def lose_first_answer(route: Route) -> None:
        response = route.fetch()  # Insights stores the batch...
        reached.append(response.status)
        if len(reached) == 1:
            route.fulfill(status=503, body="")  # ...but the browser sees a 5xx
        else:
            route.fulfill(response=response)

    tab.page.route("**/v1/events*", lose_first_answer)
    open_page(tab, stack, **{"flush-at": "3"})
    tab.page.evaluate('insights.identify("sdk-retry", {role: "twice"})')
    tab.page.click("#buy")
    tab.delivered()
    assert reached[:2] == [200, 200]  # the same batch reached the server twice
    close_sessions(stack)
    status, user = read_user(stack, "sdk-retry")
    assert status == 200, user
    assert user["standard"]["total_sessions"] == 1
    first, last = tab.events()[0]["timestamp"], tab.events()[-1]["timestamp"]
    assert user["standard"]["total_session_duration"] <= (last - first) / 1000 + 1


def test_async_tag_replays_calls_made_before_it_loaded(stack: RunningStack, tab: Tab) -> None:
    held: list[Route] = []  # the script's request, answered when the test says
    tab.page.route("**/v1/sdk/insights.js", lambda route: held.append(route))
    query = {"key": stack.state["account"]["write_key"], **FAST, "stub": "1", "async": "1"}
    # DOMContentLoaded does not wait for async scripts (the load event would).
    tab.page.goto(f"{stack.url}/_local/page?{urlencode(query)}", wait_until="domcontentloaded")
    assert tab.page.evaluate("Array.isArray(window.insights)")  # the stub
    tab.page.evaluate('insights.identify("sdk-stub", {role: "early"})')
    tab.wait_until(lambda: bool(held))
    held[0].continue_()
    tab.page.wait_for_function("window.insights && !Array.isArray(window.insights)")
    tab.delivered()
    assert ("identify", "sdk-stub") in {(e["type"], e["uuid"]) for e in tab.events()}


def test_verification_and_targeting_segments(stack: RunningStack, tab: Tab) -> None:
    account = new_account(stack)
    auth = {"Authorization": f"Bearer {account['secret_key']}"}
    status, created = stack.request("POST", "/v1/account/identity/secret", headers=auth)
    assert status == 201
    secret = created["identity_secret"]
    status, _ = stack.request("PATCH", "/v1/account/identity", {"verification": True}, auth)
    assert status == 200
    for name, targeting, role in (
        ("admins", True, "admin"),
        ("admins, internal", False, "admin"),
        ("viewers", True, "viewer"),
    ):
        rules = {"attribute": "custom.role", "op": "equals", "value": role}
        body = {"name": name, "rules": rules, "targeting": targeting}
        status, segment = stack.request("POST", "/v1/segments", body, auth)
        assert status == 201, segment
        if name == "admins":
            wanted = segment["id"]

    # A visitor with the public write key claims another user's uuid.
    open_page(tab, stack, key=account["write_key"])
    tab.page.evaluate(
        'insights.identify("victim", {role: "admin"}, {userHash: "' + "0" * 64 + '"})'
    )
    tab.page.click("#buy")
    tab.wait_until(
        lambda: bool(tab.answers) and tab.page.evaluate("insights.pending().queued") == 0
    )
    rejected = [r for a in tab.answers for r in a["rejected"]]
    assert tab.accepted() == 0 and rejected
    assert {r["error"] for r in rejected} == {"unverified_user"}
    assert any("unverified_user" in line for line in tab.console)  # debug mode says so
    forged = tab.page.evaluate("insights.segments().then(() => 'ok', e => e.code)")
    assert forged == "unverified_user"

    # The real user, with the hash from the customer's backend.
    good = hmac.new(secret.encode(), b"verified-ada", hashlib.sha256).hexdigest()
    tab.page.evaluate(
        f'insights.identify("verified-ada", {{role: "admin"}}, {{userHash: "{good}"}})'
    )
    tab.page.evaluate('insights.track("opened dashboard")')
    tab.delivered()
    assert tab.answers[-1]["rejected"] == []
    close_sessions(stack)
    assert read_user(stack, "victim", account["secret_key"])[0] == 404
    status, user = read_user(stack, "verified-ada", account["secret_key"])
    assert status == 200 and user["custom"]["role"]["value"] == "admin"
    assert tab.page.evaluate("insights.segments()") == [wanted]


def test_demo_page_screenshot(stack: RunningStack, tab: Tab) -> None:
    page = tab.page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{stack.url}/demo")
    page.wait_for_function("window.insights && !Array.isArray(window.insights)")
    page.fill("#uuid", "demo-screenshot")
    page.click("#identify")
    page.click("#like")
    page.click("#export")
    page.fill("#notes", "trying the SDK")
    page.wait_for_selector("#log li .ok")
    page.click("#close")
    page.wait_for_selector("#profile table")
    profile = page.inner_text("#profile")
    assert "demo-screenshot" in profile and "VIP" in profile
    assert "pdf" not in profile  # track's {format: "pdf"} describes the event
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000


# ------------------------------------------------------------ flush policy
# The SDK's defaults (docs/sdk.md): a request when 20 events wait or 4 minutes
# after the first, never later than 4/5 of the session timeout after the
# user's previous event, at once after a gap near the timeout (and for a new
# browser's first event), at once when the page is hidden, by beacon on
# pagehide. The page's clock is Playwright's, paused from the start: only
# run_for moves it.
MINUTE_MS = 60_000


def paused_clock(tab: Tab, stack: RunningStack, key: str | None = None, **options: str) -> None:
    start = time.time()
    tab.page.clock.install(time=start)
    tab.page.clock.pause_at(start + 1)
    open_page(tab, stack, key, policy=True, **options)


def first_request(tab: Tab, uuid: str, *also: str) -> None:
    """identify() (and `also` tracked with it): a new browser's first events go
    at once, and their answer tells the SDK the account's session timeout."""
    tab.page.evaluate(f'insights.identify("{uuid}")' + "".join(f'.track("{t}")' for t in also))
    tab.page.clock.run_for(1)  # the flush is due now
    tab.wait_until(lambda: tab.accepted() == 1 + len(also))
    tab.wait_until(lambda: remembered(tab).get("timeout") is not None)
    assert [e["type"] for e in tab.events()] == ["page_view", *also]


def remembered(tab: Tab) -> dict[str, Any]:
    """What the SDK keeps of the user's last event and the timeout (docs/sdk.md)."""
    found = tab.page.evaluate(
        "Object.keys(localStorage).filter(k => k.endsWith(':session'))"
        ".map(k => localStorage.getItem(k))[0] || '{}'"
    )
    return json.loads(found)


def test_a_request_four_minutes_after_the_first_event(stack: RunningStack, tab: Tab) -> None:
    paused_clock(tab, stack)
    first_request(tab, "sdk-four")
    assert remembered(tab)["timeout"] == 30
    tab.page.click("#buy")
    tab.page.clock.run_for(60_000)
    tab.page.fill("#name", "typed a minute later")
    tab.page.clock.run_for(3 * MINUTE_MS - 1_000)  # 3:59 after the click
    tab.page.wait_for_timeout(500)  # real time: nothing is on its way either
    assert len(tab.sent) == 1
    assert tab.page.evaluate("insights.pending().queued") == 2
    tab.page.clock.run_for(1_000)
    tab.wait_until(lambda: tab.accepted() == 3)
    assert len(tab.sent) == 2  # one request, every event since the click
    assert [e["type"] for e in tab.sent[1]["events"]] == ["click", "input"]
    assert tab.page.evaluate("insights.pending().queued") == 0


def test_twenty_events_go_at_once_in_one_request(stack: RunningStack, tab: Tab) -> None:
    paused_clock(tab, stack)
    first_request(tab, "sdk-twenty")
    tab.page.evaluate('for (let i = 1; i < 20; i++) insights.track("step " + i)')
    tab.page.clock.run_for(100)
    tab.page.wait_for_timeout(500)
    assert len(tab.sent) == 1
    assert tab.page.evaluate("insights.pending().queued") == 19
    tab.page.evaluate('insights.track("step 20")')  # the 20th event
    tab.page.clock.run_for(1)  # no waiting: the flush is due now
    tab.wait_until(lambda: tab.accepted() == 21)
    assert len(tab.sent) == 2 and len(tab.sent[1]["events"]) == 20


def hide(page: Page, state: str = "hidden") -> None:
    # Headless Chromium never hides a page (another tab in front, a minimized
    # window: still "visible"), so the test says what the browser would.
    getter = f"{{get: () => '{state}', configurable: true}}"
    page.evaluate(
        f"Object.defineProperty(document, 'visibilityState', {getter});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )


def test_a_hidden_page_sends_everything_at_once(stack: RunningStack, tab: Tab) -> None:
    paused_clock(tab, stack)
    tab.page.evaluate('insights.identify("sdk-hidden", {role: "switcher"})')
    tab.page.click("#buy")
    assert tab.sent == []
    hide(tab.page)  # the user switched tabs or apps: the page may never run again
    tab.wait_until(lambda: tab.accepted() == 4)  # the clock has not moved
    assert [e["type"] for e in tab.events()] == ["page_view", "identify", "click", "page_hidden"]
    assert stored_queue(tab) is None  # answered, so not kept
    assert remembered(tab)["timeout"] == 30  # the answer said so
    hide(tab.page, "visible")  # back: events wait again (4 minutes)
    tab.page.clock.run_for(4 * MINUTE_MS - 1_000)
    tab.page.wait_for_timeout(500)
    assert len(tab.sent) == 1
    tab.page.clock.run_for(1_000)
    tab.wait_until(lambda: len(tab.sent) == 2)
    assert [e["type"] for e in tab.sent[1]["events"]] == ["page_visible"]
    close_sessions(stack)
    status, user = read_user(stack, "sdk-hidden")
    assert status == 200 and user["custom"]["role"]["value"] == "switcher"


def test_closing_the_tab_sends_the_rest_once(stack: RunningStack, browser: Browser) -> None:
    # Chromium reports no request of a closed page to Playwright: the SDK
    # sends through a plain hop that counts what arrives (tests/e2e/relay.py).
    hop = Relay(upstream=stack.url)
    endpoint = hop.url + urlsplit(stack.state["function_urls"]["TrackFunction"]).path.rstrip("/")
    context = browser.new_context()
    try:
        page = context.new_page()
        query = {"key": stack.state["account"]["write_key"], "endpoint": endpoint}
        page.goto(f"{stack.url}/_local/page?{urlencode(query)}")
        page.wait_for_function("window.insights && !Array.isArray(window.insights)")
        page.evaluate('insights.identify("sdk-closed", {role: "closer"})')

        def posts_after(count: int) -> list[Any]:
            deadline = time.monotonic() + 30
            while len(hop.requests("POST")) < count and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)  # anything else the page sent has arrived by now
            return hop.requests("POST")

        # A new browser's first events go at once; the click then waits.
        assert len(posts_after(1)) == 1
        page.wait_for_function("insights.pending().queued === 0")  # answered
        page.click("#buy")
        page.close()  # pagehide, then (in Chromium) visibilitychange to hidden
        posts = posts_after(2)
        assert all(s.status == 200 for s in posts)
        assert len(posts) == 2, [s.body for s in posts]  # one beacon, no third request
        sent = [[e["type"] for e in json.loads(s.body or "{}")["events"]] for s in posts]
        assert sent == [["page_view", "identify"], ["click"]]
    finally:
        context.close()
        hop.close()
    close_sessions(stack)
    status, user = read_user(stack, "sdk-closed")  # the beaconed click made the session
    assert status == 200 and user["custom"]["role"]["value"] == "closer"


def test_two_tabs_offline_then_closed_lose_nothing(stack: RunningStack, browser: Browser) -> None:
    """Tabs share localStorage. Two tabs queue events offline and are closed
    before the network returns: the next page sends both tabs' events, once.
    (With one stored queue for every tab, the last tab to write kept its own.)"""
    context = browser.new_context()
    context.set_default_timeout(60_000)
    try:
        tabs = [Tab(context.new_page()) for _ in range(2)]
        for tab_ in tabs:
            tab_.page.route("**/v1/events*", lambda route: route.abort("internetdisconnected"))
            open_page(tab_, stack)
            tab_.page.evaluate(
                "Object.defineProperty(navigator, 'onLine', {get: () => false, configurable: true})"
            )
        for n, tab_ in enumerate(tabs):
            tab_.page.evaluate(f'insights.identify("sdk-tab-{n}", {{tab: "{n}"}})')
            tab_.page.click("#buy")
        for tab_ in tabs:
            tab_.wait_until(lambda t=tab_: t.page.evaluate("insights.pending().queued") >= 3)
        for tab_ in tabs:
            tab_.page.close()  # pagehide: offline, so everything stays stored
        after = Tab(context.new_page())
        open_page(after, stack)  # online: it takes both closed tabs' queues
        after.wait_until(lambda: {"sdk-tab-0", "sdk-tab-1"} <= {e["uuid"] for e in after.events()})
        after.wait_until(lambda: stored_queue(after) is None)
        sent = [(e["uuid"], e["type"], e["timestamp"]) for e in after.events()]
        assert len(sent) == len(set(sent))  # each event once
        for n in range(2):
            assert {"identify", "click"} <= {t for u, t, _ in sent if u == f"sdk-tab-{n}"}
    finally:
        context.close()
    close_sessions(stack)
    for n in range(2):
        status, user = read_user(stack, f"sdk-tab-{n}")
        assert status == 200 and user["custom"]["tab"]["value"] == str(n)


def test_a_page_leaves_an_open_tabs_queue_to_it(stack: RunningStack, browser: Browser) -> None:
    """A new page takes only the queues of pages that have gone: an open tab's
    events are sent by that tab, once, not also by the new page."""
    context = browser.new_context()
    context.set_default_timeout(60_000)
    try:
        first = Tab(context.new_page())
        first.page.route("**/v1/events*", lambda route: route.abort("internetdisconnected"))
        open_page(first, stack)
        first.page.evaluate('insights.identify("sdk-open-tab", {role: "first"})')
        first.page.click("#buy")
        first.wait_until(lambda: stored_queue(first) is not None)
        second = Tab(context.new_page())
        open_page(second, stack)
        second.page.evaluate('insights.identify("sdk-second-tab")')
        second.page.click("#buy")
        second.delivered()
        assert {e["uuid"] for e in second.events()} == {"sdk-second-tab"}
        first.page.unroute("**/v1/events*")
        first.page.evaluate("window.dispatchEvent(new Event('online'))")
        first.delivered()
        sent = [(e["uuid"], e["type"], e["timestamp"]) for e in first.events()]
        assert len(sent) == len(set(sent)) and {u for u, _, _ in sent} == {"sdk-open-tab"}
    finally:
        context.close()


# ------------------------------------------- the session timeout (no split)
def test_gaps_just_under_the_timeout_keep_one_session(stack: RunningStack, tab: Tab) -> None:
    """An account with a 10-minute timeout: the SDK holds a burst for minutes,
    yet an event after 9:30 of quiet, and one 7:30 after the page was hidden
    (its events sent at once), arrive while the server holds the session
    open. The page's clock and the stack's move together, the sweeper runs
    every half minute, and the user has one session."""
    account = new_account(stack)
    secret = {"Authorization": f"Bearer {account['secret_key']}"}
    status, _ = stack.request("PATCH", "/v1/account", {"session_timeout_minutes": 10}, secret)
    assert status == 200
    tab.page.add_init_script(  # counts the SDK's requests under way
        "window.__inflight = 0; const f = window.fetch.bind(window);"
        "window.fetch = (...a) => { window.__inflight++;"
        " return f(...a).finally(() => window.__inflight--); };"
    )
    paused_clock(tab, stack, account["write_key"])

    def elapse(seconds: int) -> None:
        """Both clocks on by `seconds`, at most half a minute at a time (the
        stack's first: a request sent in a step arrives up to a step late, so
        the steps right after an event are 1 s); every request answered before
        the stack's clock moves on, and the sweeper run after each step."""
        for step in [30] * (seconds // 30) + [seconds % 30] * bool(seconds % 30):
            assert stack.request("POST", f"/_local/clock?advance={step}")[0] == 200
            tab.page.clock.run_for(step * 1000)
            tab.wait_until(lambda: tab.page.evaluate("window.__inflight === 0"))
            assert stack.request("POST", "/_local/tick")[0] == 200

    def types(n: int) -> list[str]:
        return [e["type"] for e in tab.sent[n]["events"]]

    first_request(tab, "sdk-gaps", "signed in")  # 0:00: at once (a new browser)
    assert remembered(tab)["timeout"] == 10
    elapse(9 * 60 + 30)
    tab.page.click("#buy")  # 9:30, after 9:30 of quiet: at once
    elapse(1)
    assert len(tab.sent) == 2 and types(1) == ["click"]
    tab.page.fill("#name", "a burst")  # 9:31 and 9:50: these wait 4 minutes
    elapse(19)
    tab.page.click("#buy")
    elapse(1 + 219)
    assert len(tab.sent) == 2
    elapse(1)  # 13:31
    assert len(tab.sent) == 3 and types(2) == ["input", "input", "click"]  # typed, changed
    hide(tab.page)  # 13:31: page_hidden, everything at once
    tab.wait_until(lambda: len(tab.sent) == 4)
    elapse(7 * 60 + 30)
    hide(tab.page, "visible")  # 21:01, 7:30 after page_hidden
    tab.page.click("#buy")  # both wait until 21:31 (8 minutes after it), not 25:01
    elapse(29)
    assert len(tab.sent) == 4
    elapse(1)
    assert len(tab.sent) == 5 and types(4) == ["page_visible", "click"]
    hide(tab.page)  # 21:31
    tab.wait_until(lambda: len(tab.sent) == 6)
    for body in tab.sent:  # no event waited past 8 minutes (4/5 of the timeout)
        sent_at = datetime.fromisoformat(body["sent_at"]).timestamp() * 1000
        assert all(sent_at - e["timestamp"] <= 8 * MINUTE_MS for e in body["events"])
    close_sessions(stack)
    status, user = read_user(stack, "sdk-gaps", account["secret_key"])
    assert status == 200, user
    assert user["standard"]["total_sessions"] == 1
    # 0:00 to the last page_hidden, 21:31 (the stack's clock also runs in real time)
    assert 1291 <= user["standard"]["total_session_duration"] <= 1291 + 60
