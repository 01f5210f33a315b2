"""IdP integration items in IdpTable: SCIM users, their lookup keys, SCIM tokens, configs.

Per account, everything lives in one partition, ``<account id>#scim``:

- ``user#<id>``: a SCIM User (its JSON), with created/modified times and a
  version (the ETag; writes are conditional on it).
- ``uniq#userName#<SHA-256 of the lower-cased userName>``: makes userName unique per account
  (SCIM compares it case-insensitively) and answers ``userName eq``.
- ``ix#externalId#<digest>#<id>`` and ``ix#emails#<digest of the lower-cased>#<id>``: answer
  ``externalId eq`` and ``emails.value eq`` with one Query.
- ``token#<token id>``: a SCIM token's listing entry; ``config``: the SCIM mapping.

A SCIM token is found by its SHA-256 alone: item ``scimtoken#<digest>``.

SAML assertions already used: ``<account id>#saml#<assertion ID>`` / ``replay``,
each in its own partition, kept (TTL ``expires_at``) until the assertion expires.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from insights.storage.aws import share
from insights.storage.core.models import _Meta
from insights.storage.core.store import _connection

TOKEN_SK = "token"


class _IdpMeta(_Meta):
    table_name = os.environ.get("IDP_TABLE", "IdpTable")


class ScimUserItem(Model):
    class Meta(_IdpMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)  # "<account id>#scim"
    sk = UnicodeAttribute(range_key=True)  # "user#<id>"
    body = UnicodeAttribute()  # the stored user, JSON
    created_at = NumberAttribute()
    modified_at = NumberAttribute()
    version = VersionAttribute()


class ScimKeyItem(Model):
    """A lookup key (uniq#... / ix#...) naming the user it belongs to."""

    class Meta(_IdpMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    user_id = UnicodeAttribute()


class ScimTokenItem(Model):
    """``scimtoken#<digest>`` / ``token``: the token as presented; or the listing entry."""

    class Meta(_IdpMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    account_id = UnicodeAttribute()
    token_id = UnicodeAttribute()
    name = UnicodeAttribute()
    hint = UnicodeAttribute()
    created_at = NumberAttribute()
    digest = UnicodeAttribute(null=True)  # on the listing entry only


class IdpConfigItem(Model):
    class Meta(_IdpMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # "config" (SCIM)
    body = UnicodeAttribute()  # JSON
    updated_at = NumberAttribute()


class SamlReplayItem(Model):
    """A SAML assertion ID seen once; refused again until ``expires_at`` (epoch seconds)."""

    class Meta(_IdpMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)  # "<account id>#saml#<assertion ID>"
    sk = UnicodeAttribute(range_key=True)  # "replay"
    expires_at = NumberAttribute()  # the table's TTL attribute


class UserNameTaken(Exception):
    pass


class VersionConflict(Exception):
    pass


@dataclass(frozen=True)
class StoredUser:
    user_id: str
    user: dict[str, Any]
    created_at: int
    modified_at: int
    version: int


def _pk(account_id: str) -> str:
    return f"{account_id}#scim"


def _stored(item: ScimUserItem) -> StoredUser:
    return StoredUser(
        user_id=item.sk.removeprefix("user#"),
        user=json.loads(item.body),
        created_at=int(item.created_at),
        modified_at=int(item.modified_at),
        version=int(item.version or 0),
    )


# ------------------------------------------------------------------ users
def get_user(account_id: str, user_id: str) -> StoredUser | None:
    try:
        return _stored(ScimUserItem.get(_pk(account_id), f"user#{user_id}", consistent_read=True))
    except ScimUserItem.DoesNotExist:
        return None


def get_users(account_id: str, user_ids: list[str]) -> list[StoredUser]:
    keys = [(_pk(account_id), f"user#{i}") for i in dict.fromkeys(user_ids)]
    found = {item.sk: _stored(item) for item in ScimUserItem.batch_get(keys, consistent_read=True)}
    return [found[f"user#{i}"] for i in dict.fromkeys(user_ids) if f"user#{i}" in found]


def lookup(account_id: str, index: str, value: str) -> list[str]:
    """Ids of users whose indexed attribute may equal value (callers re-check)."""
    if index == "userName":
        try:
            return [ScimKeyItem.get(_pk(account_id), _uniq(value), consistent_read=True).user_id]
        except ScimKeyItem.DoesNotExist:
            return []
    prefix = _ix_prefix(index, value)
    return [
        item.user_id
        for item in ScimKeyItem.query(
            _pk(account_id), ScimKeyItem.sk.startswith(prefix), consistent_read=True
        )
    ]


def count_users(account_id: str) -> int:
    return ScimUserItem.count(_pk(account_id), ScimUserItem.sk.startswith("user#"))


def iter_users(account_id: str) -> Any:
    """Every user of the account, in id order (list and filters no index answers)."""
    for item in ScimUserItem.query(_pk(account_id), ScimUserItem.sk.startswith("user#")):
        yield _stored(item)


def _digest(value: str) -> str:
    # A key holds the value's digest, not the value: a SCIM value has no length
    # limit, and DynamoDB refuses a sort key over 1,024 bytes.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _uniq(user_name: str) -> str:
    return f"uniq#userName#{_digest(user_name.lower())}"


def _ix_prefix(index: str, value: str) -> str:
    return f"ix#{index}#{_digest(value.lower() if index == 'emails' else value)}#"


def _keys(user_id: str, user: dict[str, Any]) -> set[str]:
    keys = {_uniq(user["userName"])}
    if isinstance(user.get("externalId"), str):
        keys.add(_ix_prefix("externalId", user["externalId"]) + user_id)
    for email in user.get("emails") or []:
        if isinstance(email.get("value"), str):
            keys.add(_ix_prefix("emails", email["value"]) + user_id)
    return keys


def save_user(
    account_id: str, user_id: str, user: dict[str, Any], previous: StoredUser | None, now_ms: int
) -> StoredUser:
    """Create or replace a user and its lookup keys in one transaction.

    Raises UserNameTaken when another user of the account has the userName,
    VersionConflict when the user changed since ``previous`` was read.
    """
    pk = _pk(account_id)
    item = ScimUserItem(
        pk,
        f"user#{user_id}",
        body=json.dumps(user, separators=(",", ":")),
        created_at=previous.created_at if previous else now_ms,
        modified_at=now_ms,
    )
    if previous is not None:
        item.version = previous.version
    new_keys = _keys(user_id, user)
    old_keys = _keys(user_id, previous.user) if previous else set()
    uniq = _uniq(user["userName"])
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(item)
            for key in sorted(new_keys - old_keys):
                condition = None
                if key == uniq:
                    condition = ScimKeyItem.user_id.does_not_exist() | (
                        ScimKeyItem.user_id == user_id
                    )
                tx.save(ScimKeyItem(pk, key, user_id=user_id), condition=condition)
            for key in sorted(old_keys - new_keys):
                tx.delete(ScimKeyItem(pk, key))
    except TransactWriteError as exc:
        reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise VersionConflict() from exc
        if "ConditionalCheckFailed" in reasons:
            raise UserNameTaken() from exc
        if "TransactionConflict" in reasons:
            raise VersionConflict() from exc
        raise
    return StoredUser(user_id, user, int(item.created_at), now_ms, int(item.version or 0))


def delete_user(account_id: str, stored: StoredUser) -> None:
    pk = _pk(account_id)
    item = ScimUserItem(pk, f"user#{stored.user_id}")
    item.version = stored.version
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.delete(item, condition=ScimUserItem.version == stored.version)
            for key in sorted(_keys(stored.user_id, stored.user)):
                tx.delete(ScimKeyItem(pk, key))
    except TransactWriteError as exc:
        reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
        if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
            raise VersionConflict() from exc
        raise


# ----------------------------------------------------------------- tokens
@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    name: str
    hint: str
    created_at: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.token_id,
            "name": self.name,
            "hint": self.hint,
            "created_at": self.created_at,
        }


def create_token(account_id: str, info: TokenInfo, digest: str) -> None:
    common = {
        "account_id": account_id,
        "token_id": info.token_id,
        "name": info.name,
        "hint": info.hint,
        "created_at": info.created_at,
    }
    with TransactWrite(connection=_connection()) as tx:
        tx.save(
            ScimTokenItem(f"scimtoken#{digest}", TOKEN_SK, **common),
            condition=ScimTokenItem.pk.does_not_exist(),
        )
        tx.save(
            ScimTokenItem(_pk(account_id), f"token#{info.token_id}", digest=digest, **common),
            condition=ScimTokenItem.pk.does_not_exist(),
        )


def find_token(digest: str) -> str | None:
    """The account id of a presented token's digest, or None."""
    try:
        return ScimTokenItem.get(f"scimtoken#{digest}", TOKEN_SK, consistent_read=True).account_id
    except ScimTokenItem.DoesNotExist:
        return None


def list_tokens(account_id: str) -> list[TokenInfo]:
    return [
        TokenInfo(item.token_id, item.name, item.hint, int(item.created_at))
        for item in ScimTokenItem.query(_pk(account_id), ScimTokenItem.sk.startswith("token#"))
    ]


def revoke_token(account_id: str, token_id: str) -> bool:
    try:
        entry = ScimTokenItem.get(_pk(account_id), f"token#{token_id}", consistent_read=True)
    except ScimTokenItem.DoesNotExist:
        return False
    with TransactWrite(connection=_connection()) as tx:
        tx.delete(ScimTokenItem(f"scimtoken#{entry.digest}", TOKEN_SK))
        tx.delete(ScimTokenItem(_pk(account_id), f"token#{token_id}"))
    return True


# ----------------------------------------------------------------- config
def get_config(account_id: str, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(IdpConfigItem.get(_pk(account_id), name, consistent_read=True).body)
    except IdpConfigItem.DoesNotExist:
        return None


def put_config(account_id: str, name: str, body: dict[str, Any], now_ms: int) -> None:
    IdpConfigItem(_pk(account_id), name, body=json.dumps(body), updated_at=now_ms).save()


# ------------------------------------------------------------ SAML replay
def _replay_key(account_id: str, assertion_id: str) -> tuple[str, str]:
    return f"{account_id}#saml#{assertion_id}", "replay"


def claim_assertion(account_id: str, assertion_id: str, expires_at_s: int, now_s: int) -> bool:
    """Record an assertion's first use; False when it was used before and has not expired.

    One conditional put. TTL deletes the item days late at worst, so the
    condition also lets an expired item be overwritten (the assertion itself
    is refused as expired long before that can matter).
    """
    pk, sk = _replay_key(account_id, assertion_id)
    try:
        SamlReplayItem(pk, sk, expires_at=expires_at_s).save(
            condition=SamlReplayItem.pk.does_not_exist() | (SamlReplayItem.expires_at <= now_s)
        )
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def release_assertion(account_id: str, assertion_id: str) -> None:
    """Forget a claimed assertion whose attributes could not be written, so a retry can succeed."""
    SamlReplayItem(*_replay_key(account_id, assertion_id)).delete()


# One botocore client per container for every model (storage/aws.py).
share(ScimUserItem, ScimKeyItem, ScimTokenItem, IdpConfigItem, SamlReplayItem)
