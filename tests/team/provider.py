"""A real OpenID Connect provider on this machine for the console's sign-in: oidc-provider-mock.

It runs the authorization code flow with its own login page (a form that
takes the subject), issues RS256 ID tokens with the nonce, checks registered
clients' exact redirect URIs and secrets, and keeps users' claims set over
its HTTP API. Nothing of the flow is written here.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import oidc_provider_mock


@dataclass
class Provider:
    issuer: str

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        sent = urllib.request.Request(
            self.issuer + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(sent, timeout=10) as answer:
            text = answer.read().decode()
            return answer.status, json.loads(text) if text else None

    def register(self, redirect_uri: str) -> tuple[str, str]:
        """A client registered for exactly this redirect URI: (client id, client secret)."""
        status, body = self.request(
            "POST",
            "/oauth2/clients",
            {"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_basic"},
        )
        assert status == 201, body
        return body["client_id"], body["client_secret"]

    def user(self, sub: str, **claims: Any) -> None:
        """The claims the provider puts in this subject's ID token."""
        status, _ = self.request("PUT", f"/users/{quote(sub, safe='')}", claims)
        assert status == 204


@contextmanager
def running() -> Iterator[Provider]:
    # Registered clients only (exact redirect URIs and secrets), a nonce required.
    with oidc_provider_mock.run_server_in_thread(
        require_client_registration=True, require_nonce=True
    ) as server:
        yield Provider(f"http://localhost:{server.server_port}")
