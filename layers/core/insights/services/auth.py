"""API key authentication with a short in-memory cache per Lambda container."""

from __future__ import annotations

import time

from insights.domain.accounts import KeyKind, hash_key
from insights.storage import accounts as account_store
from insights.storage.accounts import Account

# Settings changes reach warm containers within this many seconds.
CACHE_SECONDS = 30.0
_MAX_CACHED = 1024
_cache: dict[str, tuple[float, Account, KeyKind]] = {}


class AuthError(Exception):
    status = 401

    def __init__(self, code: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def authenticate(key: str | None, *, allowed: frozenset[KeyKind], where: str) -> Account:
    if not key:
        raise AuthError("missing_key", f"no API key: send it {where}")
    digest = hash_key(key)
    cached = _cache.get(digest)
    if cached is not None and cached[0] > time.monotonic():
        _, account, kind = cached
    else:
        found = account_store.find_key(key)
        if found is None:
            raise AuthError("unknown_key", "the API key is not valid")
        account_id, kind = found
        loaded = account_store.get_account(account_id)
        if loaded is None:
            raise AuthError("unknown_key", "the API key's account no longer exists")
        account = loaded
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[digest] = (time.monotonic() + CACHE_SECONDS, account, kind)
    if kind not in allowed:
        raise AuthError(
            "wrong_key", "a write key may only send events; use the secret key", status=403
        )
    return account


def forget(account_id: str) -> None:
    """Drop cached entries of an account (after its settings change here)."""
    for digest in [d for d, (_, a, _k) in _cache.items() if a.account_id == account_id]:
        _cache.pop(digest, None)
