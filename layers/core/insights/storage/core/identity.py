"""An account's identity-verification item, in the accounts table.

Its own item (``ident#<account id>``), not fields on the account item, so
integrations and settings edited elsewhere never collide with it.

The secret is kept as written, not hashed: verifying
``HMAC-SHA256(secret, uuid)`` needs the key itself, and a digest of it would
be no safer (HMAC hashes a key longer than its block, so SHA-256 of a long
secret *is* a working key). It is protected the way the table is: encrypted
at rest by DynamoDB (the template's ``SSESpecification``), readable only by
the functions whose IAM policy allows ``GetItem`` on the accounts table, and
never returned or logged after creation (docs/identity-verification.md).
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from insights.domain.core.identity import IdentitySettings
from insights.storage.aws import share
from insights.storage.core.models import _Meta, _settings


class IdentityItem(Model):
    class Meta(_Meta):
        table_name = _settings.accounts_table

    pk = UnicodeAttribute(hash_key=True)  # "ident#<account id>"
    verification = BooleanAttribute(default=False)
    secret = UnicodeAttribute(null=True)
    secret_created_at = NumberAttribute(null=True)
    previous_secret = UnicodeAttribute(null=True)
    previous_valid_until = NumberAttribute(null=True)


def _pk(account_id: str) -> str:
    return f"ident#{account_id}"


def load(account_id: str, *, consistent: bool = False) -> IdentitySettings:
    try:
        item = IdentityItem.get(_pk(account_id), consistent_read=consistent)
    except IdentityItem.DoesNotExist:
        return IdentitySettings()
    return settings_of(item)


def settings_of(item: IdentityItem | None) -> IdentitySettings:
    if item is None:
        return IdentitySettings()
    return IdentitySettings(
        verification=bool(item.verification),
        secret=item.secret,
        secret_created_at=int(item.secret_created_at) if item.secret_created_at else None,
        previous_secret=item.previous_secret,
        previous_valid_until=(
            int(item.previous_valid_until) if item.previous_valid_until else None
        ),
    )


class SecretChanged(Exception):
    """The secret is no longer the one read: another rotation won."""


def rotate(account_id: str, settings: IdentitySettings, *, read_secret: str | None) -> None:
    """Write a rotated secret only if the stored one is still `read_secret` (SecretChanged if not).

    Two concurrent rotations both read the same secret; the second write
    would replace the first's new secret and keep the pre-race one valid
    as "previous". Only the secret fields are written: a verification
    switch made meanwhile stays.
    """
    condition = (
        IdentityItem.secret.does_not_exist()
        if read_secret is None
        else IdentityItem.secret == read_secret
    )
    actions = [
        _set_or_remove(IdentityItem.secret, settings.secret),
        _set_or_remove(IdentityItem.secret_created_at, settings.secret_created_at),
        _set_or_remove(IdentityItem.previous_secret, settings.previous_secret),
        _set_or_remove(IdentityItem.previous_valid_until, settings.previous_valid_until),
    ]
    try:
        IdentityItem(_pk(account_id)).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise SecretChanged() from None
        raise


def set_verification(account_id: str, on: bool) -> None:
    """Switch verification on or off; on only while a secret exists (SecretChanged if none)."""
    condition = IdentityItem.secret.exists() if on else None
    try:
        IdentityItem(_pk(account_id)).update(
            actions=[IdentityItem.verification.set(on)], condition=condition
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise SecretChanged() from None
        raise


def _set_or_remove(attribute: Any, value: Any) -> Any:
    return attribute.remove() if value is None else attribute.set(value)


# One botocore client per container for every model (storage/aws.py).
share(IdentityItem)
