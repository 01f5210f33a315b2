"""Segment's own libraries, unchanged but for their host, sending to the local stack.

`segment-analytics-python` (a dev dependency), `@segment/analytics-node` and
analytics.js (`@segment/analytics-next`'s UMD build, in real Chromium) are
installed with npm into the git-ignored `.cache/segment-node/` from
`tests/e2e/segment_node/package-lock.json`, reused while the lock is
unchanged. They batch identify/track/page/screen in their own way and post
them over HTTP to the tracking URL; the users' attributes are read after
their sessions close. Node.js and npm are required: `.ci/run` installs them
when missing, and these tests fail saying so rather than skipping.

analytics.js runs on a page of another origin than the tracking URL, so every
request it makes crosses CORS as on a customer's site. Its requests go
through a plain HTTP hop (`tests/e2e/relay.py`), never Playwright's request
interception, which would answer the CORS preflights itself.
"""

from __future__ import annotations

import base64
import filecmp
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.relay import Relay, Seen
from tests.e2e.test_browser_sdk import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_local_stack import RunningStack, wait_for_user

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
NODE_PROJECT = ROOT / "tests" / "e2e" / "segment_node"
NODE_CACHE = ROOT / ".cache" / "segment-node"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36"
)
CONTEXT = {"ip": "81.2.69.160", "userAgent": CHROME}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = RunningStack(tmp_path_factory.mktemp("segment-sdks"))
    account = running.state["account"]
    status, body = running.request(
        "PATCH",
        "/v1/account",
        {"event_properties_as_attributes": ["plan"]},
        {"Authorization": f"Bearer {account['secret_key']}"},
    )
    assert status == 200, body
    yield running
    output = running.stop()
    assert "Traceback" not in output, output


def track_url(stack: RunningStack) -> str:
    return stack.state["function_urls"]["TrackFunction"].rstrip("/")


def close_sessions_and_read(stack: RunningStack, uuid: str) -> dict[str, Any]:
    status, _ = stack.request("POST", "/_local/clock?advance=1860")
    assert status == 200
    assert stack.request("POST", "/_local/tick")[0] == 200
    return wait_for_user(stack, uuid, stack.state["account"]["secret_key"])


def assert_profile(user: dict[str, Any], name: str, extra: dict[str, Any]) -> None:
    standard = user["standard"]
    assert standard["total_sessions"] == 1
    # track, page and screen are 20 s apart. Once a test has moved the stack's
    # clock on, the SDK's clock looks skewed and each batch is corrected by its
    # own sentAt, so transit time (milliseconds) shows in the duration.
    assert standard["total_session_duration"] == pytest.approx(20.0, abs=1.0)
    assert standard["country"] == "United Kingdom" and standard["browser_name"] == "Chrome"
    values = {k: v["value"] for k, v in user["custom"].items()}
    # plan: identify said free, the later Upgraded event's opted-in property says pro.
    assert values == {"name": name, "plan": "pro", **extra}
    assert user["custom"]["plan"]["source"] == "event"
    assert user["custom"]["name"]["source"] == "identify"


def test_segment_analytics_python_sends_through_its_own_batching(stack: RunningStack) -> None:
    from segment.analytics.client import Client

    errors: list[str] = []
    client = Client(
        stack.state["account"]["write_key"],
        host=track_url(stack),
        upload_size=2,
        upload_interval=0.1,
        max_retries=1,
        on_error=lambda error, batch: errors.append(f"{error} ({len(batch)} messages)"),
    )
    now = datetime.now(UTC)
    client.identify(
        "py-1",
        {"name": "Ada", "plan": "free", "address": {"city": "London"}},
        context=CONTEXT,
        timestamp=now - timedelta(seconds=60),
    )
    client.track(
        "py-1",
        "Upgraded",
        {"plan": "pro", "revenue": 30},
        context=CONTEXT,
        timestamp=now - timedelta(seconds=50),
    )
    client.page("py-1", None, "Pricing", {"path": "/pricing"}, CONTEXT, now - timedelta(seconds=40))
    client.screen("py-1", None, "Home", None, CONTEXT, now - timedelta(seconds=30))
    client.track(anonymous_id="anon-1", event="Viewed", context=CONTEXT)
    client.flush()
    client.shutdown()
    assert errors == []
    user = close_sessions_and_read(stack, "py-1")
    assert_profile(user, "Ada", {"address.city": "London"})


def node_modules() -> Path:
    """@segment/analytics-node installed from the committed lock, once per lock."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, (
        "Node.js and npm are needed to run @segment/analytics-node "
        "(Debian: apt-get install nodejs npm; .ci/run installs them)"
    )
    lock = NODE_PROJECT / "package-lock.json"
    cached = NODE_CACHE / "package-lock.json"
    installed = NODE_CACHE / "node_modules" / "@segment" / "analytics-node"
    if not (installed.is_dir() and cached.exists() and filecmp.cmp(lock, cached, shallow=False)):
        NODE_CACHE.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(NODE_PROJECT / name, NODE_CACHE / name)
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_CACHE,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return NODE_CACHE / "node_modules"


def test_segment_analytics_node_sends_through_its_own_batching(stack: RunningStack) -> None:
    # Through a recording hop, to see the URL it posts to: the tracking URL's
    # own /v1/batch, not the API's (the documented host + path setup).
    hop = Relay(upstream=stack.url)
    modules = node_modules()
    node = shutil.which("node")
    assert node
    env = {
        **os.environ,
        "NODE_PATH": str(modules),
        "INSIGHTS_TRACK_URL": hop.url + urlsplit(track_url(stack)).path,
        "INSIGHTS_WRITE_KEY": stack.state["account"]["write_key"],
    }
    try:
        result = subprocess.run(
            [node, str(NODE_PROJECT / "send.js")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        hop.close()
    assert result.returncode == 0 and "sent" in result.stdout, result.stderr
    posted = {(s.path, s.status) for s in hop.requests("POST")}
    assert posted == {("/_url/TrackFunction/v1/batch", 200)}
    user = close_sessions_and_read(stack, "node-1")
    assert_profile(user, "Grace", {"company.name": "Navy"})


# ------------------------------------------------------------ analytics.js
ANALYTICS_JS = Path("@segment/analytics-next/dist/umd/index.js")
# A customer's page: analytics.js from its own origin, with the settings that
# Segment's CDN would serve (none is reached), pointed at the tracking URL.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>analytics.js</title>
<script src="/analytics.js"></script>
<script>
  const segmentio = {apiKey: %(key)s, apiHost: %(api_host)s, protocol: "http"};
  window.analytics = AnalyticsNext.AnalyticsBrowser.load(
    {writeKey: %(key)s, cdnURL: location.origin,
     cdnSettings: {integrations: {"Segment.io": segmentio}, metrics: {sampleRate: 0}}},
    {integrations: {"Segment.io": {deliveryStrategy: %(delivery)s}}}
  );
</script></head><body><h1>a customer's page</h1></body></html>"""
DELIVERY = {
    "standard": {"strategy": "standard", "config": {}},
    # Sent when 3 events wait, so the one batch holds all of them.
    "batching": {"strategy": "batching", "config": {"size": 3, "timeout": 300}},
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"chromium not found at {CHROMIUM}: apt-get install chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def messages(seen: Seen) -> int:
    body = json.loads(seen.body or "{}")
    return len(body["batch"]) if "batch" in body else 1


@pytest.mark.parametrize("delivery", ["standard", "batching"])
def test_analytics_js_retries_after_a_failed_first_attempt(
    stack: RunningStack, browser: Browser, delivery: str
) -> None:
    """Every first attempt fails (503); each retry carries X-Retry-Count, which
    the CORS answer must allow, or the browser blocks every retry."""
    modules = node_modules()
    uuid = f"ajs-{delivery}"
    hop = Relay(
        upstream=stack.url,
        fail=lambda s: s.method == "POST" and "x-retry-count" not in s.headers,
    )
    key = json.dumps(stack.state["account"]["write_key"])
    api_host = json.dumps(urlsplit(hop.url).netloc + urlsplit(track_url(stack)).path + "/v1")
    page_html = PAGE % {
        "key": key,
        "api_host": api_host,
        "delivery": json.dumps(DELIVERY[delivery]),
    }
    site = Relay(files={"/": page_html, "/analytics.js": modules / ANALYTICS_JS})
    context = browser.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(site.url + "/")
        page.evaluate(
            f"""analytics.identify({json.dumps(uuid)}, {{name: "Lin", role: "engineer"}});
            analytics.track("Clicked", {{button: "buy"}});
            analytics.page("Pricing")"""
        )
        deadline = time.monotonic() + 60
        while sum(messages(s) for s in hop.requests("POST") if s.status == 200) < 3:
            assert time.monotonic() < deadline, [(s.method, s.path, s.status) for s in hop.seen]
            page.wait_for_timeout(100)
    finally:
        context.close()
        site.close()
        hop.close()
    assert errors == []
    posts = hop.requests("POST")
    first, retried = [s for s in posts if s.failed_here], [s for s in posts if not s.failed_here]
    assert first and all("x-retry-count" in s.headers for s in retried)
    assert all(s.status == 200 for s in retried)
    assert {s.headers["authorization"] for s in posts} == {
        "Basic " + base64.b64encode(json.loads(key).encode() + b":").decode()
    }
    # Authorization is not a CORS-safelisted header: analytics.js's default
    # delivery is preflighted too (docs/segment-api.md).
    preflights = hop.requests("OPTIONS")
    assert preflights and all(s.status == 204 for s in preflights)
    asked = {
        h.strip()
        for s in preflights
        for h in s.headers["access-control-request-headers"].split(",")
    }
    assert "authorization" in asked
    user = close_sessions_and_read(stack, uuid)
    assert user["standard"]["total_sessions"] == 1
    assert {k: v["value"] for k, v in user["custom"].items()} == {"name": "Lin", "role": "engineer"}
