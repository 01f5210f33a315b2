"""The console in a real headless Chromium against the local stack with demo data.

One walk through the console as a user would: sign in with the secret key,
the overview's charts and catalogue, a user's page, the spec's four segment
questions built in the builder (each count compared with the API's answer
for the same question), an import with bad rows and its error report, the
settings and a secret key rotation; then the same pages at a phone's width.
One test, so `pytest -n` never starts a second stack and demo for it.

A screenshot of every page goes to tests/output/console/; `docs/console/`
holds the README's copies (`INSIGHTS_CONSOLE_DOCS=1` refreshes them).
"""

from __future__ import annotations

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
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.test_browser_sdk import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_local_stack import RunningStack
from tests.test_segments_spec_questions import QUESTIONS

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output" / "console"
DOCS = ROOT / "docs" / "console"
DEMO_USERS = 40
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"chromium not found at {CHROMIUM}: apt-get install chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def seed(stack: RunningStack) -> None:
    """`insights demo` (two weeks of traffic) plus a few users from weeks before."""
    env = {**os.environ, "INSIGHTS_HOME": str(stack.home)}
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
        {"uuid": uuid, "timestamp": (now - days * DAY).isoformat(), "properties": {"plan": plan}}
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


# Answers the pages expect and show: the preview refusing a rule while it is
# typed, and the status of integrations this account has not configured.
EXPECTED_ERRORS = {
    (400, "/v1/segments/preview"),
    (404, "/v1/integrations/salesforce"),
    (404, "/v1/idp/oidc/config"),
}


def failed(response: Any, errors: list[str]) -> None:
    path = urlsplit(response.url).path
    if response.status >= 400 and (response.status, path) not in EXPECTED_ERRORS:
        errors.append(f"{response.request.method} {path} -> {response.status}")


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
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("response", lambda r: failed(r, errors))
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

    # --- phone width: the same pages, navigated through the menu
    page.set_viewport_size({"width": 390, "height": 844})
    for name, link in (("overview", "Overview"), ("segments", "Segments")):
        page.get_by_role("button", name="Menu").click()
        page.get_by_role("navigation", name="Console").get_by_role("link", name=link).click()
        page.wait_for_timeout(500)
        usable(page)
        shot(page, f"phone-{name}")
    page.goto(f"{stack.url}/#/segments/{ids['recently_vip']}")
    preview_count(page)
    usable(page)
    shot(page, "phone-segment")
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
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("uuid,first_seen,last_seen")
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["churned-a", "churned-b"]
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
