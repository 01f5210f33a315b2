"""Identity verification: user_hash = HMAC-SHA256(identity secret, uuid), hex.

The customer's backend computes the hash with the account's identity secret
and hands it to the page with the uuid; the browser SDK sends it on every
event. Anyone can read the public write key, but without the secret nobody
can produce a valid hash for another user's uuid.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from insights.domain.core.timefmt import HOUR_MS, format_time

SECRET_PREFIX = "is_"
HASH_CHARS = 64  # hex SHA-256
# After a rotation the previous secret still verifies for this long, so pages
# already open (and hashes cached by the customer's backend) keep working.
ROTATION_GRACE_MS = 24 * HOUR_MS
UNVERIFIED = "unverified_user"


def new_identity_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def user_hash(secret: str, uuid: str) -> str:
    return hmac.new(secret.encode(), uuid.encode(), hashlib.sha256).hexdigest()


def hash_problem(raw: object) -> str | None:
    """Why a presented user_hash cannot be right (shape only), or None."""
    if not isinstance(raw, str):
        return "user_hash must be a string"
    if len(raw) != HASH_CHARS or any(c not in "0123456789abcdefABCDEF" for c in raw):
        return f"user_hash must be {HASH_CHARS} hexadecimal characters (HMAC-SHA256 of the uuid)"
    return None


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """An account's verification switch and its valid secrets (newest first)."""

    verification: bool = False
    secret: str | None = None
    secret_created_at: int | None = None
    previous_secret: str | None = None
    previous_valid_until: int | None = None

    def secrets_at(self, now_ms: int) -> list[str]:
        valid = [self.secret] if self.secret else []
        if self.previous_secret and (self.previous_valid_until or 0) > now_ms:
            valid.append(self.previous_secret)
        return valid

    def public(self) -> dict[str, object]:
        """What the API shows: never a secret."""
        return {
            "verification": self.verification,
            "secret_created_at": format_time(self.secret_created_at),
            "previous_secret_valid_until": format_time(self.previous_valid_until),
        }


def verify(secrets_valid: Iterable[str], uuid: str, presented: str | None) -> bool:
    """Constant-time check of a presented hash against each valid secret."""
    if not presented or hash_problem(presented) is not None:
        return False
    presented = presented.lower()
    return any(hmac.compare_digest(user_hash(s, uuid), presented) for s in secrets_valid)


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a verified sign-in (an OIDC ID token, a SAML assertion) proves: this uuid
    signed in at the account's IdP, by `method`."""

    uuid: str
    method: str  # "oidc" or "saml"
    issuer: str
    issued_at: int  # epoch seconds
    expires_at: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "verified": True,
            "method": self.method,
            "issuer": self.issuer,
            "expires_at": self.expires_at,
        }
