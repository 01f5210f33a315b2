"""Shortcuts for the segments API over the local stack."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.conftest import Stack


def create(
    stack: Stack, account: Any, rules: Any, name: str = "segment", *, settle: bool = True
) -> str:
    """Save a segment; with `settle`, also let any index backfill it started finish."""
    response = stack.cloud.http(
        "POST", "/v1/segments", headers=stack.auth(account), body={"name": name, "rules": rules}
    )
    assert response.status == 201, response.body
    if settle:
        stack.cloud.settle()
    return response.json()["id"]


def pages(stack: Stack, account: Any, segment_id: str, limit: int) -> list[dict[str, Any]]:
    """Every page of a listing, following next_cursor to the end."""
    found = []
    cursor = None
    for _ in range(1000):
        path = f"/v1/segments/{segment_id}/users?limit={limit}"
        if cursor:
            path += f"&cursor={quote(cursor)}"
        response = stack.cloud.http("GET", path, headers=stack.auth(account))
        assert response.status == 200, response.body
        page = response.json()
        assert len(page["users"]) <= limit
        found.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("listing never ended")


def listed(stack: Stack, account: Any, segment_id: str, limit: int = 100) -> list[str]:
    return [u["uuid"] for page in pages(stack, account, segment_id, limit) for u in page["users"]]


def count(stack: Stack, account: Any, segment_id: str) -> dict[str, Any]:
    response = stack.cloud.http(
        "GET", f"/v1/segments/{segment_id}/count", headers=stack.auth(account)
    )
    assert response.status == 200, response.body
    return response.json()


def preview(stack: Stack, account: Any, rules: Any, limit: int = 1000) -> dict[str, Any]:
    response = stack.cloud.http(
        "POST",
        "/v1/segments/preview",
        headers=stack.auth(account),
        body={"rules": rules, "limit": limit},
    )
    assert response.status == 200, response.body
    return response.json()


def segments_of(stack: Stack, account: Any, uuid: str) -> set[str]:
    response = stack.cloud.http(
        "GET", f"/v1/users/{quote(uuid, safe='')}/segments", headers=stack.auth(account)
    )
    assert response.status == 200, response.body
    return set(response.json()["segments"])
