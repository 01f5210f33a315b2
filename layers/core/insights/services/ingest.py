"""Ingest: fold one request's events into each user's open session.

Common path per (request, user): one batched read of the session item and
one conditional write of it. A session that the new events show to be over
closes in the same step, as one transaction with the user's profile.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights.domain.events import Batch, Context, Event, Rejection, parse_batch
from insights.domain.profile import apply_sessions, live_base, merge_custom
from insights.domain.sessions import Enrichment, fold
from insights.enrich import enrich
from insights.services import identity
from insights.services.closing import MAX_ATTEMPTS, backoff
from insights.storage import store
from insights.storage.accounts import Account
from insights.storage.records import ProfileRecord, SessionRecord, user_pk
from insights.storage.store import Conflict, DeleteSession, PutProfile, PutSession, Write

metrics = Metrics()


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    late: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    user_records: bool = True

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "accepted": self.accepted,
            "late": self.late,
            "rejected": [r.as_dict() for r in self.rejected],
        }
        if not self.user_records:
            body["user_records"] = False
            body["note"] = (
                "unique_user_ids is off for this account: events are accepted, "
                "no user records are kept"
            )
        return body


def ingest(
    account: Account,
    body: bytes | str | None,
    *,
    received_ms: int,
    default_context: Context,
    trusted: bool = False,
) -> IngestResult:
    """trusted: sent with the secret key (a server), so exempt from identity verification."""
    batch = parse_batch(
        body,
        received_ms=received_ms,
        backfill_days=account.settings.backfill_days,
        default_context=default_context,
    )
    unverified = identity.screen(account.account_id, batch, trusted=trusted, now_ms=received_ms)
    if unverified:
        metrics.add_metric(name="EventsUnverified", unit=MetricUnit.Count, value=unverified)
    result = IngestResult(accepted=len(batch.events), rejected=batch.rejected)
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(batch.events))
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=len(batch.rejected))
    if not account.settings.unique_user_ids:
        result.user_records = False
        return result
    if batch.events:
        result.late = _store_events(account, batch, received_ms)
        metrics.add_metric(name="EventsLate", unit=MetricUnit.Count, value=result.late)
    return result


def _store_events(account: Account, batch: Batch, now_ms: int) -> int:
    by_user: dict[str, list[Event]] = defaultdict(list)
    for event in batch.events:
        by_user[event.uuid].append(event)
    enrichment = enrich(batch.context)
    pks = {uuid: user_pk(account.account_id, uuid) for uuid in by_user}
    sessions = store.get_sessions(pks.values())
    profiles = store.get_profiles(pk for pk in pks.values() if pk not in sessions)
    late = 0
    for uuid, events in by_user.items():
        pk = pks[uuid]
        late += _store_user(
            account,
            uuid,
            sorted(events, key=lambda e: e.ts),
            enrichment,
            now_ms,
            sessions.get(pk),
            profiles.get(pk),
            profile_loaded=pk not in sessions,
        )
    return late


def _last_closed_end(record: ProfileRecord | None, now_ms: int) -> int | None:
    if record is None:
        return None
    profile = record.profile
    marks = [profile.erased_at]
    if profile.is_alive(now_ms):
        marks.append(profile.last_seen)
    known = [m for m in marks if m is not None]
    return max(known) if known else None


def _store_user(
    account: Account,
    uuid: str,
    events: list[Event],
    enrichment: Enrichment,
    now_ms: int,
    session: SessionRecord | None,
    profile: ProfileRecord | None,
    *,
    profile_loaded: bool,
) -> int:
    pk = user_pk(account.account_id, uuid)
    timeout_ms = account.settings.session_timeout_ms
    for attempt in range(MAX_ATTEMPTS):
        open_session = session.session if session else None
        if open_session is None and not profile_loaded:
            profile, profile_loaded = store.get_profile(pk, consistent=True), True
        last_end = open_session.prev_end if open_session else _last_closed_end(profile, now_ms)
        result = fold(
            open_session,
            events,
            last_closed_end=last_end,
            timeout_ms=timeout_ms,
            enrichment=enrichment,
            now_ms=now_ms,
        )
        writes: list[Write] = []
        if result.closed or result.late_props:
            if not profile_loaded:
                profile, profile_loaded = store.get_profile(pk, consistent=True), True
            current = profile.profile if profile else None
            updated = apply_sessions(
                current, result.closed, account_id=account.account_id, uuid=uuid, now_ms=now_ms
            )
            if result.late_props and current is not None and current.is_alive(now_ms):
                base = updated or live_base(current, account.account_id, uuid, now_ms)
                merged = merge_custom(base, result.late_props, "event")
                updated = merged if merged is not base else updated
            if updated is not None:
                writes.append(PutProfile(updated, profile.version if profile else None))
        if result.open is not None:
            if open_session != result.open:  # a pure duplicate changes nothing: no write
                writes.append(
                    PutSession(pk, result.open, timeout_ms, session.version if session else None)
                )
        elif session is not None:
            writes.append(DeleteSession(pk, session.version))
        try:
            store.commit(writes)
        except Conflict:
            metrics.add_metric(name="IngestConflicts", unit=MetricUnit.Count, value=1)
            backoff(attempt)
            session = store.get_session(pk, consistent=True)
            profile, profile_loaded = store.get_profile(pk, consistent=True), True
            continue
        if result.closed:
            metrics.add_metric(
                name="SessionsClosedLazily", unit=MetricUnit.Count, value=len(result.closed)
            )
        return result.late
    raise RuntimeError(f"could not store events for one user after {MAX_ATTEMPTS} attempts")
