"""Checking real answers against docs/openapi.yaml (JSON Schema 2020-12, as OpenAPI 3.1 is)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
_URI = "urn:insights:openapi"


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def operations() -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation described."""
    methods = {"get", "head", "put", "post", "patch", "delete"}
    return {
        (method.upper(), path)
        for path, item in spec()["paths"].items()
        for method in item
        if method in methods
    }


def template_of(path: str) -> str:
    """The described path a concrete one matches (`/v1/users/u1` -> `/v1/users/{uuid}`)."""
    bare = path.split("?", 1)[0]
    for template in spec()["paths"]:
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, bare):
            return template
    raise AssertionError(f"{path} is not described in docs/openapi.yaml")


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _resolve(node: dict[str, Any], where: str) -> tuple[dict[str, Any], str]:
    """Follow an OpenAPI (non-schema) $ref such as a shared response."""
    while "$ref" in node:
        where = node["$ref"].removeprefix("#")
        node = spec()
        for part in where.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, where


def check(method: str, path: str, status: int, headers: dict[str, str], body: str) -> None:
    """Assert that an answer is one the description allows, body and all."""
    template = template_of(path)
    operation = spec()["paths"][template].get(method.lower())
    assert operation is not None, f"{method} {template} is not described"
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {template} answered {status}, not described"
    where = _pointer("paths", template, method.lower(), "responses", str(status))
    response, where = _resolve(responses[str(status)], where)
    content = response.get("content")
    if not content:
        assert not body, f"{method} {template} {status}: a body where none is described"
        return
    kind = (headers.get("content-type") or "").split(";")[0].strip()
    assert kind in content, f"{method} {template} {status}: content-type {kind!r} not described"
    schema_at = where + _pointer("content", kind, "schema")
    if kind == "application/json" or kind.endswith("+json"):  # SCIM's application/scim+json
        validator(schema_at).validate(json.loads(body))
    elif kind.startswith("text/"):  # the SDK's script
        validator(schema_at).validate(body)


@cache
def validator(pointer: str) -> Draft202012Validator:
    registry = Registry().with_resource(
        _URI, Resource.from_contents(spec(), default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"{_URI}#{pointer}"}, registry=registry)
