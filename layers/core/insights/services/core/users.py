"""Reading and erasing one user."""

from __future__ import annotations

from dataclasses import dataclass

from insights.domain.core.profile import Profile, tombstone
from insights.storage.core import store
from insights.storage.core.records import user_pk


@dataclass(frozen=True, slots=True)
class Missing:
    reason: str


def read_user(account_id: str, uuid: str, now_ms: int) -> Profile | Missing:
    pk = user_pk(account_id, uuid)
    found = store.get_profile(pk, consistent=False)
    if found is None:
        if store.get_session(pk, consistent=False) is not None:
            return Missing(_NOT_YET)
        return Missing("no such user in this account")
    profile = found.profile
    if not profile.is_alive(now_ms):
        return Missing("the user was inactive for more than 180 days; their record expired")
    if profile.total_sessions == 0:
        if profile.erased_at is not None and not profile.custom:
            return Missing("the user was erased; nothing has been recorded since")
        return Missing(_NOT_YET)
    return profile


_NOT_YET = (
    "the user has no closed session yet: attributes appear after the first "
    "session ends (30 minutes of inactivity by default)"
)


def erase_user(account_id: str, uuid: str, now_ms: int) -> int:
    """Privacy erasure: profile, custom attributes and open session, at once."""
    return store.erase_user(user_pk(account_id, uuid), tombstone(account_id, uuid, now_ms))
