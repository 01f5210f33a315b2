"""A schemathesis check of this project (schemathesis.toml: ``hooks``, ``[checks]``).

``scim_error_schema``: every error a SCIM route answers is SCIM's error
(RFC 7644 section 3.12: ``application/scim+json``, the Error URN, the status
as a string, a detail, a known ``scimType``), whatever schemathesis sent:
bodies that are not UTF-8 or JSON, nesting, methods no route takes. The
description's own schemas are checked by response_schema_conformance; this
also covers answers the description does not list.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_TYPES = frozenset(
    {
        "invalidFilter",
        "tooMany",
        "uniqueness",
        "mutability",
        "invalidSyntax",
        "invalidPath",
        "noTarget",
        "invalidValue",
        "invalidVers",
        "sensitive",
    }
)


@schemathesis.check
def scim_error_schema(ctx: Any, response: Any, case: Any) -> bool | None:
    if not case.operation.path.startswith("/scim/v2/") or response.status_code < 400:
        return None
    found = [v for k, v in response.headers.items() if k.lower() == "content-type"]
    kind = str(found[0][0] if found and found[0] else "")
    if kind.split(";")[0].strip() != "application/scim+json":
        raise AssertionError(f"a SCIM error answered as {kind!r}, not application/scim+json")
    if case.method.upper() == "HEAD":
        return None  # no body to read
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError("a SCIM error whose body is not JSON") from None
    if not isinstance(body, dict) or body.get("schemas") != [ERROR]:
        raise AssertionError(f"a SCIM error without the Error schema: {str(body)[:200]}")
    if body.get("status") != str(response.status_code):
        raise AssertionError(f"status {body.get('status')!r} for an HTTP {response.status_code}")
    if not isinstance(body.get("detail"), str):
        raise AssertionError("a SCIM error without a detail")
    if "scimType" in body and body["scimType"] not in SCIM_TYPES:
        raise AssertionError(f"an unknown scimType {body['scimType']!r}")
    return None
