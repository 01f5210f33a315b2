"""API key authentication with a short in-memory cache per Lambda container.

The cache runs on the clock of record (insights.clock), which on Lambda is wall
time: a replay on a simulated clock then makes the reads AWS would.
"""

from __future__ import annotations

import re

from insights import clock
from insights.domain.accounts import KEY_PREFIX, KeyKind, hash_key
from insights.storage import accounts as account_store
from insights.storage.accounts import Account

# Settings changes reach warm containers within this many seconds.
CACHE_SECONDS = 30.0
_MAX_CACHED = 1024
_cache: dict[str, tuple[float, Account, KeyKind]] = {}
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
        _, account, kind = cached
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
        loaded = account_store.get_account(account_id)
        if loaded is None:
            raise AuthError("unknown_key", "the API key's account no longer exists")
        account = loaded
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[digest] = (now + CACHE_SECONDS, account, kind)
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


def forget(account_id: str) -> None:
    """Drop cached entries of an account (after its settings change here)."""
    for digest in [d for d, (_, a, _k) in _cache.items() if a.account_id == account_id]:
        _cache.pop(digest, None)


def revoke(key: str, account_id: str) -> None:
    """A key just replaced: refused by this container at once, not after CACHE_SECONDS."""
    forget(account_id)
    digest = hash_key(key)
    if len(_unknown) >= _MAX_UNKNOWN:
        _unknown.clear()
    _unknown[digest] = _now() + CACHE_SECONDS
