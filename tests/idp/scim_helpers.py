"""Talking SCIM to the local stack: a WSGI front on LocalCloud, tokens, request shapes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from insights.local.cloud import LocalCloud

BASE = "/scim/v2"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def wsgi_app(cloud: LocalCloud) -> Any:
    """A WSGI application that passes each request to the local stack's HTTP routing.

    scim2-client's WSGI engine calls it in-process; the request then takes the
    same path as over the network: the template's routes, API Gateway's
    payload, the real ScimFunction handler.
    """

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        response = cloud.http(
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO") or "/",
            headers=headers,
            body=body,
            query=query,
        )
        start_response(
            f"{response.status} {'OK' if response.status < 400 else 'Error'}",
            list(response.headers.items()),
        )
        return [response.body.encode()]

    return app


def scim_token(cloud: LocalCloud, account: Any, name: str = "Okta") -> str:
    response = cloud.http(
        "POST",
        "/v1/idp/scim/tokens",
        headers={"Authorization": f"Bearer {account.secret_key}"},
        body={"name": name},
    )
    assert response.status == 201, response.body
    return response.json()["token"]


class Scim:
    """A SCIM client of one token, as an IdP's connector calls the stack."""

    def __init__(self, cloud: LocalCloud, token: str) -> None:
        self.cloud = cloud
        self.token = token

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.cloud.http(
            method,
            BASE + path,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Host": "insights.example.com",
                "Content-Type": "application/scim+json",
                **(headers or {}),
            },
            body=body,
            query=query,
        )
