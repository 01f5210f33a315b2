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

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from insights.domain.identity import IdentitySettings
from insights.storage.aws import share
from insights.storage.models import _Meta, _settings


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


def save(account_id: str, settings: IdentitySettings) -> None:
    IdentityItem(
        _pk(account_id),
        verification=settings.verification,
        secret=settings.secret,
        secret_created_at=settings.secret_created_at,
        previous_secret=settings.previous_secret,
        previous_valid_until=settings.previous_valid_until,
    ).save()


# One botocore client per container for every model (storage/aws.py).
share(IdentityItem)
