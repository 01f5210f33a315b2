"""Ingest: fold one request's events into each user's open window of sessions.

Common path per (request, user): one batched read of the session item and
one conditional write of it. Runs that are due (the window's timeout passed
since its last change, or a bound of domain.sessions) close in the same
step, as one transaction with the user's profile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pynamodb.exceptions import PynamoDBException

from insights.domain.core.admission import NOTHING_PROTECTED
from insights.domain.core.events import Batch, Context, Event, Rejection, parse_batch
from insights.domain.core.limits import admit_to_session
from insights.domain.core.sessions import Enrichment, Stamped, fold, merge_props, recalled_shift
from insights.services.core import identity
from insights.services.core.closing import MAX_ATTEMPTS, backoff, close_into, count_closed
from insights.services.core.enrich import enrich
from insights.storage.core import store
from insights.storage.core.accounts import Account
from insights.storage.core.records import ProfileRecord, SessionRecord, user_pk
from insights.storage.core.store import Conflict, DeleteSession, PutProfile, PutSession, Write

logger = Logger(child=True)
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
    return ingest_many(
        account, [(body, default_context)], received_ms=received_ms, trusted=trusted
    )[0]


def ingest_many(
    account: Account,
    requests: list[tuple[bytes | str | None, Context]],
    *,
    received_ms: int,
    trusted: bool = False,
) -> list[IngestResult]:
    """Several event requests of one sender, each as `ingest` takes it, in order.

    Segment's batch becomes one request per context (ingest enriches one per
    request); the users' session items and profiles are read for all of
    them at once, so a batch of messages with a context each costs what the
    same events cost in one ``/v1/events`` request. A RequestError in any
    refuses them all (the Segment door builds them valid).
    """
    parsed = [_screened(account, body, received_ms, context, trusted) for body, context in requests]
    if not account.settings.unique_user_ids:
        for _, result in parsed:
            result.user_records = False
        return [result for _, result in parsed]
    reads = _Reads()
    if len(parsed) > 1:  # one BatchGetItem of sessions (and of profiles) for them all
        users = dict.fromkeys(e.uuid for batch, _ in parsed for e in batch.events)
        reads.read([user_pk(account.account_id, uuid) for uuid in users])
    for batch, result in parsed:
        if not batch.events:
            continue
        before = len(batch.rejected)
        result.late = _store_events(account, batch, received_ms, reads)
        metrics.add_metric(name="EventsLate", unit=MetricUnit.Count, value=result.late)
        if len(batch.rejected) > before:  # refused per user by the limits (_admit)
            refused = len(batch.rejected) - before
            result.accepted -= refused
            metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=refused)
            result.rejected.sort(key=lambda r: r.index)
    return [result for _, result in parsed]


def _screened(
    account: Account,
    body: bytes | str | None,
    received_ms: int,
    default_context: Context,
    trusted: bool,
) -> tuple[Batch, IngestResult]:
    batch = parse_batch(
        body,
        received_ms=received_ms,
        backfill_days=account.settings.backfill_days,
        default_context=default_context,
        kept_properties=frozenset(account.settings.event_properties_as_attributes),
        protected=NOTHING_PROTECTED if trusted else account.settings.protected,
    )
    unverified = identity.screen(account.account_id, batch, trusted=trusted, now_ms=received_ms)
    if unverified:
        metrics.add_metric(name="EventsUnverified", unit=MetricUnit.Count, value=unverified)
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(batch.events))
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=len(batch.rejected))
    return batch, IngestResult(accepted=len(batch.events), rejected=batch.rejected)


@dataclass(slots=True)
class _Reads:
    """Session items and profiles read for the requests of one ``ingest_many``.

    A user's records are read once for all the requests; once a request has
    written them they are stale, so they are forgotten and a later request
    naming the same user reads them again.
    """

    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    profiles: dict[str, ProfileRecord] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)

    def read(self, pks: list[str]) -> None:
        missing = [pk for pk in pks if pk not in self.known]
        if not missing:
            return
        sessions = store.get_sessions(missing)
        self.sessions.update(sessions)
        self.profiles.update(store.get_profiles(pk for pk in missing if pk not in sessions))
        self.known.update(missing)

    def forget(self, pk: str) -> None:
        self.known.discard(pk)
        self.sessions.pop(pk, None)
        self.profiles.pop(pk, None)


def _store_events(account: Account, batch: Batch, now_ms: int, reads: _Reads) -> int:
    by_user: dict[str, list[Event]] = defaultdict(list)
    for event in batch.events:
        by_user[event.uuid].append(event)
    enrichment = enrich(batch.context)
    pks = {uuid: user_pk(account.account_id, uuid) for uuid in by_user}
    reads.read(list(pks.values()))
    late = 0
    for uuid, events in by_user.items():
        pk = pks[uuid]
        session = reads.sessions.get(pk)
        events = _admit(account, events, session, now_ms, batch.rejected)
        if not events:
            continue
        with _isolated(uuid, events, batch.rejected):
            late += _store_user(
                account,
                uuid,
                events,
                batch,
                enrichment,
                now_ms,
                session,
                reads.profiles.get(pk),
                profile_loaded=session is None,
            )
        reads.forget(pk)
    return late


# ------------------------------------------------- per-user limits (issue 12)
def _admit(
    account: Account,
    events: list[Event],
    session: SessionRecord | None,
    now_ms: int,
    out: list[Rejection],
) -> list[Event]:
    """The user's events the open window has room for; the others rejected (limits.py).

    Every run of the open window lives in one session item, so their
    properties count together; a window whose time is up closes before these
    events join a new one, and holds nothing against them.
    """
    held: dict[str, Stamped] = {}
    if session is not None and now_ms < session.window.closes_at(session.timeout_ms):
        for run in session.window.runs:
            held = merge_props(held, run.props)
    kept, refused = admit_to_session(held, events)
    # The whole event: what overflows are the values it sets on the user, which
    # may come from its user_properties, its kept properties or both.
    out.extend(Rejection(e.index, f"events[{e.index}]", why) for e, why in refused)
    return kept


@contextmanager
def _isolated(uuid: str, events: list[Event], out: list[Rejection]) -> Iterator[None]:
    """One user's data that DynamoDB refuses (an item over 400 KB) fails that user only.

    The limits keep items far below that size; this is the backstop that
    keeps the other users of the request, and answers which events were lost.
    """
    try:
        yield
    except PynamoDBException as exc:
        if not _refused_as_invalid(exc):
            raise
        logger.exception("events of one user could not be stored", extra={"events": len(events)})
        metrics.add_metric(name="EventsNotStored", unit=MetricUnit.Count, value=len(events))
        out.extend(
            Rejection(
                e.index,
                f"events[{e.index}]",
                "could not be stored: the user's data is over DynamoDB's limits",
            )
            for e in events
        )


def _refused_as_invalid(exc: PynamoDBException) -> bool:
    if exc.cause_response_code == "ValidationException":
        return True
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "ValidationError" for r in reasons)


def _last_closed_end(record: ProfileRecord | None, now_ms: int) -> int | None:
    if record is None:
        return None
    profile = record.profile
    marks = [profile.erased_at]
    if profile.is_alive(now_ms):
        marks.append(profile.last_seen)
    known = [m for m in marks if m is not None]
    return max(known) if known else None


def _shifted(events: list[Event], shift_ms: int) -> list[Event]:
    if not shift_ms:
        return events
    return [replace(event, ts=event.ts + shift_ms) for event in events]


def _store_user(
    account: Account,
    uuid: str,
    events: list[Event],
    batch: Batch,
    enrichment: Enrichment,
    now_ms: int,
    session: SessionRecord | None,
    profile: ProfileRecord | None,
    *,
    profile_loaded: bool,
) -> int:
    pk = user_pk(account.account_id, uuid)
    timeout_ms = account.settings.session_timeout_ms
    sent = None if batch.sent_at is None else (batch.sent_at, batch.offset_ms)
    for attempt in range(MAX_ATTEMPTS):
        window = session.window if session else None
        if window is None and not profile_loaded:
            profile, profile_loaded = store.get_profile(pk, consistent=True), True
        memory = window.sent if window else (profile.profile.recent_sends if profile else ())
        # A retry of a body already seen (same sent_at) is corrected as the first try was.
        shift = recalled_shift(memory, batch.sent_at, batch.offset_ms)
        result = fold(
            window,
            _shifted(events, shift),
            last_closed_end=None if window else _last_closed_end(profile, now_ms),
            timeout_ms=timeout_ms,
            enrichment=enrichment,
            now_ms=now_ms,
            sent=sent,
            memory=memory,
        )
        writes: list[Write] = []
        if result.closed or result.late_props:
            if not profile_loaded:
                profile, profile_loaded = store.get_profile(pk, consistent=True), True
            updated = close_into(
                profile.profile if profile else None,
                result.closed,
                result.late_props,
                result.sent if result.window is None else (),
                account_id=account.account_id,
                uuid=uuid,
                now_ms=now_ms,
            )
            if updated is not None:
                writes.append(PutProfile(updated, profile.version if profile else None))
        if result.window is not None:
            if window != result.window:  # a pure duplicate changes nothing: no write
                writes.append(
                    PutSession(pk, result.window, timeout_ms, session.version if session else None)
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
            count_closed(result.closed, "lazy")
        return result.late
    raise RuntimeError(f"could not store events for one user after {MAX_ATTEMPTS} attempts")
