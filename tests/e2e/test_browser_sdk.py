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
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.e2e.relay import Relay
from tests.e2e.test_local_stack import RunningStack

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output"
CHROMIUM = os.environ.get("INSIGHTS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAST = {"flush-interval": "300", "retry-base": "200", "debug": "true"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = RunningStack(tmp_path_factory.mktemp("browser-stack"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"chromium not found at {CHROMIUM}: apt-get install chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


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
    open_page(tab, stack, heartbeat="0.3")
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
    assert tab.page.evaluate("localStorage.length") == 0
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
    tab.page.click("#buy")
    assert tab.page.evaluate("insights.pending().queued") >= 3
    tab.page.click("#away")  # navigate: pagehide
    tab.page.wait_for_url("**/_local/health")
    assert tab.sent == []  # nothing went out by fetch
    assert int(tab.page.evaluate("sessionStorage.getItem('beacons')") or 0) >= 1
    deadline = time.monotonic() + 60  # a loaded machine may take a while
    while True:  # the beacon arrives a moment after the navigation
        close_sessions(stack)
        status, user = read_user(stack, "sdk-beacon")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status == 200, user
    assert user["custom"]["role"]["value"] == "leaver"


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
# The SDK's defaults (docs/sdk.md): a request when 20 events wait or 30 s after
# the first, at once when the page is hidden, by beacon on pagehide. The page's
# clock is Playwright's, paused from the start: only run_for moves it.
def paused_clock(tab: Tab, stack: RunningStack, **options: str) -> None:
    start = time.time()
    tab.page.clock.install(time=start)
    tab.page.clock.pause_at(start + 1)
    open_page(tab, stack, policy=True, **options)


def test_a_request_thirty_seconds_after_the_first_event(stack: RunningStack, tab: Tab) -> None:
    paused_clock(tab, stack)
    tab.page.evaluate('insights.identify("sdk-thirty")')
    tab.page.click("#buy")
    tab.page.clock.run_for(10_000)
    tab.page.fill("#name", "typed 10 s later")
    tab.page.clock.run_for(19_000)  # 29 s after the first event
    tab.page.wait_for_timeout(500)  # real time: nothing is on its way either
    assert tab.sent == []
    assert tab.page.evaluate("insights.pending().queued") == 3
    tab.page.clock.run_for(1_000)
    tab.wait_until(lambda: tab.accepted() == 3)
    assert len(tab.sent) == 1  # one request, every event since the first
    assert [e["type"] for e in tab.events()] == ["page_view", "click", "input"]
    assert tab.page.evaluate("insights.pending().queued") == 0


def test_twenty_events_go_at_once_in_one_request(stack: RunningStack, tab: Tab) -> None:
    paused_clock(tab, stack)
    tab.page.evaluate('insights.identify("sdk-twenty")')  # the page view waits with it
    tab.page.evaluate('for (let i = 1; i < 19; i++) insights.track("step " + i)')
    tab.page.clock.run_for(100)
    tab.page.wait_for_timeout(500)
    assert tab.sent == []
    assert tab.page.evaluate("insights.pending().queued") == 19
    tab.page.evaluate('insights.track("step 19")')  # the 20th event
    tab.page.clock.run_for(1)  # no waiting: the flush is due now
    tab.wait_until(lambda: tab.accepted() == 20)
    assert len(tab.sent) == 1 and len(tab.events()) == 20


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
    assert tab.page.evaluate("localStorage.length") == 0  # answered, so not kept
    hide(tab.page, "visible")  # back: the 30 s policy again
    tab.page.clock.run_for(29_000)
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
        page.click("#buy")
        page.close()  # pagehide, then (in Chromium) visibilitychange to hidden
        deadline = time.monotonic() + 30
        while not hop.requests("POST") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # anything else the closing page sent has arrived by now
        posts = hop.requests("POST")
        assert all(s.status == 200 for s in posts)
        assert len(posts) == 1, [s.body for s in posts]  # one beacon, no second request
        sent = [e["type"] for e in json.loads(posts[0].body or "{}")["events"]]
        assert sent == ["page_view", "identify", "click"]
    finally:
        context.close()
        hop.close()
    close_sessions(stack)
    status, user = read_user(stack, "sdk-closed")
    assert status == 200 and user["custom"]["role"]["value"] == "closer"
