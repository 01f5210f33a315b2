"""The user profile: standard attributes from closed sessions, custom attributes.

Aggregates are kept in a form that does not depend on the order sessions are
applied in: first_seen, last_seen, a count and a sum. Both averages derive
from them (the gaps between n non-overlapping sessions add up to
last_seen - first_seen - total duration).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from insights.domain.core.limits import fit_custom, report_dropped
from insights.domain.core.sessions import Retraction, Session, Stamped, newer
from insights.domain.core.timefmt import DAY_MS, format_time

RETENTION_MS = 180 * DAY_MS
# An erased user's tombstone outlives the longest backfill window, so no
# delayed event can bring back data from before the erasure.
ERASURE_MEMORY_MS = 366 * DAY_MS

ANALYTICS_PROPERTIES = ("name", "role", "type", "status", "info")
STANDARD_ATTRIBUTES = (
    "first_seen",
    "last_seen",
    "total_sessions",
    "total_session_duration",
    "avg_session_duration",
    "avg_time_between_sessions",
    "country",
    "region",
    "city",
    "browser_name",
    "browser_version",
)


@dataclass(frozen=True, slots=True)
class CustomValue:
    value: Any
    updated_at: int
    source: str
    # When the value last became what it is (updated_at moves on every resend
    # of the same value). None means the same as updated_at. Segments'
    # `changed_within` ("recently upgraded to VIP") asks this one.
    changed_at: int | None = None

    @property
    def changed_since(self) -> int:
        return self.updated_at if self.changed_at is None else self.changed_at

    def stamped(self) -> Stamped:
        return Stamped(self.value, self.updated_at)


@dataclass(frozen=True, slots=True)
class Profile:
    account_id: str
    uuid: str
    created_at: int
    first_seen: int | None = None
    last_seen: int | None = None
    total_sessions: int = 0
    total_duration_ms: int = 0
    country: str | None = None
    region: str | None = None
    city: str | None = None
    browser_name: str | None = None
    browser_version: str | None = None
    custom: dict[str, CustomValue] = field(default_factory=dict)
    erased_at: int | None = None
    # (sent_at, offset) of the user's recent tracking requests, kept from their
    # last closed window, so a retry with the same sent_at lands where the first
    # try did (insights.domain.core.sessions.recalled_shift).
    recent_sends: tuple[tuple[int, int], ...] = ()

    # ------------------------------------------------------------ lifecycle
    @property
    def last_activity(self) -> int:
        return self.last_seen if self.last_seen is not None else self.created_at

    def is_alive(self, now_ms: int) -> bool:
        return now_ms - self.last_activity <= RETENTION_MS

    def is_visible(self, now_ms: int) -> bool:
        """Attributes exist only after a first closed session, and until expiry."""
        return self.total_sessions > 0 and self.is_alive(now_ms)

    def expires_at_ms(self) -> int:
        expiry = self.last_activity + RETENTION_MS
        if self.erased_at is not None:
            expiry = max(expiry, self.erased_at + ERASURE_MEMORY_MS)
        return expiry

    # --------------------------------------------------------- derived values
    @property
    def avg_duration_ms(self) -> float | None:
        if not self.total_sessions:
            return None
        return self.total_duration_ms / self.total_sessions

    @property
    def avg_gap_ms(self) -> float | None:
        if self.total_sessions < 2 or self.first_seen is None or self.last_seen is None:
            return None
        gaps = self.last_seen - self.first_seen - self.total_duration_ms
        return gaps / (self.total_sessions - 1)

    def standard(self) -> dict[str, Any]:
        return {
            "first_seen": format_time(self.first_seen),
            "last_seen": format_time(self.last_seen),
            "total_sessions": self.total_sessions,
            "total_session_duration": _seconds(self.total_duration_ms),
            "avg_session_duration": _seconds(self.avg_duration_ms),
            "avg_time_between_sessions": _seconds(self.avg_gap_ms),
            "country": self.country,
            "region": self.region,
            "city": self.city,
            "browser_name": self.browser_name,
            "browser_version": self.browser_version,
        }

    def public(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "standard": self.standard(),
            "custom": {
                name: {
                    "value": item.value,
                    "updated_at": format_time(item.updated_at),
                    "source": item.source,
                }
                for name, item in sorted(self.custom.items())
            },
        }


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


def fresh(
    account_id: str,
    uuid: str,
    now_ms: int,
    previous: Profile | None = None,
    custom: dict[str, CustomValue] | None = None,
) -> Profile:
    """A new record; an erasure tombstone of the previous one is carried over."""
    erased_at = previous.erased_at if previous is not None else None
    return Profile(
        account_id=account_id,
        uuid=uuid,
        created_at=now_ms,
        erased_at=erased_at,
        custom={} if custom is None else custom,
    )


def tombstone(account_id: str, uuid: str, now_ms: int) -> Profile:
    return Profile(account_id=account_id, uuid=uuid, created_at=now_ms, erased_at=now_ms)


def live_base(profile: Profile | None, account_id: str, uuid: str, now_ms: int) -> Profile:
    """The record new data lands on: the current one, or a fresh one if expired."""
    if profile is None or not profile.is_alive(now_ms):
        return fresh(account_id, uuid, now_ms, profile)
    return profile


def merge_custom(profile: Profile, updates: dict[str, Stamped], source: str) -> Profile:
    """Most recent wins by event/import time, whatever order values arrive in."""
    custom = merged_custom(profile.custom, updates, source, erased_at=profile.erased_at)
    return profile if custom is None else replace(profile, custom=custom)


def merge_into_live(
    profile: Profile | None,
    updates: dict[str, Stamped],
    source: str,
    *,
    account_id: str,
    uuid: str,
    now_ms: int,
    keep: frozenset[str] = frozenset(),
) -> Profile | None:
    """merge_custom on live_base's record, or None when nothing changes.

    The same result as merge_custom(live_base(...)), but a fresh record is
    built once, with its values, instead of built and then copied. `keep`:
    names the caps' last resort never leaves out (limits.fit_custom).
    """
    if profile is not None and profile.is_alive(now_ms):
        custom = merged_custom(
            profile.custom, updates, source, erased_at=profile.erased_at, keep=keep
        )
        return None if custom is None else replace(profile, custom=custom)
    erased_at = profile.erased_at if profile is not None else None
    custom = merged_custom({}, updates, source, erased_at=erased_at, keep=keep)
    return None if custom is None else fresh(account_id, uuid, now_ms, profile, custom)


def merged_custom(
    custom: dict[str, CustomValue],
    updates: dict[str, Stamped],
    source: str,
    *,
    erased_at: int | None,
    keep: frozenset[str] = frozenset(),
) -> dict[str, CustomValue] | None:
    """A copy of `custom` with the updates that win applied; None if none wins."""
    if not custom and erased_at is None:
        # Nothing to compare with (a new record, the common case of an import): all win,
        # but a retraction has nothing to clear.
        fresh_values = {
            name: CustomValue(s.value, s.ts, source)
            for name, s in updates.items()
            if not isinstance(s, Retraction)
        }
        return _fitted(custom, fresh_values, keep) or None
    merged: dict[str, CustomValue] | None = None
    for name, stamped in updates.items():
        if erased_at is not None and stamped.ts <= erased_at:
            continue
        current = custom.get(name)  # each name comes once: the original is as good as the copy
        if isinstance(stamped, Retraction) and (current is None or current.source != source):
            continue  # withdraws only what this source set
        if newer(current.stamped() if current else None, stamped):
            since = None
            if current is not None and same_value(current.value, stamped.value):
                since = current.changed_since  # a resend: the value did not change
            if merged is None:
                merged = dict(custom)
            merged[name] = CustomValue(stamped.value, stamped.ts, source, since)
    if merged is None:
        return None
    fitted = _fitted(custom, merged, keep)
    return None if fitted == custom else fitted


def _fitted(
    before: dict[str, CustomValue], after: dict[str, CustomValue], keep: frozenset[str]
) -> dict[str, CustomValue]:
    """`after` within the per-user caps (domain.limits): a close never fails on size."""
    fitted, dropped = fit_custom(before, after, keep)
    if dropped:
        report_dropped(len(dropped))
    return fitted


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same JSON type (True is not 1, "1" is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def apply_session(
    profile: Profile | None, session: Session, *, account_id: str, uuid: str, now_ms: int
) -> Profile | None:
    """The profile after a closed session, or None when nothing changes.

    Applying the same session twice changes nothing the second time: a
    session that starts at or before the last applied one is late (or a
    retry), and contributes only its properties, which are idempotent.
    """
    if not session.interactive:
        return None
    if profile is not None and profile.erased_at is not None and session.start <= profile.erased_at:
        return None
    base = live_base(profile, account_id, uuid, now_ms)
    if base.last_seen is not None and session.start <= base.last_seen:
        updated = merge_custom(base, session.props, "event")
        return None if updated is base else updated
    updated = replace(
        base,
        first_seen=session.start
        if base.first_seen is None
        else min(base.first_seen, session.start),
        last_seen=session.end,
        total_sessions=base.total_sessions + 1,
        total_duration_ms=base.total_duration_ms + session.duration_ms,
    )
    if session.enrichment is not None:
        e = session.enrichment
        updated = replace(
            updated,
            country=e.country,
            region=e.region,
            city=e.city,
            browser_name=e.browser_name,
            browser_version=e.browser_version,
        )
    return merge_custom(updated, session.props, "event")


def apply_sessions(
    profile: Profile | None,
    sessions: list[Session],
    *,
    account_id: str,
    uuid: str,
    now_ms: int,
) -> Profile | None:
    """Several sessions closed at once (oldest first); None if none changes anything."""
    result = profile
    changed = False
    for session in sorted(sessions, key=lambda s: s.start):
        updated = apply_session(result, session, account_id=account_id, uuid=uuid, now_ms=now_ms)
        if updated is not None:
            result, changed = updated, True
    return result if changed else None
