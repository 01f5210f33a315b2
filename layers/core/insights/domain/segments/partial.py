"""Index-only evaluation: deciding a candidate from the index item the plan read.

An index item carries part of a profile (its projection). When every stored
field a rule tree needs is in it, the candidate is evaluated on that partial
profile with the same evaluator, and the profile itself is not read. The
visibility checks (DESIGN invariants 6 and 7) need proof from the item too:

- `by_last_seen` carries last_seen and total_sessions: `is_visible` is exact.
- `by_first_seen` carries first_seen only. first_seen exists only once a
  session closed (hidden profiles and erasure tombstones have none, so they
  are not in the index), and last_seen >= first_seen, so first_seen within
  the retention window proves the user alive. Older first_seen: unknown.
- `idx#<attribute>` entries exist only for profiles with a closed session and
  carry `live_until` (last_seen + retention when written; last_seen only
  grows within a record, and a fresh record rewrites or deletes every entry
  that differs). now <= live_until proves the user alive; otherwise unknown.

Unknown means "read the profile", as without this module.
"""

from __future__ import annotations

from insights.domain.core.profile import RETENTION_MS, Profile
from insights.domain.segments.rules import Condition, Group, Node, Not

# The stored fields behind each standard attribute (derived ones need several).
_FIELDS: dict[str, frozenset[str]] = {
    "total_session_duration": frozenset({"total_duration_ms"}),
    "avg_session_duration": frozenset({"total_duration_ms", "total_sessions"}),
    "avg_time_between_sessions": frozenset(
        {"first_seen", "last_seen", "total_sessions", "total_duration_ms"}
    ),
}
# What by_last_seen projects (with its range key): every field behind the
# standard attributes, so its partial profile has a complete `standard()`.
STANDARD_FIELDS = frozenset(
    {
        "first_seen",
        "last_seen",
        "total_sessions",
        "total_duration_ms",
        "country",
        "region",
        "city",
        "browser_name",
        "browser_version",
    }
)
ENTRY_INDEXES = frozenset({"by_value", "by_change"})


def fields_needed(node: Node) -> frozenset[str]:
    """Stored fields the rule tree reads ("custom.<name>" for custom attributes)."""
    if isinstance(node, Condition):
        if node.attr_type == "custom":
            return frozenset({node.attribute})
        return _FIELDS.get(node.attribute, frozenset({node.attribute}))
    if isinstance(node, Not):
        return fields_needed(node.child)
    assert isinstance(node, Group)
    return frozenset().union(*(fields_needed(child) for child in node.children))


def carried(index: str, attribute: str | None = None) -> frozenset[str]:
    """Fields an item of `index` carries; entries carry their own attribute."""
    if index == "by_last_seen":
        return STANDARD_FIELDS
    if index == "by_first_seen":
        return frozenset({"first_seen"})
    if index in ENTRY_INDEXES and attribute is not None:
        return frozenset({attribute})
    return frozenset()


def decidable(node: Node, index: str, attribute: str | None = None) -> bool:
    return fields_needed(node) <= carried(index, attribute)


def visible(index: str, partial: Profile, live_until: int | None, now_ms: int) -> bool | None:
    """Whether the index item proves the user visible (True), hidden (False), or neither."""
    if index == "by_last_seen":
        return partial.is_visible(now_ms)
    if index == "by_first_seen":
        if partial.first_seen is not None and partial.first_seen >= now_ms - RETENTION_MS:
            return True
        return None
    if index in ENTRY_INDEXES and live_until is not None and now_ms <= live_until:
        return True
    return None
