"""Accounts and their API keys (stored hashed)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from insights.domain.core.accounts import DEFAULT_PROTECTED, AccountSettings, KeyKind, hash_key
from insights.domain.core.identity import IdentitySettings
from insights.storage.aws import SharedConnection
from insights.storage.core.models import AccountItem, KeyItem


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    created_at: int
    settings: AccountSettings
    version: int | None = None


def _from_item(item: AccountItem) -> Account:
    return Account(
        account_id=item.pk.removeprefix("acct#"),
        name=item.name,
        created_at=int(item.created_at),
        settings=AccountSettings(
            unique_user_ids=bool(item.unique_user_ids),
            session_timeout_minutes=int(item.session_timeout_minutes),
            backfill_days=int(item.backfill_days),
            event_properties_as_attributes=tuple(item.event_properties_as_attributes or ()),
            protected_attributes=(
                DEFAULT_PROTECTED
                if item.protected_attributes is None
                else tuple(item.protected_attributes)
            ),
        ),
        version=item.version,
    )


def create_account(account: Account, keys: dict[KeyKind, str]) -> None:
    """The account item and its key items, all or nothing, and safe to retry.

    One transaction with an idempotency token: DynamoDB applies a retried
    request with the same token once. Its conditions (no such items yet)
    still fail when a retry reaches a store that does not keep tokens, or
    after a response was lost and the caller's SDK sent it again: then the
    items are read back, and if they are this account's, the create had
    landed (an account with keys that were never shown was the bug).
    """
    item = AccountItem(
        f"acct#{account.account_id}",
        name=account.name,
        created_at=account.created_at,
        unique_user_ids=account.settings.unique_user_ids,
        session_timeout_minutes=account.settings.session_timeout_minutes,
        backfill_days=account.settings.backfill_days,
        event_properties_as_attributes=list(account.settings.event_properties_as_attributes),
        protected_attributes=list(account.settings.protected_attributes),
    )
    key_items = [
        KeyItem(
            f"key#{hash_key(key)}",
            account_id=account.account_id,
            kind=kind,
            created_at=account.created_at,
        )
        for kind, key in keys.items()
    ]
    token = hashlib.sha256(f"{account.account_id}:{account.created_at}".encode()).hexdigest()
    try:
        with TransactWrite(connection=SharedConnection(), client_request_token=token[:36]) as tx:
            tx.save(item, condition=AccountItem.pk.does_not_exist())
            for key_item in key_items:
                tx.save(key_item, condition=KeyItem.pk.does_not_exist())
    except TransactWriteError:
        if not _created(account, key_items):
            raise


def _created(account: Account, key_items: list[KeyItem]) -> bool:
    """Whether this account and every one of its keys are stored (a retry's check)."""
    try:
        stored = AccountItem.get(f"acct#{account.account_id}", consistent_read=True)
    except AccountItem.DoesNotExist:
        return False
    if int(stored.created_at) != account.created_at or stored.name != account.name:
        return False
    for key_item in key_items:
        try:
            found = KeyItem.get(key_item.pk, consistent_read=True)
        except KeyItem.DoesNotExist:
            return False
        if found.account_id != account.account_id:
            return False
    return True


def get_account(account_id: str) -> Account | None:
    try:
        return _from_item(AccountItem.get(f"acct#{account_id}"))
    except AccountItem.DoesNotExist:
        return None


def load_with_identity(account_id: str) -> tuple[Account | None, IdentitySettings]:
    """The account and its identity settings in one read request (BatchGetItem of both
    items): what authenticating a request needs once the key's account is known."""
    from insights.storage import aws
    from insights.storage.core import identity as identity_store

    table = AccountItem.Meta.table_name
    keys = [{"pk": {"S": f"acct#{account_id}"}}, {"pk": {"S": identity_store._pk(account_id)}}]
    found: dict[str, dict] = {}
    request: dict = {table: {"Keys": keys}}
    for _attempt in range(5):  # unprocessed keys (throttling) are asked again
        answer = aws.dynamodb().batch_get_item(RequestItems=request)
        for item in answer.get("Responses", {}).get(table, []):
            found[item["pk"]["S"]] = item
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            break
    else:
        raise RuntimeError(f"account {account_id}: keys left unprocessed after 5 attempts")
    account = found.get(f"acct#{account_id}")
    identity = found.get(identity_store._pk(account_id))
    return (
        _from_item(AccountItem.from_raw_data(account)) if account else None,
        identity_store.settings_of(
            identity_store.IdentityItem.from_raw_data(identity) if identity else None
        ),
    )


def find_key(key: str) -> tuple[str, KeyKind] | None:
    """(account id, kind) of a presented key, or None if unknown."""
    try:
        item = KeyItem.get(f"key#{hash_key(key)}")
    except KeyItem.DoesNotExist:
        return None
    return item.account_id, item.kind  # type: ignore[return-value]


def replace_key(account_id: str, old: str, new: str, kind: KeyKind, now_ms: int) -> bool:
    """Swap one of an account's keys for a new one, atomically; False when the old
    key is no longer the account's (another rotation won)."""
    fresh = KeyItem(f"key#{hash_key(new)}", account_id=account_id, kind=kind, created_at=now_ms)
    try:
        with TransactWrite(connection=SharedConnection()) as tx:
            tx.save(fresh, condition=KeyItem.pk.does_not_exist())
            tx.delete(
                KeyItem(f"key#{hash_key(old)}"),
                condition=KeyItem.pk.exists()
                & (KeyItem.account_id == account_id)
                & (KeyItem.kind == kind),
            )
    except TransactWriteError as exc:
        reasons = [r.code for r in (exc.cancellation_reasons or []) if r is not None]
        if "ConditionalCheckFailed" in reasons:
            return False
        raise
    return True


def save_settings(account: Account, settings: AccountSettings) -> Account:
    item = AccountItem.get(f"acct#{account.account_id}", consistent_read=True)
    item.update(
        actions=[
            AccountItem.unique_user_ids.set(settings.unique_user_ids),
            AccountItem.session_timeout_minutes.set(settings.session_timeout_minutes),
            AccountItem.backfill_days.set(settings.backfill_days),
            AccountItem.event_properties_as_attributes.set(
                list(settings.event_properties_as_attributes)
            ),
            AccountItem.protected_attributes.set(list(settings.protected_attributes)),
        ]
    )
    return _from_item(item)


def list_accounts() -> list[Account]:
    """Every account, oldest first: a scan, for the operator's CLI, never on a request path."""
    found = AccountItem.scan(AccountItem.pk.startswith("acct#"))
    return sorted((_from_item(item) for item in found), key=lambda a: (a.created_at, a.account_id))
