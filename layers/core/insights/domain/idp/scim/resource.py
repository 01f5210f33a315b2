"""User resources: validation of what an IdP sends, PATCH, and the answer's shape.

A stored user is a dict with the schema's canonical attribute names (the
enterprise attributes under their URN), whatever case the IdP used: SCIM
attribute names are case-insensitive (RFC 7643 section 2.1). Known quirks
are accepted on purpose: Entra ID's string booleans ("True"/"False"), its
manager as a plain id string, PATCH ops in any case ("Replace"), and paths
as keys of a path-less PATCH value ("name.givenName").
"""

from __future__ import annotations

import copy
from typing import Any

from insights.domain.core.admission import string_problem
from insights.domain.core.limits import lone_surrogate
from insights.domain.idp.scim import ScimError
from insights.domain.idp.scim.filter import (
    Compare,
    Logical,
    PatchPath,
    Ref,
    matches,
    parse_path,
    resolve,
)
from insights.domain.idp.scim.schema import (
    CORE,
    CORE_ATTR,
    ENTERPRISE,
    ENTERPRISE_ATTR,
    PATCH_OP,
    Attr,
)

MAX_VALUE_CHARS = 1024  # limits.MAX_STRING_VALUE_CHARS: every kept string is an attribute value
MAX_VALUES = 50  # per multi-valued attribute
MAX_OPERATIONS = 100
# Read-only attributes a client may echo (ignored, RFC 7643 section 2.2), and the
# password Okta can send: credentials are never stored, so it is dropped unread.
IGNORED_TOP = frozenset({"id", "meta", "groups", "schemas", "password"})


def _bad(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type)


# ---------------------------------------------------------------- values
def coerce(attr: Attr, value: Any, where: str) -> Any:
    """A value as the attribute's type, canonical names; None for "no value"."""
    if value is None:
        return None
    if attr.multi:
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_VALUES:
            raise _bad(f"{where}: more than {MAX_VALUES} values")
        out = [v for i, item in enumerate(items) if (v := _single(attr, item, f"{where}[{i}]"))]
        if sum(1 for v in out if isinstance(v, dict) and v.get("primary") is True) > 1:
            raise _bad(f"{where}: more than one value has primary true")
        return out or None
    return _single(attr, value, where)


def _single(attr: Attr, value: Any, where: str) -> Any:
    if value is None:
        return None
    if attr.type == "complex":
        if isinstance(value, list) and len(value) == 1 and not attr.multi:
            value = value[0]  # Entra ID may send the manager as a one-element list
        if isinstance(value, str) and attr.child("value") is not None:
            value = {"value": value}  # Entra ID sends the manager as its id alone
        if not isinstance(value, dict):
            raise _bad(f"{where}: must be an object")
        out: dict[str, Any] = {}
        for key, inner in value.items():
            sub = attr.child(key)
            if sub is None and key.lower() == "schemas" and attr.name == ENTERPRISE:
                continue  # the extension URN object may repeat the resource's schemas
            if sub is None:
                raise _bad(f"{where}: unknown sub-attribute {key!r}")
            if sub.mutability == "readOnly":
                continue  # the client may send it; the server ignores it (RFC 7643 2.2)
            coerced = _single(sub, inner, f"{where}.{sub.name}")
            if coerced is not None:
                _put(out, sub.name, coerced, f"{where}.{sub.name}")
        return out or None
    if attr.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"  # Entra ID: "True" / "False"
        raise _bad(f"{where}: must be true or false")
    if not isinstance(value, str):
        raise _bad(f"{where}: must be a string")
    problem = string_problem(value)  # admission's rule: at most 1,024 characters, valid Unicode
    if problem is not None:
        raise _bad(f"{where}: {problem}")
    return value


def _put(target: dict[str, Any], name: str, value: Any, where: str) -> None:
    """Set an attribute by its canonical name; the same one sent again in another case
    ("title" and "Title") with another value is refused, never silently overwritten."""
    if name in target and target[name] != value:
        raise _bad(
            f"{where} is sent twice with different values (attribute names are case-insensitive)",
            "invalidSyntax",
        )
    target[name] = value


def repaired(user: Any) -> Any:
    """A stored user as today's checks take it (the stored item is not changed).

    Older versions stored strings holding a lone UTF-16 surrogate (then every
    update of that User failed, deprovisioning included); read back, each
    becomes U+FFFD, so the User can be updated and its values kept.
    """
    if isinstance(user, str):
        if lone_surrogate(user):
            return user.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return user
    if isinstance(user, dict):
        return {repaired(key): repaired(value) for key, value in user.items()}
    if isinstance(user, list):
        return [repaired(item) for item in user]
    return user


def normalize_user(body: Any) -> dict[str, Any]:
    """A POST/PUT body (or a patched user) as a stored user; every problem is named."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object", "invalidSyntax")
    schemas = body.get("schemas")
    if schemas is not None and (
        not isinstance(schemas, list) or CORE.lower() not in [str(s).lower() for s in schemas]
    ):
        raise _bad(f"schemas must list {CORE}", "invalidSyntax")
    out: dict[str, Any] = {}
    for key, value in body.items():
        lower = key.lower()
        if lower in IGNORED_TOP:
            continue
        if lower == ENTERPRISE.lower():
            ext = _single(ENTERPRISE_ATTR, value, ENTERPRISE)
            for name, inner in (ext or {}).items():
                _put(out.setdefault(ENTERPRISE, {}), name, inner, name)
            continue
        ref = resolve(key, None, "attribute") if lower.startswith("urn:") else None
        if isinstance(ref, PatchPath):
            raise _bad(f"unknown attribute {key!r}")
        if ref is not None and ref.sub is None:
            target = out.setdefault(ENTERPRISE, {}) if ref.ext else out
            attr = ref.attr
        else:
            found = CORE_ATTR.child(key)
            if found is None:
                raise _bad(f"unknown attribute {key!r} (supported: see /Schemas)")
            target, attr = out, found
        coerced = coerce(attr, value, attr.name)
        if coerced is not None:
            _put(target, attr.name, coerced, attr.name)
    if ENTERPRISE in out and not out[ENTERPRISE]:
        del out[ENTERPRISE]
    user_name = out.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise _bad("userName is required", "invalidValue")
    return out


# ----------------------------------------------------------------- PATCH
def apply_patch(user: dict[str, Any], body: Any) -> dict[str, Any]:
    """The user after a PatchOp request (RFC 7644 section 3.5.2); the input is not changed."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object", "invalidSyntax")
    lowered = {k.lower(): v for k, v in body.items()}
    schemas = lowered.get("schemas")
    if schemas is not None and (
        not isinstance(schemas, list) or PATCH_OP.lower() not in [str(s).lower() for s in schemas]
    ):
        raise _bad(f"schemas must list {PATCH_OP}", "invalidSyntax")
    operations = lowered.get("operations")
    if not isinstance(operations, list) or not operations:
        raise _bad("Operations must be a non-empty list", "invalidSyntax")
    if len(operations) > MAX_OPERATIONS:
        raise _bad(f"more than {MAX_OPERATIONS} operations", "tooMany")
    work = copy.deepcopy(user)
    for index, raw in enumerate(operations):
        if not isinstance(raw, dict):
            raise _bad(f"Operations[{index}] must be an object", "invalidSyntax")
        fields = {k.lower(): v for k, v in raw.items()}
        op = str(fields.get("op") or "").lower()
        if op not in ("add", "replace", "remove"):
            raise _bad(f"Operations[{index}].op must be add, replace or remove", "invalidSyntax")
        path, value = fields.get("path"), fields.get("value")
        if path in (None, ""):
            if op == "remove":
                raise _bad(f"Operations[{index}]: remove needs a path", "noTarget")
            if not isinstance(value, dict):
                raise _bad(f"Operations[{index}]: without a path the value must be an object")
            for key, inner in value.items():
                if key.lower() == "schemas":
                    continue
                if key.lower() == ENTERPRISE.lower() and isinstance(inner, dict):
                    for sub_key, sub_value in inner.items():
                        target = _ext_path(sub_key)
                        _apply(work, target, op, sub_value)
                    continue
                _apply(work, parse_path(key), op, inner)
        elif isinstance(path, str):
            _apply(work, parse_path(path), op, value)
        else:
            raise _bad(f"Operations[{index}].path must be a string", "invalidPath")
    return normalize_user(work)


def _ext_path(name: str) -> PatchPath:
    attr = ENTERPRISE_ATTR.child(name)
    if attr is None:
        raise _bad(f"unknown attribute {ENTERPRISE}:{name}", "invalidPath")
    return PatchPath(ENTERPRISE, attr)


def _apply(work: dict[str, Any], path: PatchPath, op: str, value: Any) -> None:
    container = work.setdefault(ENTERPRISE, {}) if path.ext else work
    attr = path.attr
    if attr is None:  # the extension object as a whole
        if op == "remove":
            work.pop(ENTERPRISE, None)
            return
        ext = _single(ENTERPRISE_ATTR, value, ENTERPRISE) or {}
        container.update(ext)
        return
    where = attr.name if path.sub is None else f"{attr.name}.{path.sub.name}"
    if attr.mutability == "readOnly" or (path.sub and path.sub.mutability == "readOnly"):
        raise _bad(f"{where} is read-only", "mutability")
    if op != "remove" and value is None:
        op = "remove"  # an explicit null unassigns (RFC 7644 section 3.5.2.3)
    if path.filter is not None:
        _apply_filtered(container, path, op, value, where)
    elif path.sub is not None:
        _apply_sub(container, attr, path.sub, op, value, where)
    elif op == "remove":
        if attr.multi and isinstance(value, list) and value:
            drop = coerce(attr, value, where) or []
            kept = [v for v in container.get(attr.name) or [] if not _same_item(v, drop)]
            _set(container, attr.name, kept)
        else:
            container.pop(attr.name, None)
    else:
        new = coerce(attr, value, where)
        if attr.multi:
            current = [] if op == "replace" else list(container.get(attr.name) or [])
            for item in new or []:
                if isinstance(item, dict) and item.get("primary") is True:
                    for other in current:
                        if isinstance(other, dict):
                            other["primary"] = False
                if item not in current:
                    current.append(item)
            _set(container, attr.name, current)
        elif attr.type == "complex" and isinstance(container.get(attr.name), dict):
            container[attr.name].update(new or {})
        else:
            _set(container, attr.name, new)
    if path.ext and not work.get(ENTERPRISE):
        work.pop(ENTERPRISE, None)


def _same_item(item: Any, drop: list[Any]) -> bool:
    for gone in drop:
        if isinstance(item, dict) and isinstance(gone, dict):
            if all(item.get(k) == v for k, v in gone.items()):
                return True
        elif item == gone:
            return True
    return False


def _set(container: dict[str, Any], name: str, value: Any) -> None:
    if value in (None, [], {}):
        container.pop(name, None)
    else:
        container[name] = value


def _apply_sub(
    container: dict[str, Any], attr: Attr, sub: Attr, op: str, value: Any, where: str
) -> None:
    current = container.get(attr.name)
    if attr.multi:
        items = current or []
        if op == "remove":
            for item in items:
                item.pop(sub.name, None)
            _set(container, attr.name, [i for i in items if i])
            return
        coerced = _single(sub, value, where)
        if not items:
            items = [{}]
        for item in items:
            item[sub.name] = coerced
        container[attr.name] = items
        return
    obj = current if isinstance(current, dict) else {}
    if op == "remove":
        obj.pop(sub.name, None)
    else:
        obj[sub.name] = _single(sub, value, where)
    _set(container, attr.name, obj)


def _apply_filtered(
    container: dict[str, Any], path: PatchPath, op: str, value: Any, where: str
) -> None:
    attr, sub = path.attr, path.sub
    assert attr is not None and path.filter is not None
    items: list[dict[str, Any]] = list(container.get(attr.name) or [])
    hits = [i for i in items if isinstance(i, dict) and matches(path.filter, i)]
    if op == "remove":
        if sub is None:
            items = [i for i in items if not any(i is h for h in hits)]
        else:
            for hit in hits:
                hit.pop(sub.name, None)
            items = [i for i in items if i]
        _set(container, attr.name, items)
        return
    if sub is not None:
        new_part = {sub.name: _single(sub, value, where)}
    else:
        new_part = _single(attr, value, where) or {}
    if not hits:
        # Entra ID and Okta add a typed value this way (emails[type eq "work"].value
        # for a user without one): the filter's eq terms make the new element.
        seed = _eq_terms(path.filter)
        if seed is None:
            raise _bad(f"{where}: no value matches the filter", "noTarget")
        hits = [seed]
        items.append(seed)
    for hit in hits:
        hit.update(new_part)
        if hit.get("primary") is True:
            for other in items:
                if other is not hit:
                    other["primary"] = False
    container[attr.name] = items


def _eq_terms(expr: Any) -> dict[str, Any] | None:
    if isinstance(expr, Compare) and expr.op == "eq" and expr.ref.sub is None:
        return {expr.ref.attr.name: expr.value}
    if isinstance(expr, Logical) and expr.op == "and":
        left, right = _eq_terms(expr.left), _eq_terms(expr.right)
        return None if left is None or right is None else {**left, **right}
    return None


# ---------------------------------------------------------------- answers
def render(
    user_id: str, user: dict[str, Any], meta: dict[str, Any], base_url: str
) -> dict[str, Any]:
    schemas = [CORE, ENTERPRISE] if ENTERPRISE in user else [CORE]
    body: dict[str, Any] = {"schemas": schemas, "id": user_id}
    body.update(user)
    body["meta"] = {
        "resourceType": "User",
        "created": meta["created"],
        "lastModified": meta["lastModified"],
        "location": f"{base_url}/Users/{user_id}",
        "version": meta["version"],
    }
    return body


def _attribute_list(raw: str | None, where: str) -> list[Ref | PatchPath]:
    if not raw:
        return []
    return [resolve(part.strip(), None, where) for part in raw.split(",") if part.strip()]


def project(body: dict[str, Any], attributes: str | None, excluded: str | None) -> dict[str, Any]:
    """``attributes`` / ``excludedAttributes`` (RFC 7644 section 3.4.2.5); id and schemas stay."""
    wanted = _attribute_list(attributes, "attributes")
    unwanted = _attribute_list(excluded, "excludedAttributes")
    if wanted:
        out = {k: body[k] for k in ("schemas", "id") if k in body}
        for ref in wanted:
            _copy(body, out, ref)
        return out
    if unwanted:
        out = copy.deepcopy(body)
        for ref in unwanted:
            _drop(out, ref)
        return out
    return body


def _copy(source: dict[str, Any], out: dict[str, Any], ref: Ref | PatchPath) -> None:
    if isinstance(ref, PatchPath):
        if ENTERPRISE in source:
            out[ENTERPRISE] = source[ENTERPRISE]
        return
    holder = source.get(ref.ext, {}) if ref.ext else source
    if ref.attr.name not in holder:
        return
    target = out.setdefault(ref.ext, {}) if ref.ext else out
    value = holder[ref.attr.name]
    if ref.sub is None:
        target[ref.attr.name] = value
    elif isinstance(value, list):
        target[ref.attr.name] = [
            {ref.sub.name: v[ref.sub.name]} for v in value if ref.sub.name in v
        ]
    elif isinstance(value, dict) and ref.sub.name in value:
        target.setdefault(ref.attr.name, {})[ref.sub.name] = value[ref.sub.name]


def _drop(out: dict[str, Any], ref: Ref | PatchPath) -> None:
    if isinstance(ref, PatchPath):
        out.pop(ENTERPRISE, None)
        return
    holder = out.get(ref.ext, {}) if ref.ext else out
    if ref.sub is None:
        holder.pop(ref.attr.name, None)
        return
    value = holder.get(ref.attr.name)
    for item in value if isinstance(value, list) else [value] if isinstance(value, dict) else []:
        item.pop(ref.sub.name, None)
