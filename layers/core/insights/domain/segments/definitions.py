"""A saved segment: name, description and parsed rules."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from insights.domain.core.timefmt import format_time
from insights.domain.segments.rules import Node, RuleError, parse_rules

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_SEGMENTS = 100


@dataclass(frozen=True, slots=True)
class Segment:
    id: str
    name: str
    description: str
    rules: Any  # as sent (validated): what GET returns
    created_at: int
    updated_at: int
    # Shown to browsers through the SDK (a verified user's own segments only).
    targeting: bool = False
    # Entering and leaving it are announced on the event bus (domain/notify.py).
    notify: bool = False

    def parsed(self) -> Node:
        return parse_rules(self.rules)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "rules": self.rules,
            "targeting": self.targeting,
            "notify": self.notify,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
        }


def new_segment_id() -> str:
    return "seg_" + secrets.token_hex(6)


def parse_targeting(raw: dict[str, Any]) -> bool:
    """The optional `targeting` flag of a POST/PUT body (default false)."""
    return _flag(raw, "targeting")


def parse_notify(raw: dict[str, Any]) -> bool:
    """The optional `notify` flag of a POST/PUT body (default false)."""
    return _flag(raw, "notify")


def _flag(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name, False)
    if not isinstance(value, bool):
        raise RuleError(name, "must be true or false")
    return value


def parse_body(raw: Any) -> tuple[str, str, Any, Node]:
    """Validate a POST/PUT body: (name, description, rules as sent, parsed rules)."""
    if not isinstance(raw, dict):
        raise RuleError("body", "send an object with name, description and rules")
    for key in raw:
        if key not in ("name", "description", "rules", "targeting", "notify"):
            raise RuleError(
                key, "unknown field; a segment has name, description, rules, targeting and notify"
            )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise RuleError("name", f"must be a non-empty string of at most {MAX_NAME} characters")
    description = raw.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise RuleError("description", f"must be a string of at most {MAX_DESCRIPTION} characters")
    if "rules" not in raw:
        raise RuleError("rules", "required")
    node = parse_rules(raw["rules"])
    return name.strip(), description, raw["rules"], node
