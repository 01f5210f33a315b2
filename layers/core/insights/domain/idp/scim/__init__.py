"""SCIM 2.0 (RFC 7643/7644) provisioning, the pure part: schema, filters, PATCH, mapping.

Hand-written rather than built on scim2-models: that package (pydantic and
lark) costs 2.1-2.5x ``import boto3`` of CPU on import, against the 1.5x
cold-start goal of every HTTP function, and adds ~11 MB to the layer
(docs/idp.md, "Why no SCIM library at run time"). One attribute table
(``schema.USER``) drives validation, PATCH, filters, projection and the
discovery documents, so what is published is exactly what is enforced.
scim2-models still checks this code: scim2-tester (built on it) runs
against the local stack in the test suite.
"""

from __future__ import annotations


class ScimError(Exception):
    """An error answered in SCIM's error format (RFC 7644 section 3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body
