"""The profile: aggregates, idempotent application, retention and erasure."""

from __future__ import annotations

from insights.domain.core.profile import RETENTION_MS, apply_session, merge_custom, tombstone
from insights.domain.core.sessions import Enrichment, Session, Stamped
from insights.domain.core.timefmt import DAY_MS, MINUTE_MS

T0 = 1_790_000_000_000


def session(start_min: float, end_min: float, **props: object) -> Session:
    start, end = T0 + int(start_min * MINUTE_MS), T0 + int(end_min * MINUTE_MS)
    return Session(
        start=start,
        end=end,
        interactive=True,
        props={k: Stamped(v, end) for k, v in props.items()},
        enrichment=Enrichment(ts=end, country="Sweden", browser_name="Firefox"),
    )


def apply(profile, s: Session, now: int = T0 + 10 * DAY_MS):
    return apply_session(profile, s, account_id="a", uuid="u", now_ms=now)


def test_aggregates_and_averages() -> None:
    p = apply(None, session(0, 10, role="admin"))
    p = apply(p, session(60, 80))
    p = apply(p, session(200, 230))
    assert p is not None
    std = p.standard()
    assert std["total_sessions"] == 3
    assert std["total_session_duration"] == (10 + 20 + 30) * 60
    assert std["avg_session_duration"] == 20 * 60
    # gaps: 10->60 and 80->200 = 50 + 120 minutes, over 2 gaps
    assert std["avg_time_between_sessions"] == 85 * 60
    assert std["country"] == "Sweden" and std["browser_name"] == "Firefox"
    assert p.custom["role"].value == "admin" and p.custom["role"].source == "event"


def test_one_session_has_no_time_between_sessions() -> None:
    p = apply(None, session(0, 5))
    assert p is not None and p.standard()["avg_time_between_sessions"] is None


def test_applying_the_same_session_twice_changes_nothing() -> None:
    s = session(0, 10, role="admin")
    p = apply(None, s)
    assert apply(p, s) is None


def test_late_session_only_brings_newer_properties() -> None:
    p = apply(None, session(60, 80, role="old"))
    late = Session(
        start=T0,
        end=T0 + 5 * MINUTE_MS,
        interactive=True,
        props={"role": Stamped("older", T0), "plan": Stamped("vip", T0)},
    )
    updated = apply(p, late)
    assert updated is not None
    assert updated.total_sessions == 1
    assert updated.custom["role"].value == "old" and updated.custom["plan"].value == "vip"


def test_expired_record_starts_fresh() -> None:
    p = apply(None, session(0, 10, role="admin"))
    assert p is not None
    later = T0 + RETENTION_MS + DAY_MS
    assert not p.is_alive(later)
    back = Session(start=later, end=later + MINUTE_MS, interactive=True)
    fresh = apply(p, back, now=later + MINUTE_MS)
    assert fresh is not None
    assert fresh.first_seen == later and fresh.total_sessions == 1 and fresh.custom == {}


def test_tombstone_ignores_data_from_before_the_erasure() -> None:
    erased = tombstone("a", "u", T0 + 60 * MINUTE_MS)
    assert apply(erased, session(0, 10)) is None
    assert merge_custom(erased, {"role": Stamped("x", T0)}, "csv") is erased
    after = apply(erased, session(70, 75))
    assert after is not None and after.total_sessions == 1
