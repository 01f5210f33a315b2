"""Integration connections in IntegrationsTable: one item per (account, integration).

Kept apart from the account's settings item so integrations evolve on their
own. pk is the account id, sk the integration ("salesforce"). The item holds
the connection (JSON), the name of its Secrets Manager secret (never the
credentials), the sync schedule, the watermark and the status. The running
sync is claimed with a conditional update, so two ticks never start two.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from insights.storage.aws import share
from insights.storage.core.models import _Meta
from insights.storage.core.store import _connection

SALESFORCE = "salesforce"


class IntegrationItem(Model):
    class Meta(_Meta):
        table_name = os.environ.get("INTEGRATIONS_TABLE", "IntegrationsTable")

    pk = UnicodeAttribute(hash_key=True)  # account id
    sk = UnicodeAttribute(range_key=True)  # "salesforce"
    connection = UnicodeAttribute()  # JSON
    secret_name = UnicodeAttribute()
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    next_due_at = NumberAttribute()
    running = UnicodeAttribute(null=True)  # import id of the sync in progress
    resume_at = NumberAttribute(null=True)  # backing off an API limit until then
    full_sync = NumberAttribute(null=True)  # 1: the next sync reads everything again
    watermark = UnicodeAttribute(null=True)  # JSON [SystemModstamp ms, Id]
    credentials_worked_at = NumberAttribute(null=True)
    last_success_at = NumberAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    last_error_at = NumberAttribute(null=True)
    last_import_id = UnicodeAttribute(null=True)
    api_calls = NumberAttribute(null=True)  # calls made by the last (or current) sync
    api_used = NumberAttribute(null=True)  # Sforce-Limit-Info api-usage, last seen
    api_limit = NumberAttribute(null=True)


@dataclass(slots=True)
class Integration:
    account_id: str
    connection: dict[str, Any]
    secret_name: str
    created_at: int
    updated_at: int
    next_due_at: int
    running: str | None = None
    resume_at: int | None = None
    full_sync: bool = False
    watermark: list[Any] | None = None
    credentials_worked_at: int | None = None
    last_success_at: int | None = None
    last_error: str | None = None
    last_error_at: int | None = None
    last_import_id: str | None = None
    api_calls: int | None = None
    api_used: int | None = None
    api_limit: int | None = None


_INT_FIELDS = (
    "created_at",
    "updated_at",
    "next_due_at",
    "resume_at",
    "credentials_worked_at",
    "last_success_at",
    "last_error_at",
    "api_calls",
    "api_used",
    "api_limit",
)


def _from_item(item: IntegrationItem) -> Integration:
    values: dict[str, Any] = {}
    for name in _INT_FIELDS:
        value = getattr(item, name)
        values[name] = None if value is None else int(value)
    return Integration(
        account_id=item.pk,
        connection=json.loads(item.connection),
        secret_name=item.secret_name,
        running=item.running,
        full_sync=bool(item.full_sync),
        watermark=json.loads(item.watermark) if item.watermark else None,
        last_error=item.last_error,
        last_import_id=item.last_import_id,
        **values,
    )


def get(account_id: str) -> Integration | None:
    try:
        return _from_item(IntegrationItem.get(account_id, SALESFORCE, consistent_read=True))
    except IntegrationItem.DoesNotExist:
        return None


def save_connection(
    account_id: str, connection: dict[str, Any], secret_name: str, now: int, *, reset: bool
) -> None:
    """Create or replace the connection; `reset` (a new object or filter) starts over."""
    item = IntegrationItem(account_id, SALESFORCE)
    actions = [
        IntegrationItem.connection.set(json.dumps(connection, separators=(",", ":"))),
        IntegrationItem.secret_name.set(secret_name),
        IntegrationItem.created_at.set(IntegrationItem.created_at | now),
        IntegrationItem.updated_at.set(now),
        IntegrationItem.next_due_at.set(now),  # the first (or changed) connection syncs now
    ]
    if reset:
        actions += [IntegrationItem.watermark.remove(), IntegrationItem.full_sync.set(1)]
    item.update(actions=actions)


def delete(account_id: str) -> None:
    IntegrationItem(account_id, SALESFORCE).delete()


def all_connected() -> list[Integration]:
    """Every connection (one item per account: the tick reads them all)."""
    return [
        _from_item(item)
        for item in IntegrationItem.scan(IntegrationItem.sk == SALESFORCE, consistent_read=True)
    ]


def _update(account_id: str, actions: list[Any], condition: Any) -> bool:
    try:
        IntegrationItem(account_id, SALESFORCE).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def claim(account_id: str, import_id: str, next_due_at: int) -> bool:
    """Mark a sync as running unless one is (or the connection is gone)."""
    return _update(
        account_id,
        [
            IntegrationItem.running.set(import_id),
            IntegrationItem.next_due_at.set(next_due_at),
            IntegrationItem.last_import_id.set(import_id),
            IntegrationItem.api_calls.set(0),
            IntegrationItem.resume_at.remove(),
        ],
        IntegrationItem.pk.exists() & IntegrationItem.running.does_not_exist(),
    )


def request_now(account_id: str, now: int, *, full: bool) -> bool:
    actions = [IntegrationItem.next_due_at.set(now)]
    if full:
        actions.append(IntegrationItem.full_sync.set(1))
    return _update(account_id, actions, IntegrationItem.pk.exists())


def record_progress(
    account_id: str,
    import_id: str,
    *,
    api_calls: int,
    usage: tuple[int, int] | None,
    resume_at: int | None = None,
    credentials_worked_at: int | None = None,
) -> None:
    actions = _progress_actions(api_calls, usage, resume_at, credentials_worked_at)
    _update(account_id, actions, IntegrationItem.running == import_id)


def _progress_actions(
    api_calls: int,
    usage: tuple[int, int] | None,
    resume_at: int | None,
    credentials_worked_at: int | None,
) -> list[Any]:
    actions = [IntegrationItem.api_calls.add(api_calls)]
    if usage is not None:
        actions += [IntegrationItem.api_used.set(usage[0]), IntegrationItem.api_limit.set(usage[1])]
    if resume_at is not None:
        actions.append(IntegrationItem.resume_at.set(resume_at))
    if credentials_worked_at is not None:
        actions.append(IntegrationItem.credentials_worked_at.set(credentials_worked_at))
    return actions


def _finish_actions(
    now: int, watermark: list[Any] | None, error: str | None, succeeded: bool
) -> list[Any]:
    actions = [IntegrationItem.running.remove(), IntegrationItem.resume_at.remove()]
    if watermark is not None:
        actions.append(IntegrationItem.watermark.set(json.dumps(watermark)))
        actions.append(IntegrationItem.full_sync.remove())
    if succeeded:
        actions.append(IntegrationItem.last_success_at.set(now))
    if error is not None:
        actions += [IntegrationItem.last_error.set(error), IntegrationItem.last_error_at.set(now)]
    return actions


def finish(
    account_id: str,
    import_id: str,
    now: int,
    *,
    watermark: list[Any] | None,
    error: str | None,
    succeeded: bool,
) -> bool:
    """The sync is over: release it and move the watermark to what it applied."""
    return _update(
        account_id,
        _finish_actions(now, watermark, error, succeeded),
        IntegrationItem.running == import_id,
    )


@dataclass(frozen=True, slots=True)
class Calls:
    """What a slice's client did, recorded on the connection."""

    api_calls: int
    usage: tuple[int, int] | None
    credentials_worked_at: int | None


def finish_with_job(
    job_update: tuple[Any, list[Any], Any],
    account_id: str,
    import_id: str,
    now: int,
    *,
    watermark: list[Any] | None,
    error: str | None,
    succeeded: bool,
    calls: Calls | None,
) -> bool:
    """The job's final record and the connection's release in one transaction.

    So no reader sees the job finished while the connection still names it
    as running (``POST .../sync`` would answer 409 for a finished sync).
    `job_update` is ``jobs.advance_update``'s (item, actions, condition).
    False when the job's checkpoint moved on (another runner wrote it). When
    the connection no longer runs this job (removed or replaced), the job's
    record is written alone.
    """
    job_item, job_actions, job_condition = job_update
    actions = _finish_actions(now, watermark, error, succeeded)
    if calls is not None:
        worked = calls.credentials_worked_at
        actions += _progress_actions(calls.api_calls, calls.usage, None, worked)
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.update(job_item, actions=job_actions, condition=job_condition)
            tx.update(
                IntegrationItem(account_id, SALESFORCE),
                actions=actions,
                condition=IntegrationItem.running == import_id,
            )
    except TransactWriteError as exc:
        reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return False
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            try:
                job_item.update(actions=job_actions, condition=job_condition)
            except UpdateError as alone:
                if alone.cause_response_code == "ConditionalCheckFailedException":
                    return False
                raise
            return True
        raise
    return True


def record_worked(account_id: str, now: int) -> None:
    """The stored credentials signed in (a test, or a sync)."""
    _update(
        account_id, [IntegrationItem.credentials_worked_at.set(now)], IntegrationItem.pk.exists()
    )


def record_error(account_id: str, error: str, now: int) -> None:
    _update(
        account_id,
        [IntegrationItem.last_error.set(error), IntegrationItem.last_error_at.set(now)],
        IntegrationItem.pk.exists(),
    )


# One botocore client per container for every model (storage/aws.py).
share(IntegrationItem)
