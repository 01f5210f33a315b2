"""The User resource this service provider supports, as data, and its discovery documents.

Every attribute listed here is accepted, stored, returned, filterable and
patchable; anything else in a request is refused with the attribute's name.
Groups are not offered (docs/idp.md says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_RESULTS = 200

AttrType = Literal["string", "boolean", "reference", "complex"]


@dataclass(frozen=True)
class Attr:
    name: str
    type: AttrType = "string"
    multi: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    uniqueness: str = "none"
    description: str = ""
    sub: tuple[Attr, ...] = ()
    reference_types: tuple[str, ...] = ()
    by_lower: dict[str, Attr] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_lower", {a.name.lower(): a for a in self.sub})

    def child(self, name: str) -> Attr | None:
        return self.by_lower.get(name.lower())

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi,
            "description": self.description or self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": "default",
            "uniqueness": self.uniqueness,
        }
        if self.sub:
            body["subAttributes"] = [a.describe() for a in self.sub]
        if self.type == "reference":
            body["referenceTypes"] = list(self.reference_types)
        return body


def _s(name: str, **kw: Any) -> Attr:
    return Attr(name, **kw)


def _multi(name: str, value_description: str, *extra: Attr) -> Attr:
    """A multi-valued attribute shaped like emails: value, display, type, primary."""
    return Attr(
        name,
        "complex",
        multi=True,
        description=f"{value_description} of the user",
        sub=(
            _s("value", description=value_description),
            *extra,
            _s("display"),
            _s("type"),
            _s("primary", type="boolean"),
        ),
    )


USER_ATTRS: tuple[Attr, ...] = (
    _s("userName", required=True, uniqueness="server", description="Unique sign-in name"),
    Attr(
        "name",
        "complex",
        sub=tuple(
            _s(n)
            for n in (
                "formatted",
                "familyName",
                "givenName",
                "middleName",
                "honorificPrefix",
                "honorificSuffix",
            )
        ),
    ),
    *(
        _s(n)
        for n in (
            "displayName",
            "nickName",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
        )
    ),
    _s("active", type="boolean"),
    _multi("emails", "Email address"),
    _multi("phoneNumbers", "Phone number"),
    _multi("roles", "Role"),
    Attr(
        "addresses",
        "complex",
        multi=True,
        sub=(
            *tuple(
                _s(n)
                for n in (
                    "formatted",
                    "streetAddress",
                    "locality",
                    "region",
                    "postalCode",
                    "country",
                    "type",
                )
            ),
            _s("primary", type="boolean"),
        ),
    ),
)

ENTERPRISE_ATTRS: tuple[Attr, ...] = (
    *(_s(n) for n in ("employeeNumber", "costCenter", "organization", "division", "department")),
    Attr(
        "manager",
        "complex",
        sub=(
            _s("value", description="id of the manager's User"),
            _s("$ref", type="reference", reference_types=("User",)),
            _s("displayName", mutability="readOnly"),
        ),
    ),
)

# externalId is a common attribute (RFC 7643 section 3.1), set by the client.
EXTERNAL_ID = _s("externalId", case_exact=True, description="The IdP's own id for the user")

CORE_ATTR = Attr(CORE, "complex", sub=(*USER_ATTRS, EXTERNAL_ID))
ENTERPRISE_ATTR = Attr(ENTERPRISE, "complex", sub=ENTERPRISE_ATTRS)
SCHEMAS = {CORE.lower(): CORE_ATTR, ENTERPRISE.lower(): ENTERPRISE_ATTR}


# ------------------------------------------------------------- discovery
def _meta(base_url: str, resource_type: str, path: str) -> dict[str, str]:
    return {"resourceType": resource_type, "location": f"{base_url}{path}"}


def schema_documents(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": CORE,
            "name": "User",
            "description": "User Account",
            "attributes": [a.describe() for a in USER_ATTRS],
            "meta": _meta(base_url, "Schema", f"/Schemas/{CORE}"),
        },
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": ENTERPRISE,
            "name": "EnterpriseUser",
            "description": "Enterprise User",
            "attributes": [a.describe() for a in ENTERPRISE_ATTRS],
            "meta": _meta(base_url, "Schema", f"/Schemas/{ENTERPRISE}"),
        },
    ]


def resource_type_documents(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": CORE,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
            "meta": _meta(base_url, "ResourceType", "/ResourceTypes/User"),
        }
    ]


def service_provider_config(base_url: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A per-account SCIM token: Authorization: Bearer scim_...",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def list_response(resources: list[dict[str, Any]], total: int, start: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
