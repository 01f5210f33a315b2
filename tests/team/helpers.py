"""The console's sign-in driven over HTTP: the local stack in-process, the provider for real."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from insights import clock
from insights.local.gateway import HttpResponse
from tests.conftest import Stack
from tests.team.provider import Provider

HOST = "127.0.0.1:3000"  # the origin the console is served from in these tests
ORIGIN = f"http://{HOST}"
REDIRECT_URI = f"{ORIGIN}/v1/team/callback"
CONSOLE = {"X-Insights-Console": "1"}


class _Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def cookie_pairs(response: HttpResponse) -> dict[str, str]:
    """name -> value of every Set-Cookie (an empty value clears)."""
    found = {}
    for cookie in response.cookies:
        name, _, rest = cookie.partition("=")
        found[name] = rest.split(";", 1)[0]
    return found


def authorize(location: str, sub: str, action: str | None = None) -> str:
    """Submit the provider's own login form for `sub` (or deny); the redirect it answers."""
    form = {"action": action} if action else {"sub": sub}
    request = urllib.request.Request(
        location, data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    opener = urllib.request.build_opener(_Keep)
    try:
        opener.open(request, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302, exc.read()
        return exc.headers["Location"]
    raise AssertionError("the provider did not redirect")


@dataclass
class Team:
    stack: Stack
    provider: Provider
    account: Any
    client_id: str
    client_secret: str

    def admin(self, method: str, path: str, body: Any = None) -> HttpResponse:
        return self.stack.cloud.http(method, path, headers=self.stack.auth(self.account), body=body)

    def configure(self, **overrides: Any) -> HttpResponse:
        config = {
            "issuer": self.provider.issuer,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": REDIRECT_URI,
            "allowed_domains": ["acme.com"],
            "group_claim": "groups",
            "role_groups": {"admin": ["insights-admins"], "editor": ["growth"]},
            "default_role": "viewer",
            "session_minutes": 15,
            **overrides,
        }
        return self.admin("PUT", "/v1/team/provider", config)

    def start(self, account_id: str | None = None) -> HttpResponse:
        query = "" if account_id == "" else f"?account={account_id or self.account.account_id}"
        return self.stack.cloud.http(
            "GET", f"/v1/team/signin{query}", headers={"host": HOST}, source_ip="81.2.69.160"
        )

    def callback(self, redirect: str, flow_cookie: str | None) -> HttpResponse:
        parts = urllib.parse.urlsplit(redirect)
        headers = {"host": HOST}
        if flow_cookie is not None:
            headers["cookie"] = f"insights_flow={flow_cookie}"
        return self.stack.cloud.http(
            "GET", f"{parts.path}?{parts.query}", headers=headers, source_ip="81.2.69.160"
        )

    def sign_in(self, sub: str) -> HttpResponse:
        """The whole flow: start, the provider's form, the callback. The callback's answer."""
        started = self.start()
        assert started.status == 302, started.body
        location = started.headers["location"]
        assert location.startswith(self.provider.issuer), location
        back = authorize(location, sub)
        assert back.startswith(REDIRECT_URI + "?"), back
        return self.callback(back, cookie_pairs(started)["insights_flow"])

    def session(self, sub: str) -> str:
        answer = self.sign_in(sub)
        assert (answer.status, answer.headers["location"]) == (302, "/"), answer.headers
        return cookie_pairs(answer)["insights_session"]

    def call(
        self,
        session: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        sent = {"cookie": f"insights_session={session}", **CONSOLE, **(headers or {})}
        return self.stack.cloud.http(method, path, headers=sent, body=body)


def real_time() -> None:
    """The provider signs tokens with the machine's clock: the stack must agree."""
    clock.freeze(int(time.time() * 1000))
