"""Custom attributes from every source: the row each door produces, and how it lands.

A door (Segment ``identify``, a file, Salesforce, SCIM, OIDC, SAML) turns
what it receives into ``Row``s: a user and typed values stamped with the
time they were true. ``services.core.attributes.write_attributes`` applies
them through ``apply_import``; what the per-user caps refuse comes back as
``Rejection``s (``domain.core.admission``), which each door reports in its
own wire format.
"""

from __future__ import annotations

from dataclasses import dataclass

from insights.domain.core.profile import Profile, merge_into_live
from insights.domain.core.sessions import Stamped


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused row (column ""), or one refused value of it (column: its name or path)."""

    row: int
    column: str
    reason: str


@dataclass(frozen=True, slots=True)
class Row:
    """A good row: the user and the attribute values it sets."""

    number: int
    uuid: str
    values: dict[str, Stamped]


def refused_attributes(refused: list[Rejection]) -> list[dict[str, str]]:
    """An IdP sign-in's answer: each attribute the caps refused, and why."""
    return [{"attribute": r.column, "reason": r.reason} for r in refused]


def apply_import(
    profile: Profile | None,
    values: dict[str, Stamped],
    *,
    account_id: str,
    uuid: str,
    source: str,
    now_ms: int,
    keep: frozenset[str] = frozenset(),
) -> Profile | None:
    """The profile after a source's values, or None when nothing changes.

    Values land on the live record (live_base): for a user never seen, or
    one whose record expired, that is a fresh record with no session. It
    stays hidden until the user's first session closes (invariant 6) and
    expires 180 days after the import unless the user comes back: an import
    never revives an expired record's old data, never makes a user visible
    and never extends a record's life (last activity is not touched).
    """
    return merge_into_live(
        profile, values, source, account_id=account_id, uuid=uuid, now_ms=now_ms, keep=keep
    )
