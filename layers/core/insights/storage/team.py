"""The team's items in TeamTable: the sign-in provider, members, flows, sessions, the audit log.

- ``<account>#team`` / ``provider``: the provider configuration (JSON) and the
  name of its client secret in Secrets Manager (never the secret).
- ``<account>#team`` / ``member#<email>``: a role assigned in the console.
- ``flow#<SHA-256 of the state>`` / ``flow``: a sign-in under way (the nonce
  and the PKCE verifier), one use, TTL after 10 minutes.
- ``<account>#session`` / ``<SHA-256 of the token>``: a console session; TTL
  at its end. One partition per account, so an admin can end a member's
  sessions with one Query (a team's sessions: a few dozen items).
- ``<account>#audit`` / ``<ms>#<random>``: an audit entry; TTL after the
  retention. Read newest first, a page at a time.

Correctness never waits for TTL: flows and sessions carry their own end,
and audit reads stop at the retention.
"""

from __future__ import annotations

import json
import os
import secrets as random
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError
from pynamodb.models import Model

from insights.domain.team.audit import Entry
from insights.storage.aws import share
from insights.storage.core.models import _Meta

PROVIDER_SK = "provider"


class _TeamMeta(_Meta):
    table_name = os.environ.get("TEAM_TABLE", "TeamTable")


class ProviderItem(Model):
    class Meta(_TeamMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)  # "<account>#team"
    sk = UnicodeAttribute(range_key=True)  # "provider"
    body = UnicodeAttribute()  # JSON, without the client secret
    secret_name = UnicodeAttribute(null=True)
    updated_at = NumberAttribute()


class MemberItem(Model):
    class Meta(_TeamMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)  # "<account>#team"
    sk = UnicodeAttribute(range_key=True)  # "member#<email>"
    role = UnicodeAttribute()
    assigned_by = UnicodeAttribute()
    updated_at = NumberAttribute()


class FlowItem(Model):
    class Meta(_TeamMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)  # "flow#<sha256 of state>"
    sk = UnicodeAttribute(range_key=True)  # "flow"
    account_id = UnicodeAttribute()
    nonce = UnicodeAttribute()
    verifier = UnicodeAttribute()
    redirect_uri = UnicodeAttribute()
    ends_ms = NumberAttribute()
    expires_at = NumberAttribute()  # TTL, epoch seconds


class SessionItem(Model):
    class Meta(_TeamMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)  # "<account>#session"
    sk = UnicodeAttribute(range_key=True)  # sha256 of the token
    email = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    role = UnicodeAttribute()
    origin = UnicodeAttribute()  # the console's origin (https://..., or local http)
    created_ms = NumberAttribute()
    ends_ms = NumberAttribute()
    expires_at = NumberAttribute()  # TTL, epoch seconds


class AuditItem(Model):
    class Meta(_TeamMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)  # "<account>#audit"
    sk = UnicodeAttribute(range_key=True)  # "<13-digit ms>#<8 hex>"
    body = UnicodeAttribute()  # Entry as JSON
    expires_at = NumberAttribute()  # TTL, epoch seconds


def _team(account_id: str) -> str:
    return f"{account_id}#team"


# ---------------------------------------------------------------- provider
def get_provider(account_id: str) -> tuple[dict[str, Any], str | None] | None:
    """(the stored configuration, its secret's name) or None."""
    try:
        item = ProviderItem.get(_team(account_id), PROVIDER_SK, consistent_read=True)
    except ProviderItem.DoesNotExist:
        return None
    return json.loads(item.body), item.secret_name


def put_provider(account_id: str, body: dict[str, Any], secret_name: str | None, now: int) -> None:
    ProviderItem(
        _team(account_id),
        PROVIDER_SK,
        body=json.dumps(body, separators=(",", ":")),
        secret_name=secret_name,
        updated_at=now,
    ).save()


def delete_provider(account_id: str) -> None:
    ProviderItem(_team(account_id), PROVIDER_SK).delete()


# ----------------------------------------------------------------- members
@dataclass(frozen=True)
class Member:
    email: str
    role: str
    assigned_by: str
    updated_ms: int

    def public(self) -> dict[str, Any]:
        from insights.domain.core.timefmt import format_time

        return {
            "email": self.email,
            "role": self.role,
            "assigned_by": self.assigned_by,
            "updated_at": format_time(self.updated_ms),
        }


def _member(item: MemberItem) -> Member:
    email = item.sk.removeprefix("member#")
    return Member(email, item.role, item.assigned_by, int(item.updated_at))


def get_member(account_id: str, email: str) -> Member | None:
    try:
        return _member(MemberItem.get(_team(account_id), f"member#{email}", consistent_read=True))
    except MemberItem.DoesNotExist:
        return None


def list_members(account_id: str) -> list[Member]:
    found = MemberItem.query(_team(account_id), MemberItem.sk.startswith("member#"))
    return [_member(item) for item in found]


def put_member(account_id: str, email: str, role: str, by: str, now: int) -> Member:
    item = MemberItem(_team(account_id), f"member#{email}", role=role, assigned_by=by)
    item.updated_at = now
    item.save()
    return Member(email, role, by, now)


def delete_member(account_id: str, email: str) -> bool:
    try:
        MemberItem(_team(account_id), f"member#{email}").delete(MemberItem.pk.exists())
    except DeleteError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


# ------------------------------------------------------------------- flows
@dataclass(frozen=True)
class StoredFlow:
    account_id: str
    nonce: str
    verifier: str
    redirect_uri: str
    ends_ms: int


def put_flow(state_digest: str, flow: StoredFlow) -> None:
    FlowItem(
        f"flow#{state_digest}",
        "flow",
        account_id=flow.account_id,
        nonce=flow.nonce,
        verifier=flow.verifier,
        redirect_uri=flow.redirect_uri,
        ends_ms=flow.ends_ms,
        expires_at=flow.ends_ms // 1000 + 1,
    ).save()


def take_flow(state_digest: str) -> StoredFlow | None:
    """The flow, deleted in the same request: a state is good for one callback."""
    table = FlowItem._get_connection()  # pynamodb's Model.delete cannot return the old item
    try:
        old = table.delete_item(
            f"flow#{state_digest}", "flow", FlowItem.pk.exists(), return_values="ALL_OLD"
        )
    except DeleteError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return None
        raise
    attributes = (old or {}).get("Attributes") or {}
    if not attributes:
        return None
    taken = FlowItem.from_raw_data(attributes)
    return StoredFlow(
        taken.account_id, taken.nonce, taken.verifier, taken.redirect_uri, int(taken.ends_ms)
    )


# ---------------------------------------------------------------- sessions
@dataclass(frozen=True)
class StoredSession:
    account_id: str
    token_digest: str
    email: str
    name: str | None
    role: str
    origin: str
    created_ms: int
    ends_ms: int


EXPIRED_SESSION_KEPT_S = 86_400


def put_session(session: StoredSession) -> None:
    SessionItem(
        f"{session.account_id}#session",
        session.token_digest,
        email=session.email,
        name=session.name,
        role=session.role,
        origin=session.origin,
        created_ms=session.created_ms,
        ends_ms=session.ends_ms,
        # Kept a day past its end: a tab coming back after the end is told its
        # session *expired* rather than *ended* (the item still says when).
        expires_at=session.ends_ms // 1000 + EXPIRED_SESSION_KEPT_S,
    ).save()


def _session(account_id: str, item: SessionItem) -> StoredSession:
    return StoredSession(
        account_id,
        item.sk,
        item.email,
        item.name,
        item.role,
        item.origin,
        int(item.created_ms),
        int(item.ends_ms),
    )


def get_session(account_id: str, token_digest: str) -> StoredSession | None:
    # Consistent: the console's first call follows the callback's write at once.
    try:
        item = SessionItem.get(f"{account_id}#session", token_digest, consistent_read=True)
    except SessionItem.DoesNotExist:
        return None
    return _session(account_id, item)


def delete_session(account_id: str, token_digest: str) -> None:
    SessionItem(f"{account_id}#session", token_digest).delete()


def sessions_of(account_id: str, email: str | None = None) -> list[StoredSession]:
    """A person's sessions, or (email None) every session of the account."""
    condition = SessionItem.email == email if email is not None else None
    found = SessionItem.query(f"{account_id}#session", filter_condition=condition)
    return [_session(account_id, item) for item in found]


# ------------------------------------------------------------------- audit
def put_audit(account_id: str, entry: Entry, expires_at_s: int) -> None:
    sort_key = f"{entry.at_ms:013d}#{random.token_hex(4)}"
    AuditItem(f"{account_id}#audit", sort_key, body=entry.to_json(), expires_at=expires_at_s).save()


def audit_page(
    account_id: str, oldest_ms: int, before: str | None, limit: int
) -> tuple[list[Entry], str | None]:
    """Up to `limit` entries newest first, below `before`; and the last key when more remain."""
    low = f"{oldest_ms:013d}"
    condition = AuditItem.sk < before if before else AuditItem.sk >= low
    found = AuditItem.query(
        f"{account_id}#audit", condition, scan_index_forward=False, limit=limit + 1
    )
    items = [item for item in found if item.sk >= low]  # older ones await TTL: already gone
    more = len(items) > limit
    items = items[:limit]
    entries = [Entry.from_json(item.body) for item in items]
    return entries, (items[-1].sk if more else None)


# One botocore client per container for every model (storage/aws.py).
share(ProviderItem, MemberItem, FlowItem, SessionItem, AuditItem)
