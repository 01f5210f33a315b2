"""API key authentication with short in-memory caches per Lambda container.

Two caches: which account and kind a key is (a secret key for CACHE_SECONDS,
since rotating it must revoke it; a write key for the container's life, since
a write key never changes owner and is never rotated), and each account with
its identity settings (CACHE_SECONDS), read together in one request. A warm
container's tracking requests thus cost one read request every CACHE_SECONDS,
where they cost three (key, account, identity) before (issue 26).

The caches run on the clock of record (insights.clock), which on Lambda is
wall time: a replay on a simulated clock then makes the reads AWS would.
"""

from __future__ import annotations

import re

from insights import clock
from insights.domain.core.accounts import KEY_PREFIX, KeyKind, hash_key
from insights.services.core import identity
from insights.storage.core import accounts as account_store
from insights.storage.core.accounts import Account

# Settings changes, and a secret key's rotation, reach warm containers within
# this many seconds.
CACHE_SECONDS = 30.0
_MAX_CACHED = 1024
# key digest -> (expires, account id, kind); a write key's entry never expires.
_cache: dict[str, tuple[float, str, KeyKind]] = {}
# account id -> (expires, account)
_accounts: dict[str, tuple[float, Account]] = {}
# Keys that matched nothing, also for CACHE_SECONDS: a client (or an attacker)
# repeating a garbage key costs no read after the first. A key created later
# cannot be in here: keys are random and unknown before they are created.
_MAX_UNKNOWN = 4096
_unknown: dict[str, float] = {}
# What new_key makes: a kind prefix and 32 URL-safe characters. Anything else
# is refused without a read.
_KEY_SHAPE = re.compile(
    "^(?:" + "|".join(map(re.escape, KEY_PREFIX.values())) + r")[A-Za-z0-9_-]{32}$"
)


def _now() -> float:
    return clock.now_ms() / 1000


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
    if not _KEY_SHAPE.match(key):
        raise AuthError("unknown_key", "the API key is not valid")
    digest = hash_key(key)
    cached = _cache.get(digest)
    now = _now()
    if cached is not None and cached[0] > now:
        _, account_id, kind = cached
    elif _unknown.get(digest, 0.0) > now:
        raise AuthError("unknown_key", "the API key is not valid")
    else:
        found = account_store.find_key(key)
        if found is None:
            if len(_unknown) >= _MAX_UNKNOWN:
                _unknown.clear()
            _unknown[digest] = now + CACHE_SECONDS
            raise AuthError("unknown_key", "the API key is not valid")
        account_id, kind = found
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[digest] = (
            float("inf") if kind == "write" else now + CACHE_SECONDS,
            account_id,
            kind,
        )
    account = _account(account_id, now)
    if kind not in allowed:
        if kind == "secret":
            # The only place a secret key is refused: a URL (see functions/track).
            raise AuthError(
                "secret_key_in_url",
                "a secret key is refused in a URL (URLs are logged and cached); send it in "
                "the X-Insights-Key header, or put the write key in the 'key' parameter",
                status=403,
            )
        raise AuthError(
            "wrong_key", "a write key may only send events; use the secret key", status=403
        )
    return account


def account(account_id: str) -> Account:
    """An account by id through the same cache (a console session names its account)."""
    return _account(account_id, _now())


def _account(account_id: str, now: float) -> Account:
    cached = _accounts.get(account_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    # One request for the account and its identity settings (ingest checks them next).
    account, settings = account_store.load_with_identity(account_id)
    if account is None:
        raise AuthError("unknown_key", "the API key's account no longer exists")
    identity.remember(account_id, settings)
    if len(_accounts) >= _MAX_CACHED:
        _accounts.clear()
    _accounts[account_id] = (now + CACHE_SECONDS, account)
    return account


def forget(account_id: str) -> None:
    """Drop the cached account (after its settings change here)."""
    _accounts.pop(account_id, None)


def revoke(key: str, account_id: str) -> None:
    """A key just replaced: refused by this container at once, not after CACHE_SECONDS."""
    forget(account_id)
    digest = hash_key(key)
    _cache.pop(digest, None)
    if len(_unknown) >= _MAX_UNKNOWN:
        _unknown.clear()
    _unknown[digest] = _now() + CACHE_SECONDS
