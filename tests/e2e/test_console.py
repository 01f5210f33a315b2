"""The console in a real headless Chromium against the local stack with demo data.

One walk through the console as a user would (sign in with the secret key,
the overview's charts and catalogue, a user's page, the spec's four segment
questions built in the builder, each count compared with the API's answer
for the same question, an import with bad rows and its error report, the
settings and a secret key rotation), then one test per thing users tripped
on (issue 25: paging, Settings' errors, the builder's live preview and its
save), and every screen at a laptop's and a phone's size with the layout
checks a person would make by looking. The tests share one stack and demo
per process; none of them depends on another having run.

No page may log an error in the browser's console or get an answer of 400 or
more: a half-typed rule or an integration not set up is a normal state.

A screenshot of every screen goes to tests/output/console/ (`desktop-*.png`
at 1280 by 800, `phone-*.png` at 390 by 844, and the walk's own); `docs/console/`
holds the README's copies (`INSIGHTS_CONSOLE_DOCS=1` refreshes them).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.e2e.served import RunningStack
from tests.segments.test_segments_spec_questions import QUESTIONS

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output" / "console"
DOCS = ROOT / "docs" / "console"
DEMO_USERS = 40
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DOC_SHOTS = {"overview", "segment-stopped_a_month_ago", "user", "imports", "phone-segment"}
DAY = timedelta(days=1)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
# Users the demo's two weeks may lack, so each question has members:
# uuid -> [(days ago, plan)], one session each.
SEEDED = {
    "churned-a": [(45, "free"), (40, "free")],  # active until a month ago, then stopped
    "churned-b": [(50, "free"), (35, "free")],
    "oneoff-a": [(20, "free")],  # signed up once, never came back
    "newbie-a": [(3, "free")],  # signed up last week
    "upgrader-a": [(20, "free"), (2, "VIP")],  # recently upgraded to VIP
}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = RunningStack(tmp_path_factory.mktemp("console-stack"))
    try:
        seed(running)
        yield running
    finally:
        output = running.stop()
    problem = output.find("Traceback")
    assert problem < 0, output[problem : problem + 5000]


def seed(stack: RunningStack) -> None:
    """`insights demo` (two weeks of traffic) plus a few users from weeks before."""
    env = stack.env
    subprocess.run(
        [sys.executable, "-m", "insights.cli", "demo", "--users", str(DEMO_USERS), "--json"],
        cwd=stack.home,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    status, _ = api(stack, "PATCH", "/v1/account", {"backfill_days": 90})
    assert status == 200
    now = datetime.now(UTC)
    events = [
        {
            "uuid": uuid,
            "timestamp": (now - days * DAY).isoformat(),
            "user_properties": {"plan": plan},
        }
        for uuid, sessions in SEEDED.items()
        for days, plan in sessions
    ]
    status, sent = stack.request(
        "POST",
        "/v1/events",
        {"context": {"ip": "81.2.69.160", "user_agent": FIREFOX}, "events": events},
        headers={"X-Insights-Key": stack.state["account"]["write_key"]},
    )
    assert status == 200 and sent["accepted"] == len(events), sent
    for path in ("/_local/clock?advance=1860", "/_local/tick"):
        assert stack.request("POST", path)[0] == 200
    for uuid in SEEDED:
        assert api(stack, "GET", f"/v1/users/{uuid}")[0] == 200, uuid


def api(stack: RunningStack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    secret = stack.state["account"]["secret_key"]
    return stack.request(method, path, body, headers={"Authorization": f"Bearer {secret}"})


def shot(page: Page, name: str, focus: Any = None) -> Path:
    """A full-page screenshot in tests/output/console (and docs/console when asked)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("INSIGHTS_CONSOLE_DOCS") and name in DOC_SHOTS:
        # The README's copies: one small screen each (a few hundred KB in all)
        viewport = page.viewport_size
        DOCS.mkdir(parents=True, exist_ok=True)
        if viewport and viewport["width"] > 1024:
            page.set_viewport_size({"width": 1024, "height": 720})
        if focus is not None:
            focus.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(DOCS / f"{name}.png"))
        if viewport:
            page.set_viewport_size(viewport)
    return path


def watch(page: Page) -> list[str]:
    """Everything the browser would show a developer as an error: script errors,
    console errors (a failed request is one: "Failed to load resource") and
    answers of 400 or more."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def failed(response: Any) -> None:
        if response.status >= 400:
            path = urlsplit(response.url).path
            errors.append(f"{response.request.method} {path} -> {response.status}")

    page.on("response", failed)
    return errors


def signed_in(
    browser: Browser, stack: RunningStack, viewport: dict[str, int], route: str
) -> tuple[BrowserContext, Page, list[str]]:
    """A tab signed in with the account's current key, at `#/route`."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(30_000)
    secret = stack.state["account"]["secret_key"]
    context.add_init_script(f"sessionStorage.setItem('insights.secretKey', {json.dumps(secret)})")
    page = context.new_page()
    errors = watch(page)
    page.goto(f"{stack.url}/#/{route}")
    expect(page.locator("main#main")).to_be_visible()
    return context, page, errors


def hold(page: Page, pattern: str, method: str) -> list[Route]:
    """Requests to `pattern` wait until the test lets them go (a slow network)."""
    held: list[Route] = []

    def handle(route: Route) -> None:
        if route.request.method == method:
            held.append(route)
        else:
            route.continue_()

    page.route(pattern, handle)
    return held


def wait_for(page: Page, held: list[Route], count: int = 1) -> None:
    for _ in range(200):
        if len(held) >= count:
            return
        page.wait_for_timeout(25)  # route handlers run while Playwright waits
    raise AssertionError(f"{len(held)} requests held, expected {count}")


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Console").get_by_role("link", name=name).click()


def usable(page: Page) -> None:
    """What makes a rendered page unusable: a script error, or content wider than the screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport and width <= viewport["width"], f"{width}px wide on a {viewport} screen"


# ------------------------------------------------------------- the builder
def by_id(page: Page, element_id: str) -> Any:
    return page.locator(f'[id="{element_id}"]')


def set_condition(page: Page, path: str, rule: dict[str, Any]) -> None:
    """Fill the condition at `path` (e.g. "0.1") the way a user would."""
    cid = f"c-{path}"
    attribute = rule["attribute"]
    if attribute.startswith("custom."):
        by_id(page, f"{cid}-attr").select_option("custom.")
        by_id(page, f"{cid}-custom").fill(attribute.removeprefix("custom."))
    else:
        by_id(page, f"{cid}-attr").select_option(attribute)
    by_id(page, f"{cid}-op").select_option(rule["op"])
    value = rule.get("value")
    if rule["op"] in ("within_last", "not_within_last", "changed_within"):
        amount, unit = value[:-1], value[-1]
        by_id(page, f"{cid}-amount").fill(amount)
        by_id(page, f"{cid}-unit").select_option(unit)
        if "to" in rule:
            by_id(page, f"{cid}-to").fill(str(rule["to"]))
    elif value is not None:
        by_id(page, f"{cid}-value").fill(str(value))


def conditions_of(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return rules.get("all", [rules])


def preview_count(page: Page) -> int:
    preview = page.locator("aside.preview")
    expect(preview).to_have_attribute("aria-busy", "false", timeout=30_000)
    return int(preview.locator("[data-preview-count]").inner_text().replace(",", ""))


def build_question(page: Page, stack: RunningStack, name: str, rules: dict[str, Any]) -> str:
    page.goto(f"{stack.url}/#/segments/new")
    by_id(page, "segment-name").fill(name.replace("_", " "))
    wanted = conditions_of(rules)
    for index, rule in enumerate(wanted):
        if index:
            page.get_by_role("button", name="Add condition").first.click()
        set_condition(page, f"0.{index}", rule)
    shown = json.loads(page.locator("details.json pre").text_content() or "{}")
    assert shown == {"all": wanted}, shown  # the builder made exactly the spec's rules
    counted = preview_count(page)
    status, answer = api(stack, "POST", "/v1/segments/preview", {"rules": rules, "limit": 1})
    assert status == 200
    assert counted == answer["count"] > 0, (name, counted, answer)
    plan = page.locator("p.plan").inner_text()  # the API's plan, in words
    words = "Read from the " if answer["plan"]["path"] == "index" else "Scanned every visible user"
    assert plan.startswith(words), (plan, answer["plan"])
    shot(page, f"segment-{name}")
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url("**/#/segments/seg_*")
    segment_id = page.url.rsplit("/", 1)[1]
    status, saved = api(stack, "GET", f"/v1/segments/{segment_id}/count")
    assert status == 200 and saved["count"] == counted, (name, saved)
    return segment_id


# ------------------------------------------------------------------ the walk
def test_the_console_end_to_end(stack: RunningStack, browser: Browser, tmp_path: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors = watch(page)
    secret = stack.state["account"]["secret_key"]

    # --- sign in: a wrong key is refused, the right one is kept in sessionStorage only
    page.goto(stack.url + "/")
    shot(page, "sign-in")
    page.fill("#secret-key", stack.state["account"]["write_key"])
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not a secret key")
    page.fill("#secret-key", secret)
    page.click("button[type=submit]")
    expect(page.get_by_role("navigation", name="Console")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('insights.secretKey')") == secret
    assert page.evaluate("localStorage.length") == 0 and page.evaluate("document.cookie") == ""
    assert secret not in page.url

    # --- overview
    overview(page, stack)

    # --- the spec's four questions in the builder
    ids = {name: build_question(page, stack, name, rules) for name, rules in QUESTIONS.items()}
    nav(page, "Segments")
    for segment_id in ids.values():
        expect(page.locator(f'[data-count="{segment_id}"]')).not_to_have_text("…")
    usable(page)
    shot(page, "segments")

    # --- users: the search, then one user's page with its segments
    users(page, stack)
    edit_and_delete(page, stack, ids["stopped_a_month_ago"])

    # --- an import with bad rows and its error report
    imports(page, stack, tmp_path)

    # --- settings and the secret key's rotation
    settings(page, stack)
    assert errors == [], errors
    context.close()


def overview(page: Page, stack: RunningStack) -> None:
    status, stats = api(stack, "GET", "/v1/stats?days=30")
    assert status == 200, stats
    figure = page.locator('[data-figure="users"]')
    expect(figure).to_have_text(f"{stats['users']:,}")
    charts = page.locator("figure.chart")
    expect(charts).to_have_count(3)
    bars = page.locator("figure.chart").first.locator("rect.bar")
    assert bars.count() == 30
    assert sum(d["new_users"] for d in stats["days"]) > 0
    expect(page.locator("table.catalogue")).to_contain_text("plan")
    usable(page)
    shot(page, "overview")


def users(page: Page, stack: RunningStack) -> None:
    nav(page, "Users")
    expect(page.locator("table.users tbody tr").first).to_be_visible()
    page.fill("#user-prefix", "churned-")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.users tbody th a")
    expect(rows).to_have_text(["churned-a", "churned-b"])
    usable(page)
    shot(page, "users")
    status, expected = api(stack, "GET", "/v1/users/churned-a")
    assert status == 200
    rows.first.click()
    expect(page.locator("h1.uuid")).to_have_text("churned-a")
    expect(page.locator("table.kv")).to_contain_text(str(expected["standard"]["total_sessions"]))
    custom = page.locator("table.custom")
    expect(custom).to_contain_text("plan")
    expect(custom).to_contain_text(expected["custom"]["plan"]["source"])
    expect(page.locator("ul.segments-of")).to_have_text("stopped a month ago")
    usable(page)
    shot(page, "user")


def edit_and_delete(page: Page, stack: RunningStack, segment_id: str) -> None:
    page.goto(f"{stack.url}/#/segments/{segment_id}")
    by_id(page, "segment-description").fill("edited in the console")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("p.ok")).to_contain_text("Saved")
    assert api(stack, "GET", f"/v1/segments/{segment_id}")[1]["description"] == (
        "edited in the console"
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Export members (CSV)").click()
    header, *rows = csv.reader(io.StringIO(Path(download.value.path()).read_text()))
    assert header[:3] == ["uuid", "first_seen", "last_seen"] and "custom.plan" in header
    members = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert sorted(members) == ["churned-a", "churned-b"]
    status, churned = api(stack, "GET", "/v1/users/churned-a")
    assert status == 200
    assert members["churned-a"]["custom.plan"] == churned["custom"]["plan"]["value"]
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("button", name="Really delete").click()
    page.wait_for_url("**/#/segments")
    assert api(stack, "GET", f"/v1/segments/{segment_id}")[0] == 404


def imports(page: Page, stack: RunningStack, tmp_path: Path) -> None:
    upload = tmp_path / "crm.csv"
    upload.write_text(
        "uuid,seats,Tier,updated\n"
        "churned-a,3,gold,2026-11-01\n"
        "churned-b,lots,silver,2026-11-01\n"  # row 3: seats is not a number
        ",2,bronze,2026-11-01\n"  # row 4: no uuid
    )
    nav(page, "Imports")
    page.set_input_files("#import-file", str(upload))
    expect(page.locator("table.mapping tbody tr")).to_have_count(4)
    page.select_option('[aria-label="Type of seats"]', "number")
    page.fill('[aria-label="Attribute name for Tier"]', "tier")
    page.select_option('[aria-label="Type of updated"]', "date")
    page.get_by_role("button", name="Upload and import").click()
    job = page.locator("form.new-import .job")
    expect(job).to_have_attribute("data-status", "partially_succeeded", timeout=60_000)
    expect(job.locator("[data-imported]")).to_have_text("1")
    expect(job.locator("[data-rejected]")).to_have_text("2")
    report = job.locator("table.report-table")
    expect(report).to_contain_text("not a number")
    expect(report.locator("tbody tr")).to_have_count(2)
    expect(page.locator("table.jobs")).to_contain_text("crm.csv")
    status, user = api(stack, "GET", "/v1/users/churned-a")
    assert status == 200
    assert user["custom"]["seats"]["value"] == 3 and user["custom"]["tier"]["value"] == "gold"
    usable(page)
    shot(page, "imports", focus=page.locator("form.new-import fieldset table.mapping"))


def settings(page: Page, stack: RunningStack) -> None:
    old = stack.state["account"]["secret_key"]
    nav(page, "Settings")
    expect(page.locator("table.kv")).to_contain_text("imports/")
    protected = page.get_by_label("Protected attributes", exact=False)
    expect(protected).to_have_value("idp.*")
    protected.fill("idp.*, billing.*")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("form.settings .ok")).to_contain_text("Saved")
    status, account = api(stack, "GET", "/v1/account")
    assert status == 200 and account["settings"]["protected_attributes"] == ["idp.*", "billing.*"]
    page.get_by_role("button", name="Rotate the secret key…").click()
    page.get_by_role("button", name="Rotate now").click()
    new = page.locator("[data-new-secret-key]").inner_text()
    assert new.startswith("sk_") and new != old
    assert page.evaluate("sessionStorage.getItem('insights.secretKey')") == new
    assert stack.request("GET", "/v1/account", headers={"Authorization": f"Bearer {old}"})[0] == 401
    status, _ = stack.request("GET", "/v1/account", headers={"Authorization": f"Bearer {new}"})
    assert status == 200
    stack.state["account"]["secret_key"] = new  # the rest of the walk uses the new key
    usable(page)
    shot(page, "settings")
    nav(page, "Overview")
    expect(page.locator('[data-figure="users"]')).to_be_visible()  # the new key works


# ------------------------------------------------- issue 25: paging (11)
def test_a_quick_second_click_on_next_page_keeps_caption_and_rows_together(
    stack: RunningStack, browser: Browser
) -> None:
    status, first = api(stack, "GET", "/v1/users?limit=25")
    assert status == 200 and first["next_cursor"], "the demo has more than one page of users"
    status, second = api(stack, "GET", f"/v1/users?limit=25&cursor={first['next_cursor']}")
    assert status == 200
    context, page, errors = signed_in(browser, stack, DESKTOP, "users")
    rows = page.locator("table.users tbody th a")
    caption = page.locator("table.users caption")
    expect(rows).to_have_text([u["uuid"] for u in first["users"]])
    expect(caption).to_have_text("Users, by uuid, page 1")
    held = hold(page, "**/v1/users?*", "GET")  # page 2 takes its time
    following = page.get_by_role("button", name="Next page")
    following.click()
    wait_for(page, held)
    following.click(force=True)  # the quick second click, while page 2 loads
    page.wait_for_timeout(400)
    for route in held:
        route.continue_()
    page.unroute("**/v1/users?*")
    expect(rows).to_have_text([u["uuid"] for u in second["users"]])
    expect(caption).to_have_text("Users, by uuid, page 2")
    page.get_by_role("button", name="Previous page").click()
    expect(rows).to_have_text([u["uuid"] for u in first["users"]])
    expect(caption).to_have_text("Users, by uuid, page 1")
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
    assert errors == [], errors
    context.close()


# ------------------------------------------ issue 25: Settings' status (12)
def test_settings_shows_integrations_not_set_up_without_an_error(
    stack: RunningStack, browser: Browser
) -> None:
    assert api(stack, "POST", "/v1/account/identity/secret")[0] == 201
    assert api(stack, "PATCH", "/v1/account/identity", {"verification": True})[0] == 200
    try:
        context, page, errors = signed_in(browser, stack, DESKTOP, "settings")
        table = page.locator("section[aria-labelledby=integrations] table")
        for label, text in (
            ("Salesforce", "not connected"),
            ("OIDC sign-in", "not configured"),
            ("SCIM (IdP provisioning)", "no token issued"),
            ("Identity verification", "on, secret created"),
        ):
            expect(table.locator("tr", has_text=label).locator("td")).to_contain_text(text)
        page.wait_for_timeout(300)
        assert errors == [], errors
        context.close()
    finally:
        api(stack, "PATCH", "/v1/account/identity", {"verification": False})


# ------------------------------------------ issue 25: the live preview (13)
def complete(rule: dict[str, Any]) -> bool:
    """A condition as a user finishes it: a named attribute and a value where one is due."""
    if "all" in rule or "any" in rule:
        return all(complete(r) for r in rule.get("all", rule.get("any", [])))
    if "not" in rule:
        return complete(rule["not"])
    value = rule.get("value")
    return (
        rule["attribute"] != "custom."
        and value != ""
        and (not isinstance(value, list) or "" not in value)
    )


def test_the_preview_counts_only_rules_that_are_complete(
    stack: RunningStack, browser: Browser
) -> None:
    context, page, errors = signed_in(browser, stack, DESKTOP, "segments/new")
    by_id(page, "segment-name").fill("typed step by step")
    sent: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            sent.append(json.loads(r.post_data or "{}")["rules"])
            if urlsplit(r.url).path == "/v1/segments/preview"
            else None
        ),
    )
    preview_count(page)  # the first condition is complete from the start
    waiting = page.locator("aside.preview [data-waiting]")
    by_id(page, "c-0.0-attr").select_option("custom.")
    expect(waiting).to_have_text(
        "Condition 1 needs the custom attribute's name; the count follows when it is complete."
    )
    expect(page.locator("li.condition.unfinished")).to_have_count(1)
    by_id(page, "c-0.0-custom").press_sequentially("plan", delay=60)
    by_id(page, "c-0.0-op").select_option("equals")
    expect(waiting).to_contain_text("Condition 1 needs a value")
    by_id(page, "c-0.0-value").press_sequentially("VIP", delay=60)
    counted = preview_count(page)
    rules = {"all": [{"attribute": "custom.plan", "op": "equals", "value": "VIP"}]}
    status, answer = api(stack, "POST", "/v1/segments/preview", {"rules": rules, "limit": 1})
    assert status == 200 and counted == answer["count"] > 0
    # a second condition on a number, typed with a word first
    page.get_by_role("button", name="Add condition").first.click()
    by_id(page, "c-0.1-attr").select_option("total_sessions")
    by_id(page, "c-0.1-op").select_option("gte")
    by_id(page, "c-0.1-value").fill("two")
    expect(waiting).to_have_text(
        "Condition 2 has “two”, which is not a number; the count follows when it is complete."
    )
    page.get_by_role("button", name="Save segment").click()  # refused here, not by a 400
    expect(page.locator("form.rules p.error")).to_contain_text("Not saved: Condition 2 has “two”")
    by_id(page, "c-0.1-value").fill("2")
    preview_count(page)
    assert sent and all(complete(rules) for rules in sent), sent
    assert errors == [], errors
    context.close()


def test_a_changed_rule_never_shows_the_previous_count(
    stack: RunningStack, browser: Browser
) -> None:
    def count(sessions: int) -> int:
        rule = {"attribute": "total_sessions", "op": "gte", "value": sessions}
        status, answer = api(stack, "POST", "/v1/segments/preview", {"rules": rule})
        assert status == 200
        return int(answer["count"])

    assert count(1) != count(4), "two rules with different counts"
    context, page, errors = signed_in(browser, stack, DESKTOP, "segments/new")
    by_id(page, "c-0.0-attr").select_option("total_sessions")
    by_id(page, "c-0.0-op").select_option("gte")
    by_id(page, "c-0.0-value").fill("1")
    assert preview_count(page) == count(1)
    held = hold(page, "**/v1/segments/preview", "POST")
    by_id(page, "c-0.0-value").fill("4")
    preview = page.locator("aside.preview")
    # before the new count is asked for and while it is on its way: no figure of the old rules
    for waited in (0, 1):
        if waited:
            wait_for(page, held)
        expect(preview.locator("[data-preview-count]")).to_have_count(0)
        expect(preview.locator("p.plan")).to_have_count(0)
        expect(preview.locator("ul.members")).to_have_count(0)
        expect(preview).to_contain_text("Counting…")
    for route in held:
        route.continue_()
    page.unroute("**/v1/segments/preview")
    assert preview_count(page) == count(4)
    expect(preview).not_to_contain_text("Counting…")
    assert errors == [], errors
    context.close()


def test_a_save_that_answers_after_the_user_left_keeps_them_where_they_went(
    stack: RunningStack, browser: Browser
) -> None:
    context, page, errors = signed_in(browser, stack, DESKTOP, "segments/new")
    by_id(page, "segment-name").fill("saved while away")
    preview_count(page)
    held = hold(page, "**/v1/segments", "POST")
    page.get_by_role("button", name="Save segment").click()
    wait_for(page, held)
    nav(page, "Users")
    expect(page.locator("table.users")).to_be_visible()
    with page.expect_response(lambda r: r.request.method == "POST" and r.status == 201):
        held[0].continue_()
    page.unroute("**/v1/segments")
    page.wait_for_timeout(500)
    assert urlsplit(page.url).fragment == "/users", page.url
    expect(page.locator("h1")).to_have_text("Users")
    saved = [
        s
        for s in api(stack, "GET", "/v1/segments")[1]["segments"]
        if s["name"] == "saved while away"
    ]
    assert len(saved) == 1  # saved all the same
    assert api(stack, "DELETE", f"/v1/segments/{saved[0]['id']}")[0] == 204
    assert errors == [], errors
    context.close()


def test_the_notify_checkbox_saves_and_an_edit_keeps_both_flags(
    stack: RunningStack, browser: Browser
) -> None:
    """Issue 29: a segment marked `notify` from the builder; saving an edit keeps it (and
    `targeting`, set through the API: a PUT replaces, so the page sends both back)."""
    context, page, errors = signed_in(browser, stack, DESKTOP, "segments/new")
    by_id(page, "segment-name").fill("announced")
    preview_count(page)
    box = page.get_by_label("Announce users entering and leaving it")
    expect(box).not_to_be_checked()
    box.check()
    shot(page, "segment-notify", page.locator("form.rules .fields"))
    with page.expect_response(lambda r: r.request.method == "POST" and r.status == 201) as saved:
        page.get_by_role("button", name="Save segment").click()
    segment = saved.value.json()
    assert segment["notify"] is True and segment["targeting"] is False
    body = {"name": "announced", "rules": segment["rules"], "notify": True, "targeting": True}
    assert api(stack, "PUT", f"/v1/segments/{segment['id']}", body)[0] == 200
    page.wait_for_load_state("networkidle")  # no request cut by the reload
    page.reload()
    expect(page.get_by_label("Announce users entering and leaving it")).to_be_checked()
    by_id(page, "segment-description").fill("edited in the console")
    with page.expect_response(lambda r: r.request.method == "PUT" and r.status == 200) as put:
        page.get_by_role("button", name="Save changes").click()
    assert put.value.json()["notify"] is True and put.value.json()["targeting"] is True
    assert api(stack, "DELETE", f"/v1/segments/{segment['id']}")[0] == 204
    assert errors == [], errors
    context.close()


# ----------------------------------- issue 25: every screen, both sizes (14)
# What a person looking at the page would call broken, measured in the page.
LAYOUT_CHECKS = (Path(__file__).parent / "console_layout.js").read_text()


def look(page: Page, name: str) -> list[str]:
    """The layout checks, and a full-page screenshot to look at."""
    page.wait_for_timeout(300)  # fonts and ResizeObservers settle
    problems = [f"{name}: {p}" for p in page.evaluate(LAYOUT_CHECKS)]
    shot(page, name)
    return problems


def test_every_screen_at_a_laptops_and_a_phones_size(
    stack: RunningStack, browser: Browser, tmp_path: Path
) -> None:
    # a segment whose rules use the longest operator and attribute names
    rules = {
        "all": [
            {"attribute": "custom.plan", "op": "changed_within", "value": "7d", "to": "VIP"},
            {"attribute": "avg_time_between_sessions", "op": "gt", "value": 60},
        ]
    }
    status, segment = api(
        stack, "POST", "/v1/segments", {"name": "VIP lately, regular visitors", "rules": rules}
    )
    assert status == 201, segment
    status, listed = api(stack, "GET", "/v1/users?limit=100")
    rich = max(listed["users"], key=lambda u: len(u["custom"]))["uuid"]  # most custom values
    upload = tmp_path / "crm-export.csv"
    upload.write_text(
        "uuid,seats,Customer tier,renewal_date,account_manager_email\n"
        "churned-a,3,gold,2026-11-01,x@example.com\n"
    )
    screens: list[tuple[str, str | None]] = [
        ("overview", "overview"),
        ("users", "users"),
        ("user", f"users/{rich}"),
        ("segments", "segments"),
        ("segment-new", "segments/new"),
        ("segment", f"segments/{segment['id']}"),
        ("imports", "imports"),
        ("imports-mapping", None),
        ("settings", "settings"),
        ("team", "team"),  # the secret key acts as admin: the Team page (docs/console.md)
    ]
    problems: list[str] = []
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(30_000)
        page = context.new_page()
        errors = watch(page)
        page.goto(stack.url + "/")
        expect(page.locator("#secret-key")).to_be_visible()
        problems += look(page, f"{size}-sign-in")
        page.fill("#secret-key", stack.state["account"]["secret_key"])
        page.click("button[type=submit]")
        expect(page.locator("main#main")).to_be_visible()
        for name, route in screens:
            if route is None:  # the mapping form of a file just chosen
                page.set_input_files("#import-file", str(upload))
                expect(page.locator("table.mapping tbody tr")).to_have_count(5)
            else:
                page.goto(f"{stack.url}/#/{route}")
                settle(page, name)
            problems += look(page, f"{size}-{name}")
        if size == "phone":
            page.get_by_role("button", name="Menu").click()
            expect(page.get_by_role("navigation", name="Console")).to_be_visible()
            problems += look(page, "phone-menu")
            page.get_by_role("navigation", name="Console").get_by_role(
                "link", name="Segments"
            ).click()
            page.goto(f"{stack.url}/#/segments/{segment['id']}")
            settle(page, "segment")
            shot(page, "phone-segment")  # the README's picture
        problems += [f"{size}: {error}" for error in errors]
        context.close()
    assert api(stack, "DELETE", f"/v1/segments/{segment['id']}")[0] == 204
    assert problems == [], "\n".join(problems)


def settle(page: Page, name: str) -> None:
    """Wait until the screen shows its data, not its loading lines."""
    expect(page.locator("main [role=status]")).to_have_count(0)
    if name.startswith("segment") and name != "segments":
        expect(page.locator("aside.preview")).to_have_attribute("aria-busy", "false")
    if name == "segments":
        expect(page.locator("td[data-count]").first).not_to_have_text("…")
    if name == "settings":
        expect(page.locator("section[aria-labelledby=integrations]")).not_to_contain_text(
            "checking…"
        )
