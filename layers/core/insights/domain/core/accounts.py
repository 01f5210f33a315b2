"""Accounts: settings with their bounds, and API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from insights.domain.core.admission import Protected
from insights.domain.core.limits import MAX_PROPERTY_NAME_CHARS
from insights.domain.core.timefmt import MINUTE_MS

KeyKind = Literal["write", "secret"]
KEY_PREFIX: dict[KeyKind, str] = {"write": "wk_", "secret": "sk_"}


class SettingsError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


DEFAULT_PROTECTED = ("idp.*",)  # what SCIM, OIDC and SAML write by default


@dataclass(frozen=True, slots=True)
class AccountSettings:
    unique_user_ids: bool = True
    session_timeout_minutes: int = 30
    backfill_days: int = 7
    # Event properties kept as custom attributes, by name, on every door
    # (/v1/events, the SDK, Segment's track/page/screen): events.user_values.
    event_properties_as_attributes: tuple[str, ...] = ()
    # Attribute names (a trailing * for a prefix) that only the secret key's
    # doors set: imports, Salesforce, identity providers, server-side Segment.
    # A browser holds the write key, so it could otherwise make itself
    # idp.active or VIP for any segment that gates content on it.
    protected_attributes: tuple[str, ...] = DEFAULT_PROTECTED

    @property
    def session_timeout_ms(self) -> int:
        return self.session_timeout_minutes * MINUTE_MS

    @property
    def protected(self) -> Protected:
        return Protected.of(self.protected_attributes)

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["event_properties_as_attributes"] = list(self.event_properties_as_attributes)
        body["protected_attributes"] = list(self.protected_attributes)
        return body


_BOUNDS = {"session_timeout_minutes": (1, 240), "backfill_days": (0, 365)}
# Settings that were renamed: a PATCH with the old name says what it is now.
_RENAMED = {
    "segment_event_properties": (
        "renamed event_properties_as_attributes: one setting now names the event properties "
        "kept as attributes on every door, Segment's and /v1/events alike "
        "(docs/event-properties.md)"
    )
}


def patch_settings(current: AccountSettings, patch: Any) -> AccountSettings:
    """Apply a PATCH body; every bad field is named, nothing is half-applied."""
    if not isinstance(patch, dict) or not patch:
        raise SettingsError("body", "send an object with the settings to change")
    allowed = AccountSettings.__dataclass_fields__.keys()
    for name in patch:
        if name in _RENAMED:
            raise SettingsError(name, _RENAMED[name])
        if name not in allowed:
            raise SettingsError(name, f"unknown setting; known: {', '.join(sorted(allowed))}")
    changes: dict[str, Any] = {}
    if "unique_user_ids" in patch:
        if not isinstance(patch["unique_user_ids"], bool):
            raise SettingsError("unique_user_ids", "must be true or false")
        changes["unique_user_ids"] = patch["unique_user_ids"]
    for name, (low, high) in _BOUNDS.items():
        if name in patch:
            value = patch[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SettingsError(name, f"must be a whole number from {low} to {high}")
            changes[name] = value
    for field in ("event_properties_as_attributes", "protected_attributes"):
        if field in patch:
            changes[field] = _names(field, patch[field])
    return replace(current, **changes)


MAX_KEPT_EVENT_PROPERTIES = 100


def _names(field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_KEPT_EVENT_PROPERTIES:
        raise SettingsError(field, f"must be a list of at most {MAX_KEPT_EVENT_PROPERTIES} names")
    for name in value:
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_PROPERTY_NAME_CHARS:
            raise SettingsError(
                field, f"each name must be a string of 1-{MAX_PROPERTY_NAME_CHARS} characters"
            )
        if field == "protected_attributes" and "*" in name[:-1]:
            raise SettingsError(field, f"{name!r}: a * may only end a name (idp.*, or * for all)")
    if len(set(value)) != len(value):
        raise SettingsError(field, "names an attribute twice")
    return tuple(value)


def new_account_id() -> str:
    return "acc_" + secrets.token_hex(8)


def new_key(kind: KeyKind) -> str:
    return KEY_PREFIX[kind] + secrets.token_urlsafe(24)


def hash_key(key: str) -> str:
    # Keys are 192 random bits, so a fast unsalted hash is enough: there is
    # no dictionary to try, and lookups must stay cheap on every request.
    return hashlib.sha256(key.encode()).hexdigest()
