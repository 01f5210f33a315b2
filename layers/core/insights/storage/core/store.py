"""Reads and conditional writes of sessions and profiles."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from insights.domain.core.profile import Profile
from insights.domain.core.sessions import Window
from insights.storage.aws import SharedConnection
from insights.storage.core.models import SessionItem, UserItem
from insights.storage.core.records import (
    PROFILE_SK,
    ProfileRecord,
    SessionRecord,
    chunks,
    profile_from_item,
    profile_to_item,
    session_from_item,
    session_to_item,
)

# Single writes report the exception name; transactions give per-item reasons.
_RETRYABLE = {
    "ConditionalCheckFailedException",
    "ConditionalCheckFailed",
    "TransactionConflictException",
    "TransactionConflict",
}


class Conflict(Exception):
    """Another writer changed the item since it was read: re-read and retry."""


@dataclass(frozen=True, slots=True)
class PutSession:
    pk: str
    window: Window
    timeout_ms: int
    expected_version: int | None


@dataclass(frozen=True, slots=True)
class DeleteSession:
    pk: str
    expected_version: int | None


@dataclass(frozen=True, slots=True)
class PutProfile:
    profile: Profile
    expected_version: int | None


Write = PutSession | DeleteSession | PutProfile


# --------------------------------------------------------------------- reads
def get_sessions(pks: Iterable[str], *, consistent: bool = False) -> dict[str, SessionRecord]:
    found: dict[str, SessionRecord] = {}
    for batch in chunks(dict.fromkeys(pks), 100):
        for item in SessionItem.batch_get(batch, consistent_read=consistent):
            found[item.pk] = session_from_item(item)
    return found


def get_profiles(pks: Iterable[str], *, consistent: bool = False) -> dict[str, ProfileRecord]:
    found: dict[str, ProfileRecord] = {}
    keys = [(pk, PROFILE_SK) for pk in dict.fromkeys(pks)]
    for batch in chunks(keys, 100):
        for item in UserItem.batch_get(batch, consistent_read=consistent):
            found[item.pk] = profile_from_item(item)
    return found


def get_session(pk: str, *, consistent: bool = True) -> SessionRecord | None:
    try:
        return session_from_item(SessionItem.get(pk, consistent_read=consistent))
    except SessionItem.DoesNotExist:
        return None


def get_profile(pk: str, *, consistent: bool = True) -> ProfileRecord | None:
    try:
        return profile_from_item(UserItem.get(pk, PROFILE_SK, consistent_read=consistent))
    except UserItem.DoesNotExist:
        return None


def due_sessions(
    now_ms: int, *, segment: int, total_segments: int
) -> tuple[list[str], int, int | None]:
    """Keys of open sessions whose deadline is at or before now_ms, from one scan
    segment, how many items the segment read (DynamoDB bills those, not the
    matches), and the earliest deadline among the due ones (None when none is).

    Eventually consistent (half the read units): callers re-read the few due
    sessions consistently before closing them. Returning the deadline too
    costs nothing: a scan is billed for the bytes it reads, not returns.
    """
    scan = SessionItem.scan(
        SessionItem.deadline <= now_ms,
        segment=segment,
        total_segments=total_segments,
        attributes_to_get=["pk", "deadline"],
    )
    keys: list[str] = []
    oldest: int | None = None
    for item in scan:
        keys.append(item.pk)
        if item.deadline is not None and (oldest is None or item.deadline < oldest):
            oldest = item.deadline
    return keys, scan.page_iter.total_scanned_count, oldest


# -------------------------------------------------------------------- writes
def _session_delete_item(write: DeleteSession) -> SessionItem:
    item = SessionItem(write.pk)
    if write.expected_version is not None:
        item.version = write.expected_version
    return item


def commit(writes: list[Write]) -> None:
    """Apply writes atomically: one alone as a conditional write, more as a transaction.

    Raises Conflict when any expected version no longer holds.
    """
    if not writes:
        return
    if len(writes) == 1:
        _single(writes[0])
        return
    try:
        with TransactWrite(connection=_connection()) as tx:
            for write in writes:
                if isinstance(write, PutSession):
                    tx.save(
                        session_to_item(
                            write.pk, write.window, write.timeout_ms, write.expected_version
                        )
                    )
                elif isinstance(write, DeleteSession):
                    tx.delete(_session_delete_item(write))
                else:
                    tx.save(profile_to_item(write.profile, write.expected_version))
    except TransactWriteError as exc:
        reasons = [r.code for r in (exc.cancellation_reasons or []) if r is not None]
        if set(reasons) & _RETRYABLE or exc.cause_response_code in _RETRYABLE:
            raise Conflict(str(reasons)) from exc
        raise


def _single(write: Write) -> None:
    try:
        if isinstance(write, PutSession):
            session_to_item(write.pk, write.window, write.timeout_ms, write.expected_version).save()
        elif isinstance(write, DeleteSession):
            _session_delete_item(write).delete()
        else:
            profile_to_item(write.profile, write.expected_version).save()
    except (PutError, DeleteError) as exc:
        if exc.cause_response_code in _RETRYABLE:
            raise Conflict(exc.cause_response_message or "condition failed") from exc
        raise


def erase_user(pk: str, tombstone: Profile) -> int:
    """Delete everything stored for one user and leave an erasure tombstone.

    The open session goes first, so no close can resurrect the profile from it;
    it is marked before it is deleted, so the stream consumer that applies
    deleted windows (the sweeper's and TTL's) skips it.
    Returns the number of user items deleted.
    """
    try:
        SessionItem(pk).update(
            actions=[SessionItem.erasing.set(True)],
            condition=SessionItem.pk.exists(),
            add_version_condition=False,
        )
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise  # no open session is fine; anything else is not
    SessionItem(pk).delete(add_version_condition=False)
    deleted = delete_user_items(pk)
    profile_to_item(tombstone, None).save(add_version_condition=False)
    return deleted


def delete_user_items(pk: str, *, keep_profile: bool = False) -> int:
    count = 0
    with UserItem.batch_write() as batch:
        for item in UserItem.query(pk, attributes_to_get=["pk", "sk"]):
            if keep_profile and item.sk == PROFILE_SK:
                continue
            batch.delete(item)
            count += 1
    return count


_conn: Connection | None = None


def _connection() -> Connection:
    """For transactions: a pynamodb Connection on the container's client (storage/aws.py)."""
    global _conn
    if _conn is None:
        _conn = SharedConnection()
    return _conn
