"""Conversion between domain objects and stored items, with their versions.

Every write is conditional on the version read (optimistic concurrency), so
two writers racing on one user never both win: the loser re-reads and
recomputes from the winner's result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from insights import clock
from insights.domain.core.profile import CustomValue, Profile
from insights.domain.core.sessions import Enrichment, Session, Stamped, Window
from insights.domain.segments.indexing import active_key, sessions_bucket, shard_key, shard_of
from insights.storage.core.models import SessionItem, UserItem

PROFILE_SK = "profile"


def user_pk(account_id: str, uuid: str) -> str:
    return f"{account_id}#{uuid}"


def split_pk(pk: str) -> tuple[str, str]:
    """Account ids never contain '#', uuids may: split at the first one."""
    account_id, _, uuid = pk.partition("#")
    return account_id, uuid


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A user's open window as stored, with the timeout it was written with."""

    pk: str
    window: Window
    timeout_ms: int
    version: int | None

    @property
    def deadline(self) -> int:
        return self.window.due_at(self.timeout_ms)


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    profile: Profile
    version: int | None
    written_at: int | None = None  # None: written before profiles kept it


# ------------------------------------------------------------------ sessions
def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _props_raw(props: dict[str, Stamped], base: int = 0) -> dict[str, list[Any]] | None:
    # Times relative to base (a run's start): 13-digit epochs cost bytes on every write.
    return {name: [s.value, s.ts - base] for name, s in props.items()} or None


def _props(raw: dict[str, list[Any]] | None, base: int = 0) -> dict[str, Stamped]:
    return {name: Stamped(value, base + int(ts)) for name, (value, ts) in (raw or {}).items()}


def _ctx_raw(e: Enrichment) -> list[Any]:
    return [e.ts, e.country, e.region, e.city, e.browser_name, e.browser_version]


def session_to_item(pk: str, window: Window, timeout_ms: int, version: int | None) -> SessionItem:
    # Runs of one window nearly always share one request context: each
    # distinct context is stored once and runs point at it.
    contexts: list[list[Any]] = []
    runs = []
    for run in window.runs:
        index = None
        if run.enrichment is not None:
            raw = _ctx_raw(run.enrichment)
            if raw not in contexts:
                contexts.append(raw)
            index = contexts.index(raw)
        runs.append(
            [
                run.start,
                run.end - run.start,
                run.seen - window.seen,
                int(run.interactive),
                _props_raw(run.props, run.start),
                index,
            ]
        )
    item = SessionItem(
        pk,
        timeout_ms=timeout_ms,
        seen=window.seen,
        deadline=window.due_at(timeout_ms),
        prev_end=window.prev_end,
        runs=_compact(runs),
        ctx=_compact(contexts) if contexts else None,
        late=_compact(_props_raw(window.late_props)) if window.late_props else None,
        # sent_at relative to the window's last change: a few digits instead of 13.
        sent=_compact([[window.seen - at, off] for at, off in window.sent])
        if window.sent
        else None,
        expires_at=-(-window.closes_at(timeout_ms) // 1000),
    )
    if version is not None:
        item.version = version
    return item


def session_from_attrs(pk: str, attrs: dict[str, Any], version: int | None) -> SessionRecord:
    timeout_ms = int(attrs["timeout_ms"])
    prev_end = None if attrs.get("prev_end") is None else int(attrs["prev_end"])
    if attrs.get("runs") is None:
        return SessionRecord(pk, _legacy_window(attrs, timeout_ms, prev_end), timeout_ms, version)
    seen = int(attrs["seen"])
    contexts = [Enrichment(*c) for c in json.loads(attrs["ctx"])] if attrs.get("ctx") else []
    runs = tuple(
        Session(
            start=int(start),
            end=int(start) + int(length),
            interactive=bool(interactive),
            props=_props(props, int(start)),
            enrichment=None if ctx is None else contexts[ctx],
            seen=seen + int(age),
        )
        for start, length, age, interactive, props, ctx in json.loads(attrs["runs"])
    )
    window = Window(
        runs=runs,
        seen=seen,
        prev_end=prev_end,
        late_props=_props(json.loads(attrs["late"])) if attrs.get("late") else {},
        sent=tuple((seen - int(a), int(o)) for a, o in json.loads(attrs["sent"]))
        if attrs.get("sent")
        else (),
    )
    return SessionRecord(pk, window, timeout_ms, version)


def _legacy_window(attrs: dict[str, Any], timeout_ms: int, prev_end: int | None) -> Window:
    """An item written before windows (one session, closing at its deadline)."""
    enrichment = Enrichment(*json.loads(attrs["ctx"])) if attrs.get("ctx") else None
    seen = int(attrs["deadline"]) - timeout_ms
    run = Session(
        start=int(attrs["start"]),
        end=int(attrs["end"]),
        interactive=bool(attrs["interactive"]),
        props=_props(json.loads(attrs["props"])) if attrs.get("props") else {},
        enrichment=enrichment,
        seen=seen,
    )
    return Window(runs=(run,), seen=seen, prev_end=prev_end)


def session_from_item(item: SessionItem) -> SessionRecord:
    attrs = {name: getattr(item, name) for name in _SESSION_FIELDS}
    return session_from_attrs(item.pk, attrs, item.version)


_SESSION_FIELDS = (
    "timeout_ms",
    "seen",
    "deadline",
    "prev_end",
    "runs",
    "ctx",
    "late",
    "sent",
    "start",
    "end",
    "interactive",
    "props",
)


def session_from_stream_image(image: dict[str, Any]) -> SessionRecord:
    """A stream OLD_IMAGE (DynamoDB JSON) back into a session record."""
    item = SessionItem.from_raw_data(image)
    return session_from_item(item)


# ------------------------------------------------------------------ profiles
def profile_to_item(profile: Profile, version: int | None) -> UserItem:
    pk = user_pk(profile.account_id, profile.uuid)
    item = UserItem(
        pk,
        PROFILE_SK,
        account_id=profile.account_id,
        uuid=profile.uuid,
        created_at=profile.created_at,
        first_seen=profile.first_seen,
        last_seen=profile.last_seen,
        total_sessions=profile.total_sessions,
        total_duration_ms=profile.total_duration_ms,
        country=profile.country,
        region=profile.region,
        city=profile.city,
        browser_name=profile.browser_name,
        browser_version=profile.browser_version,
        custom={name: _custom_raw(c) for name, c in profile.custom.items()},
        erased_at=profile.erased_at,
        expires_at=-(-profile.expires_at_ms() // 1000),
        sent=_compact([list(p) for p in profile.recent_sends]) if profile.recent_sends else None,
        written_at=clock.now_ms(),
        # Segments' first_seen / last_seen GSIs: constant per user, so those
        # indexes are written only when first_seen / last_seen change.
        ix_shard=shard_key(profile.account_id, shard_of(pk)),
        # The sessions bucket moves only when a session closes, which moves
        # last_seen (the same GSI's range key) anyway: no extra index write.
        ix_active=active_key(
            profile.account_id, shard_of(pk), sessions_bucket(profile.total_sessions)
        )
        if profile.total_sessions > 0
        else None,
        # The console's user list: visible from the first close on, then
        # constant, so by_uuid is written once per user record.
        ix_listed=shard_key(profile.account_id, shard_of(pk))
        if profile.total_sessions > 0
        else None,
    )
    if version is not None:
        item.version = version
    return item


def _custom_raw(c: CustomValue) -> dict[str, Any]:
    raw = {"v": c.value, "t": c.updated_at, "s": c.source}
    if c.changed_at is not None and c.changed_at != c.updated_at:
        raw["c"] = c.changed_at  # only when it differs: most values never need it
    return raw


def profile_from_item(item: UserItem) -> ProfileRecord:
    custom_raw = item.custom.as_dict() if item.custom is not None else {}
    custom = {
        name: CustomValue(
            _number(raw.get("v")),
            int(raw["t"]),
            str(raw["s"]),
            None if raw.get("c") is None else int(raw["c"]),
        )
        for name, raw in custom_raw.items()
    }
    profile = Profile(
        account_id=item.account_id,
        uuid=item.uuid,
        created_at=int(item.created_at),
        first_seen=_int(item.first_seen),
        last_seen=_int(item.last_seen),
        total_sessions=int(item.total_sessions or 0),
        total_duration_ms=int(item.total_duration_ms or 0),
        country=item.country,
        region=item.region,
        city=item.city,
        browser_name=item.browser_name,
        browser_version=item.browser_version,
        custom=custom,
        erased_at=_int(item.erased_at),
        recent_sends=tuple((int(a), int(o)) for a, o in json.loads(item.sent)) if item.sent else (),
    )
    return ProfileRecord(profile, item.version, _int(item.written_at))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _number(value: Any) -> Any:
    # DynamoDB numbers come back as float or Decimal; keep whole numbers whole.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
