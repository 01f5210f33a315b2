"""Which SCIM attribute is the uuid, and which become custom attributes under which names.

An account's SCIM mapping (its own item, ``PUT /v1/idp/scim/config``):

    {"uuid": "userName",                       # or "externalId", "email", an emails path
     "attributes": {"title": "idp.title",      # SCIM path -> attribute name (string)
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":
                        {"name": "employee_no", "type": "number"}}}

``active`` is always kept (as ``idp.active`` unless renamed): deprovisioning
(``active: false``, DELETE) is recorded as that attribute, never as an erasure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from insights.domain.core.admission import Scalar, ValueType, idp_value, parse_target
from insights.domain.idp.scim import ScimError
from insights.domain.idp.scim.filter import PatchPath, matches, parse_path
from insights.domain.idp.scim.schema import ENTERPRISE

UUID_CHOICES = ("userName", "externalId", "email")
ACTIVE = "active"
ACTIVE_NAME = "idp.active"
_E = ENTERPRISE + ":"
DEFAULT_ATTRIBUTES: dict[str, tuple[str, ValueType]] = {
    "active": (ACTIVE_NAME, "boolean"),
    "displayName": ("idp.displayName", "string"),
    "title": ("idp.title", "string"),
    "userType": ("idp.userType", "string"),
    "name.givenName": ("idp.givenName", "string"),
    "name.familyName": ("idp.familyName", "string"),
    "email": ("idp.email", "string"),
    _E + "employeeNumber": ("idp.employeeNumber", "string"),
    _E + "costCenter": ("idp.costCenter", "string"),
    _E + "organization": ("idp.organization", "string"),
    _E + "division": ("idp.division", "string"),
    _E + "department": ("idp.department", "string"),
    _E + "manager.value": ("idp.manager", "string"),
}


class ConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ScimMapping:
    uuid: str = "userName"
    # SCIM path -> (attribute name, type)
    attributes: dict[str, tuple[str, ValueType]] = field(
        default_factory=lambda: dict(DEFAULT_ATTRIBUTES)
    )

    def as_dict(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "attributes": {
                path: {"name": name, "type": kind} for path, (name, kind) in self.attributes.items()
            },
        }


def _check_path(path: Any, where: str) -> str:
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(where, "must be a SCIM attribute path")
    if path == "email":
        return path
    try:
        found = parse_path(path)
    except ScimError as exc:
        raise ConfigError(where, exc.detail) from None
    if isinstance(found, PatchPath) and found.attr is None:
        raise ConfigError(where, "names the whole extension, not an attribute")
    return path


def parse_mapping(raw: Any) -> ScimMapping:
    """A mapping from its JSON form; every problem is named by its field."""
    if not isinstance(raw, dict):
        raise ConfigError("body", "send an object with uuid and attributes")
    unknown = sorted(set(raw) - {"uuid", "attributes"})
    if unknown:
        raise ConfigError(unknown[0], "unknown field; known: attributes, uuid")
    uuid = raw.get("uuid", "userName")
    if uuid not in UUID_CHOICES and not (isinstance(uuid, str) and uuid.startswith("emails")):
        raise ConfigError(
            "uuid",
            "must be userName, externalId, email (the primary one) or an emails path "
            'such as emails[type eq "work"].value',
        )
    _check_path(uuid, "uuid")
    attributes: dict[str, tuple[str, ValueType]] = {}
    given = raw.get("attributes")
    if given is None:
        attributes = dict(DEFAULT_ATTRIBUTES)
    elif not isinstance(given, dict):
        raise ConfigError("attributes", "must be an object of SCIM path -> attribute name")
    else:
        for path, target in given.items():
            where = f"attributes[{path!r}]"
            _check_path(path, where)
            try:
                attributes[path] = parse_target(target)
            except ValueError as exc:
                raise ConfigError(where, str(exc)) from None
    names = [name for name, _ in attributes.values()]
    if len(set(names)) != len(names):
        raise ConfigError("attributes", "two SCIM paths are kept under the same name")
    if ACTIVE not in attributes:
        if ACTIVE_NAME in names:
            raise ConfigError("attributes", f"{ACTIVE_NAME} is reserved for active")
        attributes[ACTIVE] = (ACTIVE_NAME, "boolean")
    return ScimMapping(uuid=uuid, attributes=attributes)


def extract(user: dict[str, Any], path: str) -> Any:
    """The first value at a SCIM path of a stored user (None when it has none)."""
    if path == "email":
        emails = [e for e in user.get("emails") or [] if e.get("value")]
        primary = [e for e in emails if e.get("primary") is True]
        return (primary or emails or [{}])[0].get("value")
    found = parse_path(path)
    if found.attr is None:
        return None
    holder = user.get(found.ext, {}) if found.ext else user
    value = holder.get(found.attr.name)
    items = value if isinstance(value, list) else ([] if value is None else [value])
    if found.filter is not None:
        items = [i for i in items if isinstance(i, dict) and matches(found.filter, i)]
    sub = found.sub
    if sub is None and found.attr.type == "complex":
        sub = found.attr.child("value")
        if sub is None:
            return None  # a complex value (name, addresses) is not one attribute value
    if sub is not None:
        items = [i.get(sub.name) for i in items if isinstance(i, dict)]
    return next((i for i in items if i is not None), None)


def user_uuid(user: dict[str, Any], mapping: ScimMapping) -> str | None:
    value = extract(user, mapping.uuid)
    return value if isinstance(value, str) and value else None


def kept_values(user: dict[str, Any], mapping: ScimMapping) -> dict[str, Scalar]:
    """Attribute name -> typed value for every kept attribute the user has.

    ScimError (400) when a value does not parse as the type the mapping gives it:
    the IdP shows the reason, and nothing of the request is applied.
    """
    out: dict[str, Scalar] = {}
    for path, (name, kind) in mapping.attributes.items():
        value = extract(user, path)
        if value is None:
            continue
        try:
            out[name] = idp_value(value, kind)
        except ValueError as exc:
            raise ScimError(
                400,
                f"{path}: {exc} (the account's SCIM mapping keeps it as {name}, type {kind})",
                "invalidValue",
            ) from None
    return out
