"""The one attribute path: every source of custom attributes writes through here.

File imports, and every integration after them (Segment ``identify``,
Salesforce, SCIM, OIDC and SAML claims), are adapters that turn what they
receive into ``Row``s (a uuid and typed values stamped with the time they
were true) and call ``write_attributes`` with their source name. The rules
live once, in ``domain.imports.apply_import``: most recent wins by time,
values for users without a closed session wait hidden, an expired record
starts fresh, and an account with ``unique_user_ids`` off is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pynamodb.exceptions import PynamoDBException

from insights import clock
from insights.domain.core.limits import after_updates, custom_overflow, surely_fits
from insights.domain.core.sessions import Stamped, merge_props
from insights.domain.imports.files import Rejection, Row, apply_import
from insights.services.core.closing import MAX_ATTEMPTS, backoff
from insights.storage.core import store
from insights.storage.core.accounts import Account
from insights.storage.core.records import user_pk
from insights.storage.core.store import Conflict, PutProfile

logger = Logger(child=True)
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


def write_attributes(
    account: Account, rows: list[Row], source: str, *, rejected: list[Rejection] | None = None
) -> int:
    """Apply rows from any source for one account. Returns profile writes.

    Rows that would take a user past the per-user caps (``domain.limits``)
    are refused, the user's other rows still apply: pass `rejected` to
    receive them (row number and reason), or they are logged and counted.
    """
    if not account.settings.unique_user_ids:
        raise UserRecordsOff()
    if rejected is None:
        return apply_rows(account.account_id, rows, source)
    return apply_rows(account.account_id, rows, source, rejected=rejected)


def apply_rows(
    account_id: str, rows: list[Row], source: str, *, rejected: list[Rejection] | None = None
) -> int:
    """Apply good rows; one conditional write per user that changes. Returns writes."""
    if not rows:
        return 0
    by_user: dict[str, dict[str, Stamped]] = {}
    for row in rows:
        seen = by_user.get(row.uuid)
        # merge_props copies; a user's first row (most users' only one) is taken as it is.
        by_user[row.uuid] = row.values if seen is None else merge_props(seen, row.values)
    pks = {uuid: user_pk(account_id, uuid) for uuid in by_user}
    found = with_throttle_retry(lambda: store.get_profiles(pks.values(), consistent=True))
    refused: list[Rejection] = []
    for uuid, values in by_user.items():
        record = found.get(pks[uuid])
        held = record.profile.custom if record is not None else {}
        if surely_fits(len(held) + len(values)):
            continue
        if custom_overflow(after_updates(held, values)) is not None:
            by_user[uuid] = _within_caps(held, [r for r in rows if r.uuid == uuid], refused)
    writes = 0
    for uuid, values in by_user.items():
        pk = pks[uuid]
        if values:
            writes += _apply_user(account_id, uuid, pk, values, source, found.get(pk))
    metrics.add_metric(name="ImportProfileWrites", unit=MetricUnit.Count, value=writes)
    if refused:
        metrics.add_metric(name="AttributeRowsOverLimit", unit=MetricUnit.Count, value=len(refused))
        if rejected is not None:
            rejected.extend(refused)
        else:
            logger.warning(
                "rows refused: they would take users past the attribute limits",
                extra={"rows": len(refused), "source": source},
            )
    return writes


def _within_caps(
    held: dict[str, Any], rows: list[Row], refused: list[Rejection]
) -> dict[str, Stamped]:
    """The user's rows that fit the caps, in row order; the others refused.

    Rare (a user near the caps), so each row is measured on its own.
    """
    kept: dict[str, Stamped] = {}
    current: dict[str, Any] = dict(held)
    for row in sorted(rows, key=lambda r: r.number):
        problem = custom_overflow(after_updates(current, row.values))
        if problem is not None:
            refused.append(Rejection(row.number, "", problem))
            continue
        kept = merge_props(kept, row.values)
        current.update(row.values)
    return kept


def _apply_user(
    account_id: str, uuid: str, pk: str, values: dict[str, Stamped], source: str, record: Any
) -> int:
    for attempt in range(MAX_ATTEMPTS * 2):
        updated = apply_import(
            record.profile if record else None,
            values,
            account_id=account_id,
            uuid=uuid,
            source=source,
            now_ms=clock.now_ms(),
        )
        if updated is None:
            return 0
        try:
            store.commit([PutProfile(updated, record.version if record else None)])
            return 1
        except Conflict:
            metrics.add_metric(name="ImportConflicts", unit=MetricUnit.Count, value=1)
            backoff(attempt)
            record = store.get_profile(pk, consistent=True)
        except PynamoDBException as exc:
            if exc.cause_response_code not in THROTTLED:
                raise
            metrics.add_metric(name="ImportThrottled", unit=MetricUnit.Count, value=1)
            _throttle_pause(attempt)
    raise RuntimeError("could not apply attributes after repeated conflicts or throttling")


def _throttle_pause(attempt: int) -> None:
    time.sleep(min(2.0, 0.05 * 2**attempt))


def with_throttle_retry(call: Callable[[], Any]) -> Any:
    for attempt in range(MAX_ATTEMPTS):
        try:
            return call()
        except PynamoDBException as exc:
            if exc.cause_response_code not in THROTTLED or attempt == MAX_ATTEMPTS - 1:
                raise
            _throttle_pause(attempt)
    raise AssertionError("unreachable")
