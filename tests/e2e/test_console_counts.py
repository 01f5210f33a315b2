"""The console follows a count that answers in parts, showing the count so far.

A served stack whose counts stop after one round of one index item a stream
(COUNT_BUDGET_S = 0, as tests/segments patch it in process), so 40 users take
several requests: the segments list and the builder's preview show "N+" /
"N users so far, counting…" while the rest is held back, then the total,
equal to the API's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.served import RunningStack

pytestmark = pytest.mark.e2e
OUTPUT = Path(__file__).resolve().parents[2] / "tests" / "output" / "console"
USERS = 40
RULES = {"attribute": "last_seen", "op": "within_last", "value": "30d"}
PRELUDE = (
    "from insights.services.segments import counts\n"
    "counts.COUNT_BUDGET_S = 0.0\n"
    "counts.COUNT_ROUND_ITEMS = 1\n"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = RunningStack(tmp_path_factory.mktemp("counts-stack"), prelude=PRELUDE)
    try:
        now = datetime.now(UTC)
        events = [
            {
                "uuid": f"user-{i:02d}",
                "timestamp": (now - timedelta(days=i % 6, hours=1)).isoformat(),
            }
            for i in range(USERS)
        ]
        status, sent = running.request(
            "POST",
            "/v1/events",
            {"events": events},
            headers={"X-Insights-Key": running.state["account"]["write_key"]},
        )
        assert status == 200 and sent["accepted"] == USERS, sent
        for path in ("/_local/clock?advance=1860", "/_local/tick"):
            assert running.request("POST", path)[0] == 200
        yield running
    finally:
        output = running.stop()
    problem = output.find("Traceback")
    assert problem < 0, output[problem : problem + 5000]


def api(stack: RunningStack, method: str, path: str, body: Any = None) -> Any:
    secret = stack.state["account"]["secret_key"]
    status, answer = stack.request(method, path, body, {"Authorization": f"Bearer {secret}"})
    assert status < 300, answer
    return answer


def counted_by_the_api(stack: RunningStack, segment_id: str) -> int:
    answer = api(stack, "GET", f"/v1/segments/{segment_id}/count")
    requests = 1
    while not answer["complete"]:
        answer = api(
            stack, "GET", f"/v1/segments/{segment_id}/count?cursor={answer['next_cursor']}"
        )
        requests += 1
    assert requests > 2  # the budget makes it answer in parts
    return answer["count"]


def page_of(browser: Browser, stack: RunningStack) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    secret = stack.state["account"]["secret_key"]
    context.add_init_script(f"sessionStorage.setItem('insights.secretKey', {json.dumps(secret)})")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on(
        "response", lambda r: errors.append(f"{r.url} -> {r.status}") if r.status >= 400 else None
    )
    return page, errors


class Continuations:
    """Requests that go on with a cursor wait until the test lets them go."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.held: list[Route] = []
        self.holding = True
        page.route("**/v1/segments/**", self._handle)

    def _handle(self, route: Route) -> None:
        request = route.request
        going_on = "cursor=" in request.url or '"cursor"' in (request.post_data or "")
        if going_on and self.holding:
            self.held.append(route)
        else:
            route.continue_()

    def wait(self) -> None:
        for _ in range(400):
            if self.held:
                return
            self.page.wait_for_timeout(25)  # route handlers run while Playwright waits
        raise AssertionError("no continuation was sent")

    def release(self) -> None:
        self.holding = False
        for route in self.held:
            route.continue_()
        self.held.clear()

    def stop(self) -> None:
        self.release()
        self.page.unroute("**/v1/segments/**", self._handle)


def test_the_list_and_the_preview_show_a_count_in_parts_then_the_total(
    stack: RunningStack, browser: Browser
) -> None:
    segment = api(stack, "POST", "/v1/segments", {"name": "Active", "rules": RULES})["id"]
    total = counted_by_the_api(stack, segment)
    assert total == USERS
    page, errors = page_of(browser, stack)

    # The segments list: "N+" while counting, then the total.
    held = Continuations(page)
    page.goto(f"{stack.url}/#/segments")
    held.wait()
    cell = page.locator(f'[data-count="{segment}"]')
    expect(cell).to_have_attribute("data-counting", "true")
    so_far = cell.inner_text()
    assert so_far.endswith("+") and 0 <= int(so_far[:-1]) < total, so_far
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "segments-counting.png"), full_page=True)
    held.release()
    expect(cell).to_have_text(str(total))
    expect(cell).not_to_have_attribute("data-counting", "true")
    held.stop()

    # The builder's preview of the same rules: its first members at once, the
    # count so far (busy), then the total.
    held = Continuations(page)
    page.goto(f"{stack.url}/#/segments/{segment}")
    held.wait()
    preview = page.locator("aside.preview")
    expect(preview).to_have_attribute("aria-busy", "true")
    expect(preview.locator("[data-preview-count]")).to_have_attribute("data-counting", "true")
    expect(preview).to_contain_text("so far, counting…")
    members = preview.locator("ul.members li")
    expect(members.first).to_be_visible()
    shown = members.count()  # what the first request found, up to the limit of 10
    assert 1 <= shown <= 10
    page.screenshot(path=str(OUTPUT / "preview-counting.png"), full_page=True)
    held.release()
    expect(preview).to_have_attribute("aria-busy", "false")
    expect(preview.locator("[data-preview-count]")).to_have_text(str(total))
    expect(preview).not_to_contain_text("counting")
    expect(members).to_have_count(shown)
    # the plan shown sums what every part read: each of the 40 users' index entries
    expect(preview.locator("p.plan")).to_contain_text(f"{total} index entries")
    page.screenshot(path=str(OUTPUT / "preview-counted.png"), full_page=True)
    held.stop()
    assert errors == []


def test_the_list_counts_a_few_segments_at_a_time(stack: RunningStack, browser: Browser) -> None:
    """Each count is a function invocation of up to ~16 s: a long list is counted
    four at a time, not all at once, and every count still arrives."""
    made = [
        api(stack, "POST", "/v1/segments", {"name": f"Active {n}", "rules": RULES})["id"]
        for n in range(9)
    ]
    page, errors = page_of(browser, stack)
    held: list[Route] = []
    most = 0

    def hold(route: Route) -> None:
        nonlocal most
        if route.request.url.split("?")[0].endswith("/count"):
            held.append(route)
            most = max(most, len(held))
        else:
            route.continue_()

    page.route("**/v1/segments/**", hold)
    page.goto(f"{stack.url}/#/segments")
    for _ in range(400):
        if len(held) >= 4:
            break
        page.wait_for_timeout(25)
    page.wait_for_timeout(500)  # time for a fifth to be sent, were it
    assert most == 4, most
    while held:
        held.pop(0).continue_()
        page.wait_for_timeout(50)
        assert len(held) <= 4
    page.unroute("**/v1/segments/**", hold)
    for segment in made:
        expect(page.locator(f'[data-count="{segment}"]')).to_have_text(str(USERS))
    assert errors == []
