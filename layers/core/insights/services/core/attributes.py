"""The one attribute path: every source of custom attributes writes through here.

File imports, and every integration after them (Segment ``identify``,
Salesforce, SCIM, OIDC and SAML claims), are adapters that turn what they
receive into ``Row``s (a uuid and typed values stamped with the time they
were true) and call ``write_attributes`` with their source name. The rules
live once, in ``domain.core.attributes.apply_import``: most recent wins by
time, values for users without a closed session wait hidden, an expired
record starts fresh, and an account with ``unique_user_ids`` off is refused.

What the per-user caps refuse (``domain.core.admission.admit_to_user``,
judged against the record each write is conditional on) comes back in the
result, never logged and dropped: each door reports it in its own format.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Metrics
from pynamodb.exceptions import PynamoDBException

from insights import clock
from insights.domain.core.admission import admit_to_user
from insights.domain.core.attributes import Rejection, Row, apply_import
from insights.metrics import LOCK as METRICS_LOCK
from insights.metrics import count
from insights.services.core.closing import MAX_ATTEMPTS, backoff
from insights.storage.core import store
from insights.storage.core.accounts import Account
from insights.storage.core.records import ProfileRecord, user_pk
from insights.storage.core.store import Conflict, PutProfile

metrics = Metrics()

THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
NO_USER_RECORDS = (
    "unique_user_ids is off for this account: there are no user records to write attributes to"
)


class UserRecordsOff(Exception):
    """The account keeps no user records, so no source may write attributes."""

    def __init__(self) -> None:
        super().__init__(NO_USER_RECORDS)


class Throttled(RuntimeError):
    """DynamoDB kept throttling a read or write past the retries: try again later.

    Some of the batch's users may have been written already; applying the
    batch again writes nothing for them (most recent wins), so a caller may
    back off and re-run the whole batch.
    """


@dataclass(slots=True)
class Written:
    """What a write did: profile writes, and what the per-user caps refused.

    ``refused``: a Rejection per refused row (column "") when the write was
    atomic, else per refused value (column: the attribute name); ``row`` is
    the row's number as the door gave it.
    """

    writes: int = 0
    refused: list[Rejection] = field(default_factory=list)


def write_attributes(
    account: Account,
    rows: list[Row],
    source: str,
    *,
    atomic: bool = True,
    always: frozenset[str] = frozenset(),
) -> Written:
    """Apply rows from any source for one account.

    Rows (or, with ``atomic=False``, single values) that would take a user
    past the per-user caps are refused and returned; the user's other rows
    still apply. `always`: names the caps never refuse (SCIM's active flag).
    """
    if not account.settings.unique_user_ids:
        raise UserRecordsOff()
    return apply_rows(account.account_id, rows, source, atomic=atomic, always=always)


def apply_rows(
    account_id: str,
    rows: list[Row],
    source: str,
    *,
    atomic: bool = True,
    always: frozenset[str] = frozenset(),
    concurrency: int = 1,
    deadline: float | None = None,
) -> Written:
    """Apply rows; one conditional write per user that changes.

    `deadline` (time.monotonic()): a throttle pause that would pass it raises
    Throttled at once, so a caller with a time budget backs off in time
    instead of being cut off mid-batch by its timeout.

    `concurrency`: users written side by side. Each user's rows are one write
    conditional on the record they were judged against, and no user appears
    twice in a batch, so the writes are independent: the result (writes, and
    refusals in the batch's user order) is what one-at-a-time gives.
    """
    result = Written()
    if not rows:
        return result
    by_user: dict[str, list[Row]] = {}
    for row in rows:
        by_user.setdefault(row.uuid, []).append(row)
    pks = {uuid: user_pk(account_id, uuid) for uuid in by_user}
    found = with_throttle_retry(lambda: store.get_profiles(pks.values(), consistent=True), deadline)

    def one(uuid: str) -> _Outcome:
        pk = pks[uuid]
        return _apply_user(
            account_id, uuid, pk, by_user[uuid], source, found.get(pk), atomic, always, deadline
        )

    if concurrency <= 1 or len(by_user) == 1:
        outcomes = [one(uuid) for uuid in by_user]
    else:
        # cancel_futures: once one user gives up, the rest of the batch is not
        # started (the caller re-runs the batch), so a throttled batch stops
        # after about one write's retries rather than every user's.
        pool = ThreadPoolExecutor(max_workers=min(concurrency, len(by_user)))
        try:
            outcomes = list(pool.map(one, by_user))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    for writes, refused in outcomes:
        result.writes += writes
        result.refused.extend(refused)
    count(metrics, "ImportProfileWrites", result.writes)
    if result.refused:
        count(metrics, "AttributeRowsOverLimit", len(result.refused))
    return result


_Outcome = tuple[int, list[Rejection]]  # (profile writes, refusals) of one user


def _apply_user(
    account_id: str,
    uuid: str,
    pk: str,
    rows: list[Row],
    source: str,
    record: ProfileRecord | None,
    atomic: bool,
    always: frozenset[str],
    deadline: float | None = None,
) -> _Outcome:
    """One user's rows, judged against the record the write is conditional on.

    A conflict re-reads the record and judges again, so what is refused is
    what the stored record could not take, whoever wrote meanwhile.
    """
    # Each kind of retry backs off by its own count: a conflict after a run of
    # throttles is a first conflict, not the thirteenth wait.
    conflicts = throttles = 0
    for _ in range(MAX_ATTEMPTS * 2):
        now_ms = clock.now_ms()
        profile = record.profile if record is not None else None
        live = profile is not None and profile.is_alive(now_ms)
        values, refused = admit_to_user(
            profile.custom if live and profile is not None else {},
            rows,
            atomic=atomic,
            always=always,
            erased_at=profile.erased_at if profile is not None else None,
        )
        if not values:
            return 0, refused
        with METRICS_LOCK:  # its merge may publish a refusal (limits.report_dropped)
            updated = apply_import(
                profile,
                values,
                account_id=account_id,
                uuid=uuid,
                source=source,
                now_ms=now_ms,
                keep=always,
            )
        if updated is None:
            return 0, refused
        try:
            store.commit([PutProfile(updated, record.version if record else None)])
            return 1, refused
        except Conflict:
            count(metrics, "ImportConflicts")
            backoff(conflicts)
            conflicts += 1
            # Throttling this read is throttling too: Throttled, so an import
            # backs off rather than spending one of the message's deliveries.
            record = with_throttle_retry(lambda: store.get_profile(pk, consistent=True), deadline)
        except PynamoDBException as exc:
            if exc.cause_response_code not in THROTTLED:
                raise
            count(metrics, "ImportThrottled")
            _throttle_pause(throttles, deadline)
            throttles += 1
    if throttles:
        raise Throttled("DynamoDB kept throttling the attribute writes")
    raise RuntimeError("could not apply attributes after repeated conflicts")


def _throttle_pause(attempt: int, deadline: float | None = None) -> None:
    pause = min(2.0, 0.05 * 2**attempt)
    if deadline is not None and time.monotonic() + pause > deadline:
        raise Throttled("DynamoDB kept throttling until the time budget ran out")
    time.sleep(pause)


def with_throttle_retry(call: Callable[[], Any], deadline: float | None = None) -> Any:
    for attempt in range(MAX_ATTEMPTS):
        try:
            return call()
        except PynamoDBException as exc:
            if exc.cause_response_code not in THROTTLED:
                raise
            count(metrics, "ImportThrottled")
            if attempt == MAX_ATTEMPTS - 1:
                raise Throttled("DynamoDB kept throttling the profile reads") from exc
            _throttle_pause(attempt, deadline)
    raise AssertionError("unreachable")
