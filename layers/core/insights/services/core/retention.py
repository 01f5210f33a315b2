"""Physical retention: the cascade after TTL removes an expired profile.

Correctness never waits for this (reads treat an expired profile as absent
at once); it only reclaims storage.
"""

from __future__ import annotations

from insights import clock
from insights.storage.core import store


def cascade_expired_profile(pk: str) -> int:
    found = store.get_profile(pk, consistent=True)
    if found is not None and found.profile.is_alive(clock.now_ms()):
        # The user came back and a fresh record exists: its items stay.
        return 0
    return store.delete_user_items(pk)
