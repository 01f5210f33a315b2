"""The team's settings: the sign-in provider (its client secret in Secrets Manager) and members."""

from __future__ import annotations

from typing import Any

from insights import clock, outbound
from insights.domain.team.provider import (
    Provider,
    ProviderError,
    check_member_email,
    parse_provider,
)
from insights.domain.team.roles import ROLES
from insights.services.team import sessions
from insights.storage import team as store
from insights.storage.core import secrets

SECRET_USE = "team"


def load(account_id: str) -> tuple[Provider, str | None] | None:
    """(the provider, the name of its client secret) or None when none is configured."""
    stored = store.get_provider(account_id)
    if stored is None:
        return None
    body, secret_name = stored
    return parse_provider(body, has_secret=secret_name is not None, stored=True), secret_name


def client_secret(secret_name: str | None) -> str | None:
    if secret_name is None:
        return None
    value = secrets.get(secret_name) or {}
    secret = value.get("client_secret")
    return secret if isinstance(secret, str) else None


def put_provider(account_id: str, raw: Any) -> Provider:
    """Create or replace; ``client_secret``: absent keeps the stored one, null removes it."""
    current = load(account_id)
    secret_name = current[1] if current else None
    keep = isinstance(raw, dict) and "client_secret" not in raw and secret_name is not None
    provider = parse_provider(raw, has_secret=keep)
    # The outbound rules (no inner or loopback address when deployed, not the
    # Lambda runtime API) refuse the issuer now, naming the field.
    try:
        outbound.check_url(provider.discovery_url)
    except outbound.OutboundRefused as exc:
        field = "discovery_url" if isinstance(raw, dict) and raw.get("discovery_url") else "issuer"
        raise ProviderError(field, str(exc)) from None
    if isinstance(raw, dict) and isinstance(raw.get("client_secret"), str):
        secret_name = secrets.name_for(SECRET_USE, account_id)
        try:
            secrets.put(secret_name, {"client_secret": raw["client_secret"]})
        except secrets.SecretBusy:
            raise ProviderError(
                "client_secret", "the previous secret is still being deleted: try in a minute"
            ) from None
    elif isinstance(raw, dict) and "client_secret" in raw and secret_name is not None:
        secrets.delete(secret_name)  # null: a public client (PKCE alone)
        secret_name = None
    store.put_provider(account_id, provider.as_dict(), secret_name, clock.now_ms())
    if current is not None and _who_gets_in(current[0]) != _who_gets_in(provider):
        # Sessions keep the role they began with: one admitted under the old rules
        # (a default role or group mapping taken away, another issuer) must not outlive them.
        sessions.end_all_of(account_id, None)
    return provider


def _who_gets_in(provider: Provider) -> tuple[Any, ...]:
    """The fields that decide who signs in with which role (not session length, scopes...)."""
    return (
        provider.issuer,
        provider.discovery_url,
        provider.client_id,
        provider.allowed_domains,
        provider.email_claim,
        provider.group_claim,
        sorted((role, tuple(groups)) for role, groups in provider.role_groups.items()),
        provider.default_role,
    )


def delete_provider(account_id: str) -> bool:
    current = load(account_id)
    if current is None:
        return False
    store.delete_provider(account_id)
    if current[1] is not None:
        secrets.delete(current[1])
    sessions.end_all_of(account_id, None)  # nobody signed in through it stays signed in
    return True


def members(account_id: str) -> list[dict[str, Any]]:
    return [member.public() for member in store.list_members(account_id)]


def assign(account_id: str, raw_email: str, body: Any, by: str) -> dict[str, Any]:
    """Give a person a role; their open sessions end (a session keeps the role it began with)."""
    email = check_member_email(raw_email)
    if not isinstance(body, dict) or set(body) != {"role"} or body["role"] not in ROLES:
        raise ProviderError("role", f'send {{"role": ...}} with one of {", ".join(ROLES)}')
    previous = store.get_member(account_id, email)
    member = store.put_member(account_id, email, body["role"], by, clock.now_ms())
    if previous is None or previous.role != member.role:
        sessions.end_all_of(account_id, email)
    return member.public()


def unassign(account_id: str, raw_email: str) -> bool:
    email = check_member_email(raw_email)
    removed = store.delete_member(account_id, email)
    sessions.end_all_of(account_id, email)
    return removed
