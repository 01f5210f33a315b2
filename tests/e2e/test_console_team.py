"""The console for a team in a real headless Chromium: people sign in through a real OIDC provider.

`insights serve` in a subprocess and oidc-provider-mock in this process (its
own login page, registered client, exact redirect URI, nonce required). One
walk: an admin, an editor and a viewer each sign in through the provider's
page and see exactly the pages and controls of their role; the API refuses
them the rest with 403 from the same browser; a viewer signs out; a person
from another domain is refused; a session expires; the admin reads in the
audit log what the walk did. Screenshots go to tests/output/console/team-*.png.

Nothing here fakes the flow: the browser follows the real redirects, posts
the provider's form and carries the real cookies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.e2e.test_browser_sdk import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_console import set_condition
from tests.e2e.test_local_stack import RunningStack
from tests.team import provider as provider_mock

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output" / "console"
DESKTOP = {"width": 1280, "height": 800}
PEOPLE = {
    "ann@acme.com": {"name": "Ann Admin", "groups": ["insights-admins"]},
    "ed@acme.com": {"name": "Ed Editor", "groups": ["growth"]},
    "vi@acme.com": {"name": "Vi Viewer", "groups": []},
    "mal@evil.example": {"name": "Mal", "groups": ["insights-admins"]},
}
NAV = {
    "admin": ["Overview", "Users", "Segments", "Imports", "Settings", "Team"],
    "editor": ["Overview", "Users", "Segments", "Imports", "Settings"],
    "viewer": ["Overview", "Users", "Segments", "Imports"],
}
RULES = {"attribute": "custom.plan", "op": "equals", "value": "VIP"}


@pytest.fixture(scope="module")
def idp() -> Iterator[provider_mock.Provider]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with provider_mock.running() as running:
        for sub, person in PEOPLE.items():
            running.user(sub, email=sub, **person)
        yield running


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, idp: provider_mock.Provider
) -> Iterator[RunningStack]:
    running = RunningStack(tmp_path_factory.mktemp("team-stack"))
    try:
        redirect_uri = f"{running.url}/v1/team/callback"
        client_id, client_secret = idp.register(redirect_uri)
        status, body = admin_api(
            running,
            "PUT",
            "/v1/team/provider",
            {
                "issuer": idp.issuer,
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uri": redirect_uri,
                "allowed_domains": ["acme.com"],
                "group_claim": "groups",
                "role_groups": {"admin": ["insights-admins"], "editor": ["growth"]},
                "default_role": "viewer",
                "session_minutes": 15,
            },
        )
        assert status == 200, body
        status, body = admin_api(running, "POST", "/v1/segments", {"name": "VIP", "rules": RULES})
        assert status == 201, body
        running.state["segment"] = body["id"]
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


def admin_api(stack: RunningStack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    secret = stack.state["account"]["secret_key"]
    return stack.request(method, path, body, headers={"Authorization": f"Bearer {secret}"})


def shot(page: Page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"team-{name}.png"), full_page=True)


class Watch:
    """What the browser would show a developer as an error on the console's origin:
    script errors, console errors, answers of 400 or more (each must be expected)."""

    def __init__(self, page: Page, origin: str) -> None:
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("console", self._console)
        page.on("response", self._response)
        self.origin = origin

    def _console(self, message: Any) -> None:
        if message.type == "error" and message.location.get("url", "").startswith(self.origin):
            self.problems.append(message.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400 and response.url.startswith(self.origin):
            path = urlsplit(response.url).path
            self.problems.append(f"{response.request.method} {path} -> {response.status}")

    def expect_only(self, *allowed: str) -> None:
        """Every problem seen is one of these answers (or the console's note of one)."""
        unexpected = [
            p
            for p in self.problems
            if p not in allowed and not (p.startswith("Failed to load resource") and allowed)
        ]
        assert unexpected == [], unexpected
        self.problems.clear()


def person(browser: Browser, stack: RunningStack) -> tuple[BrowserContext, Page, Watch]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())  # the IdP's CSS
    page = context.new_page()
    return context, page, Watch(page, stack.url)


def sign_in(page: Page, stack: RunningStack, idp: provider_mock.Provider, sub: str) -> None:
    """From the team's sign-in link, through the provider's own login page, back signed in."""
    account = stack.state["account"]["account_id"]
    page.goto(f"{stack.url}/#/signin/{account}")
    expect(page.locator("#account-id")).to_have_value(account)
    page.get_by_role("button", name="Sign in with your company account").click()
    page.wait_for_url(f"{idp.issuer}/oauth2/authorize**")
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{stack.url}/**")


def fetch(page: Page, method: str, path: str, body: Any = None) -> int:
    """A call from the console's page with its cookie and header, as its own code makes."""
    script = """async ([method, path, body]) => {
      const headers = {"X-Insights-Console": "1", "Content-Type": "application/json"};
      const init = {method, headers};
      if (body !== null) init.body = JSON.stringify(body);
      return (await fetch(path, init)).status;
    }"""
    return int(page.evaluate(script, [method, path, body]))


def nav_links(page: Page) -> list[str]:
    return page.get_by_role("navigation", name="Console").get_by_role("link").all_inner_texts()


def test_a_team_signs_in_with_roles_and_the_audit_log_shows_it(
    stack: RunningStack, idp: provider_mock.Provider, browser: Browser
) -> None:
    segment = stack.state["segment"]
    account = stack.state["account"]["account_id"]

    # --- the admin: through the provider's page, then every page of the role
    context, page, watch = person(browser, stack)
    page.goto(f"{stack.url}/#/signin/{account}")
    shot(page, "sign-in")
    sign_in(page, stack, idp, "ann@acme.com")
    expect(page.locator("[data-credential]")).to_contain_text("Ann Admin · admin · SSO")
    assert nav_links(page) == NAV["admin"]
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads the session
    assert page.evaluate("sessionStorage.length") == 0  # no key in this tab
    assert "code=" not in page.url and "state=" not in page.url
    expect(page.locator("main")).not_to_contain_text("Loading")
    shot(page, "admin-overview")
    page.goto(f"{stack.url}/#/team")
    expect(page.locator("[data-signin-link]")).to_have_text(f"{stack.url}/#/signin/{account}")
    shot(page, "admin-team")
    expect(page.locator("#tp-client_secret-help")).to_contain_text("Stored (never shown)")
    page.fill("#member-email", "ed2@acme.com")
    page.select_option("#member-role", "editor")
    page.get_by_role("button", name="Assign the role").click()
    expect(page.locator("table.members-table")).to_contain_text("ed2@acme.com")
    page.goto(f"{stack.url}/#/settings")
    expect(page.locator("[data-credential-in-use]")).to_contain_text("ann@acme.com")
    expect(page.locator("[data-key-rotation]")).to_be_visible()  # a session cannot rotate it
    expect(page.get_by_role("button", name="Rotate the secret key…")).to_have_count(0)
    assert fetch(page, "POST", "/v1/account/secret-key") == 403
    watch.expect_only("POST /v1/account/secret-key -> 403")
    context.close()

    # --- the editor: segments and imports, no team, no account settings
    context, page, watch = person(browser, stack)
    sign_in(page, stack, idp, "ed@acme.com")
    expect(page.locator("[data-credential]")).to_contain_text("Ed Editor · editor · SSO")
    assert nav_links(page) == NAV["editor"]
    page.goto(f"{stack.url}/#/segments/new")
    page.fill("#segment-name", "Editors' pick")
    set_condition(page, "0.0", {"attribute": "custom.plan", "op": "equals", "value": "gold"})
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", name="Editors' pick")).to_be_visible()
    page.goto(f"{stack.url}/#/imports")
    expect(page.locator("#import-file")).to_be_visible()
    page.goto(f"{stack.url}/#/settings")
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()
    expect(page.get_by_role("heading", name="Keys")).to_have_count(0)
    expect(page.locator("table.kv")).not_to_contain_text("Identity verification")
    expect(page.locator("table.kv")).not_to_contain_text("checking")
    shot(page, "editor-settings")
    page.goto(f"{stack.url}/#/team")  # not offered, and not shown when typed
    expect(page.get_by_role("heading", name="Team")).to_have_count(0)
    refused = {
        ("GET", "/v1/audit"): 403,
        ("PATCH", "/v1/account"): 403,
        ("DELETE", f"/v1/users/{account}-someone"): 403,
        ("PUT", "/v1/team/members/x%40acme.com"): 403,
    }
    for (method, path), status in refused.items():
        body = {} if method in ("PATCH", "PUT") else None
        assert fetch(page, method, path, body) == status, (method, path)
    watch.expect_only(*(f"{m} {urlsplit(p).path} -> 403" for m, p in refused))
    editor = context  # kept for the expiry below

    # --- the viewer: reads only; no control it cannot use; the API agrees
    context, page, watch = person(browser, stack)
    sign_in(page, stack, idp, "vi@acme.com")
    expect(page.locator("[data-credential]")).to_contain_text("Vi Viewer · viewer · SSO")
    assert nav_links(page) == NAV["viewer"]
    page.goto(f"{stack.url}/#/segments")
    expect(page.get_by_role("link", name="VIP")).to_be_visible()
    expect(page.get_by_role("link", name="New segment")).to_have_count(0)
    page.goto(f"{stack.url}/#/segments/{segment}")
    expect(page.locator("[data-read-only]")).to_be_visible()
    # the preview is a read: a viewer tries rules
    expect(page.locator("aside.preview [data-preview-count]")).to_be_visible()
    for name in ("Save changes", "Delete…", "Save segment"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("button", name="Export members (CSV)")).to_be_visible()
    shot(page, "viewer-segment")
    page.goto(f"{stack.url}/#/imports")
    expect(page.get_by_role("heading", name="Recent imports")).to_be_visible()
    expect(page.locator("#import-file")).to_have_count(0)
    viewer_refused = {
        ("POST", "/v1/segments"): {"name": "x", "rules": RULES},
        ("DELETE", f"/v1/segments/{segment}"): None,
        ("POST", "/v1/imports"): {"filename": "x.csv"},
        ("GET", "/v1/integrations/salesforce/status"): None,
    }
    for (method, path), body in viewer_refused.items():
        assert fetch(page, method, path, body) == 403, (method, path)
    assert fetch(page, "GET", f"/v1/segments/{segment}/count") == 200
    watch.expect_only(*(f"{m} {p} -> 403" for m, p in viewer_refused))
    # sign-out: the session ends on the server, not only in the page
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#account-id")).to_have_value(account)  # remembered: not a secret
    page.reload()
    expect(page.get_by_role("button", name="Sign in with your company account")).to_be_visible()
    assert fetch(page, "GET", "/v1/users") == 401
    watch.expect_only("GET /v1/users -> 401")
    shot(page, "signed-out")
    context.close()

    # --- someone from another domain (in the admins' group at the IdP): refused
    context, page, watch = person(browser, stack)
    sign_in(page, stack, idp, "mal@evil.example")
    expect(page.get_by_role("alert")).to_contain_text("Your email's domain is not one")
    expect(page.locator("nav")).to_have_count(0)
    assert fetch(page, "GET", "/v1/account") == 401
    watch.expect_only("GET /v1/account -> 401")
    shot(page, "other-domain")
    context.close()

    # --- the editor's session expires (15 minutes): the next call signs the tab out
    assert stack.request("POST", "/_local/clock?advance=960")[0] == 200
    page = editor.pages[0]
    watch = Watch(page, stack.url)
    page.goto(f"{stack.url}/#/segments")  # the page's first call is refused: 401
    expect(page.get_by_role("alert")).to_contain_text("Your session has expired")
    expect(page.locator("#account-id")).to_be_visible()
    shot(page, "expired")
    assert all("-> 401" in p or "401" in p for p in watch.problems), watch.problems
    editor.close()

    # --- the admin signs in again and reads the audit log of the walk
    context, page, watch = person(browser, stack)
    sign_in(page, stack, idp, "ann@acme.com")
    page.get_by_role("link", name="Team").click()
    audit = page.locator("table.audit")
    expect(audit.locator("tbody tr").first).to_be_visible()
    text = audit.inner_text()
    for expected in (
        "mal@evil.example",
        "domain_not_allowed",
        "/v1/team/members/ed2%40acme.com",  # the admin's assignment
        "/v1/account/secret-key",  # the admin's refused rotation
        "/v1/segments",  # the editor's save, the viewer's refused delete
        f"/v1/segments/{segment}",
        "/v1/team/signout",
        "127.0.0.0/24",  # where from: the network, not the address
    ):
        assert expected in text, expected
    assert "127.0.0.1" not in text
    rows = page.evaluate(
        """() => [...document.querySelectorAll("table.audit tbody tr")].map((r) =>
          [...r.children].map((c) => c.innerText))"""
    )
    seen = {(r[1], r[2], " ".join(r[3].split(" ")[:2]), r[4]) for r in rows}
    assert ("vi@acme.com", "viewer", f"DELETE /v1/segments/{segment}", "403") in seen
    assert ("ed@acme.com", "editor", "POST /v1/segments", "201") in seen
    assert ("mal@evil.example", "—", "sign in", "403") in seen
    shot(page, "audit")
    watch.expect_only()
    api_rows = admin_api(stack, "GET", "/v1/audit?limit=100")[1]["entries"]
    assert json.dumps(api_rows).count('"sign_in"') >= 6  # four people, two of them twice
    context.close()
