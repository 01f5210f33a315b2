"""Pages of the local stack: the SDK demo (`/demo`) and a bare SDK test page.

Local only (never deployed). The demo shows the browser SDK at work against
the running stack: what it sends, then the profile Insights made of it. The
profile is read through `/_local/demo/user`, which calls the real API with
the demo account's secret key on the server side, so the page never holds
a secret key.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

HTML = {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"}
JSON = {"content-type": "application/json", "cache-control": "no-store"}
# Options the test page passes on to the script tag as data-* attributes.
_ATTRIBUTE = re.compile(r"^[a-z][a-z-]{0,40}$")

Reply = tuple[int, dict[str, str], str]


class Stack(Protocol):
    """What the pages need of the running local stack (server.LocalStack)."""

    api_url: str
    state: dict[str, Any]
    cloud: Any


def handle(stack: Stack, method: str, path: str, query: dict[str, str]) -> Reply | None:
    """The reply for a local page, or None when the path is not one."""
    if method != "GET":
        return None
    if path in ("/demo", "/demo/"):
        return 200, HTML, demo_page(stack)
    if path == "/_local/page":
        return 200, HTML, test_page(stack, query)
    if path == "/_local/demo/user":
        return demo_user(stack, query.get("uuid", ""))
    return None


def _script_src(stack: Stack) -> str:
    urls = stack.info.get("function_urls", {})
    base = urls.get("TrackFunction", stack.api_url + "/")
    return base.rstrip("/") + "/v1/sdk/insights.js"


def test_page(stack: Stack, query: dict[str, str]) -> str:
    """A bare page with the tag; every query parameter becomes a data-* attribute."""
    attributes = " ".join(
        f'data-{name}="{html.escape(value)}"'
        for name, value in query.items()
        if _ATTRIBUTE.match(name) and name not in ("async", "stub")
    )
    stub = STUB if query.get("stub") else ""
    is_async = " async" if query.get("async") else ""
    src = html.escape(_script_src(stack))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>SDK test page</title>{stub}
<script src="{src}" {attributes}{is_async}></script></head>
<body style="height:3000px"><h1>SDK test page</h1>
<button id="buy">Buy</button> <input id="name" placeholder="type here">
<a id="away" href="/_local/health">leave</a></body></html>"""


def demo_user(stack: Stack, uuid: str) -> Reply:
    account = stack.info.get("account")
    if not account:
        return 404, JSON, json.dumps({"error": "no_demo_account", "message": "started without one"})
    if not uuid:
        return 400, JSON, json.dumps({"error": "invalid_uuid", "message": "pass ?uuid="})
    response = stack.cloud.http(
        "GET",
        f"/v1/users/{quote(uuid, safe='')}",
        headers={"Authorization": f"Bearer {account['secret_key']}"},
    )
    return response.status, JSON, response.body


# The two-line snippet of docs/sdk.md, line one: calls made before an async
# tag has loaded are queued and replayed by the SDK.
STUB = (
    "<script>window.insights=window.insights||[];'identify track page segments flush reset "
    "ready debug'.split(' ').forEach(function(m){insights[m]=insights[m]||function(){"
    "insights.push([m,[].slice.call(arguments)])}})</script>"
)


def demo_page(stack: Stack) -> str:
    account = stack.info.get("account") or {}
    key = html.escape(account.get("write_key", ""))
    src = html.escape(_script_src(stack))
    return (
        DEMO.replace("{{STUB}}", STUB)
        .replace("{{SRC}}", src)
        .replace("{{KEY}}", key)
        .replace("{{MISSING}}", "" if key else "<p class=warn>No demo account: run `make run`.</p>")
    )


DEMO = (Path(__file__).parent / "demo.html").read_text(encoding="utf-8")
