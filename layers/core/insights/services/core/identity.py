"""Identity verification: the secret's life cycle and the per-event check.

The check runs at the edge of ingest, per event and before any folding: an
event for a uuid without a valid user_hash is rejected on its own
(``unverified_user``) and the others go through. Requests authenticated
with the secret key come from the customer's servers and are trusted.
"""

from __future__ import annotations

from dataclasses import replace

from insights import clock
from insights.domain.core.events import Batch, Rejection
from insights.domain.core.identity import (
    ROTATION_GRACE_MS,
    UNVERIFIED,
    IdentitySettings,
    new_identity_secret,
    verify,
)
from insights.storage.core import identity as identity_store

# Same horizon and clock as keys and account settings (services/core/auth.py).
CACHE_SECONDS = 30.0
_MAX_CACHED = 1024
_cache: dict[str, tuple[float, IdentitySettings]] = {}


class IdentityError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def settings_of(account_id: str) -> IdentitySettings:
    now = clock.now_ms() / 1000
    cached = _cache.get(account_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    found = identity_store.load(account_id)
    if len(_cache) >= _MAX_CACHED:
        _cache.clear()
    _cache[account_id] = (now + CACHE_SECONDS, found)
    return found


def remember(account_id: str, settings: IdentitySettings) -> None:
    """Settings just read with the account (services/core/auth.py): cached as settings_of would."""
    if len(_cache) >= _MAX_CACHED:
        _cache.clear()
    _cache[account_id] = (clock.now_ms() / 1000 + CACHE_SECONDS, settings)


def forget(account_id: str) -> None:
    _cache.pop(account_id, None)


def rotate_secret(account_id: str, now_ms: int) -> tuple[str, IdentitySettings]:
    """A new secret; the previous one keeps verifying for the grace period.

    Conditional on the secret read: of two concurrent rotations one wins and
    the other is a 409 (each would otherwise answer 201, one secret would
    never verify, and the pre-race secret would stay valid as "previous").
    """
    current = identity_store.load(account_id, consistent=True)
    secret = new_identity_secret()
    updated = replace(
        current,
        secret=secret,
        secret_created_at=now_ms,
        previous_secret=current.secret,
        previous_valid_until=now_ms + ROTATION_GRACE_MS if current.secret else None,
    )
    try:
        identity_store.rotate(account_id, updated, read_secret=current.secret)
    except identity_store.SecretChanged:
        forget(account_id)
        raise IdentityError(
            409,
            "rotation_conflict",
            "the identity secret was rotated by another request at the same time; "
            "its secret is the current one (read it where that request was made), "
            "or rotate again",
        ) from None
    forget(account_id)
    return secret, updated


def set_verification(account_id: str, on: object) -> IdentitySettings:
    if not isinstance(on, bool):
        raise IdentityError(400, "invalid_setting", "verification must be true or false")
    try:
        identity_store.set_verification(account_id, on)
    except identity_store.SecretChanged:
        raise IdentityError(
            409,
            "no_identity_secret",
            "create an identity secret first (POST /v1/account/identity/secret or "
            "`insights identity rotate`), then compute user_hash with it in your backend",
        ) from None
    forget(account_id)
    return identity_store.load(account_id, consistent=True)


def screen(account_id: str, batch: Batch, *, trusted: bool, now_ms: int) -> int:
    """Move events without a valid user_hash to the rejections; returns how many."""
    if trusted or not batch.events:
        return 0
    settings = settings_of(account_id)
    if not settings.verification:
        return 0
    valid = settings.secrets_at(now_ms)
    kept, refused = [], []
    for event in batch.events:
        if verify(valid, event.uuid, event.user_hash):
            kept.append(event)
        else:
            refused.append(Rejection(event.index, f"events[{event.index}].user_hash", UNVERIFIED))
    if refused:
        batch.events = kept
        batch.rejected = sorted([*batch.rejected, *refused], key=lambda r: r.index)
    return len(refused)


def is_verified(account_id: str, uuid: str, presented: str | None, now_ms: int) -> bool:
    """For reads a browser may make (its targeting segments): a valid hash, always."""
    return verify(settings_of(account_id).secrets_at(now_ms), uuid, presented)
