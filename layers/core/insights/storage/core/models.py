"""pynamodb models of the three tables declared in template.yaml.

Table names come from the environment the template sets; the defaults are
the template's logical ids, which is how the local stack names its tables.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from insights.config import load
from insights.storage.aws import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_RETRY_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
    share,
)

_settings = load()


class _Meta:
    region = _settings.region
    # The shared connection's settings (storage/aws.py: short timeouts on Lambda).
    max_retry_attempts = MAX_RETRY_ATTEMPTS
    connect_timeout_seconds = CONNECT_TIMEOUT_SECONDS
    read_timeout_seconds = READ_TIMEOUT_SECONDS


class AccountItem(Model):
    class Meta(_Meta):
        table_name = _settings.accounts_table

    pk = UnicodeAttribute(hash_key=True)  # "acct#<account id>"
    name = UnicodeAttribute()
    created_at = NumberAttribute()
    unique_user_ids = BooleanAttribute(default=True)
    session_timeout_minutes = NumberAttribute(default=30)
    backfill_days = NumberAttribute(default=7)
    # Stored under its first name (a Segment-only setting then): accounts that
    # opted in before it covered every door keep their list, with no migration.
    event_properties_as_attributes = ListAttribute(
        of=UnicodeAttribute, null=True, attr_name="segment_event_properties"
    )
    # Absent on accounts made before the setting: they get its default.
    protected_attributes = ListAttribute(of=UnicodeAttribute, null=True)
    version = VersionAttribute()


class KeyItem(Model):
    """An API key, stored by its SHA-256 only, in the accounts table."""

    class Meta(_Meta):
        table_name = _settings.accounts_table

    pk = UnicodeAttribute(hash_key=True)  # "key#<sha256 of the key>"
    account_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # "write" | "secret"
    created_at = NumberAttribute()


class SessionItem(Model):
    """A user's open window of sessions. Kept small: every request rewrites it."""

    class Meta(_Meta):
        table_name = _settings.sessions_table

    pk = UnicodeAttribute(hash_key=True)  # "<account id>#<uuid>"
    timeout_ms = NumberAttribute()
    seen = NumberAttribute(null=True)  # receive time of the last change (null: old shape)
    deadline = NumberAttribute()  # the sweeper's: when anything in the window is due
    prev_end = NumberAttribute(null=True)
    # Compact JSON: [[start, end - start, seen - window seen, interactive, props, ctx index]],
    # props {"name": [value, ts - start]}, ctx [[ts, country, region, city, browser, version]]
    runs = UnicodeAttribute(null=True)
    ctx = UnicodeAttribute(null=True)
    late = UnicodeAttribute(null=True)  # {"name": [value, ts]} of late events
    sent = UnicodeAttribute(null=True)  # [[seen - sent_at, offset]]
    # The shape before windows (one session per item): read, never written.
    start = NumberAttribute(null=True)
    end = NumberAttribute(null=True)
    interactive = BooleanAttribute(null=True)
    props = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()  # TTL, epoch seconds: when the whole window closes
    # Set just before an erasure deletes the window: its deletion must not be applied.
    erasing = BooleanAttribute(null=True)
    version = VersionAttribute()


class _ByFirstSeen(GlobalSecondaryIndex["UserItem"]):
    """Segments: profiles of an account by first_seen (sharded hash key)."""

    class Meta:
        index_name = "by_first_seen"
        projection = KeysOnlyProjection()

    ix_shard = UnicodeAttribute(hash_key=True)
    first_seen = NumberAttribute(range_key=True)


# What by_last_seen carries besides its keys: every stored field behind the
# standard attributes (all change only when a session closes, as last_seen does).
LAST_SEEN_PROJECTION = (
    "first_seen",
    "total_sessions",
    "total_duration_ms",
    "country",
    "region",
    "city",
    "browser_name",
    "browser_version",
)
ENTRY_PROJECTION = ("ix_json", "live_until")


class _ByLastSeen(GlobalSecondaryIndex["UserItem"]):
    """Segments: profiles of an account by last_seen (sharded, split by 1 / 2+ sessions)."""

    class Meta:
        index_name = "by_last_seen"
        projection = IncludeProjection(list(LAST_SEEN_PROJECTION))

    ix_active = UnicodeAttribute(hash_key=True)
    last_seen = NumberAttribute(range_key=True)


class _ByUuid(GlobalSecondaryIndex["UserItem"]):
    """The console's user list: visible profiles of an account by uuid (sharded hash key)."""

    class Meta:
        index_name = "by_uuid"
        projection = KeysOnlyProjection()

    ix_listed = UnicodeAttribute(hash_key=True)
    uuid = UnicodeAttribute(range_key=True)


class UserItem(Model):
    """A user's profile (sk "profile"). Other sk values belong to the same user."""

    class Meta(_Meta):
        table_name = _settings.users_table

    pk = UnicodeAttribute(hash_key=True)  # "<account id>#<uuid>"
    sk = UnicodeAttribute(range_key=True)
    account_id = UnicodeAttribute()
    uuid = UnicodeAttribute()
    created_at = NumberAttribute()
    first_seen = NumberAttribute(null=True)
    last_seen = NumberAttribute(null=True)
    total_sessions = NumberAttribute(default=0)
    total_duration_ms = NumberAttribute(default=0)
    country = UnicodeAttribute(null=True)
    region = UnicodeAttribute(null=True)
    city = UnicodeAttribute(null=True)
    browser_name = UnicodeAttribute(null=True)
    browser_version = UnicodeAttribute(null=True)
    custom = MapAttribute(null=True)  # name -> {"v": value, "t": ms, "s": source}
    erased_at = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # TTL, epoch seconds
    version = VersionAttribute()
    sent = UnicodeAttribute(null=True)  # [[sent_at, offset]]: Profile.recent_sends
    # When this version was written (epoch ms): membership events (domain/notify.py)
    # tell a change time brought from one a write brought by it. A short name: bytes.
    written_at = NumberAttribute(null=True, attr_name="wt")
    # Segments: "<account id>#<shard>", fixed per user (insights.domain.segments.indexing).
    ix_shard = UnicodeAttribute(null=True)
    # "<account id>#<shard>#<1|2+>": by_last_seen's hash key (sessions bucket).
    ix_active = UnicodeAttribute(null=True)
    # by_uuid's hash key: "<account id>#<shard>" once the first session closed.
    ix_listed = UnicodeAttribute(null=True)

    by_first_seen = _ByFirstSeen()
    by_last_seen = _ByLastSeen()
    by_uuid = _ByUuid()


class _ByValue(GlobalSecondaryIndex["IndexEntryItem"]):
    class Meta:
        index_name = "by_value"
        projection = IncludeProjection(list(ENTRY_PROJECTION))

    ix_value = UnicodeAttribute(hash_key=True)
    ix_changed = NumberAttribute(range_key=True)


class _ByChange(GlobalSecondaryIndex["IndexEntryItem"]):
    class Meta:
        index_name = "by_change"
        projection = IncludeProjection(list(ENTRY_PROJECTION))

    ix_attr = UnicodeAttribute(hash_key=True)
    ix_changed = NumberAttribute(range_key=True)


class IndexEntryItem(Model):
    """A segment index entry of one user attribute: sk "idx#<attribute>", beside the profile."""

    class Meta(_Meta):
        table_name = _settings.users_table

    pk = UnicodeAttribute(hash_key=True)  # "<account id>#<uuid>", as the profile
    sk = UnicodeAttribute(range_key=True)
    ix_value = UnicodeAttribute(null=True)  # only when a segment reads the value index
    ix_attr = UnicodeAttribute(null=True)
    ix_changed = NumberAttribute()
    # The exact value as JSON (the key's token is case-folded or hashed), and
    # the profile's last_seen + retention when the entry was written: a lower
    # bound of the user's expiry, so an entry can prove the user is visible.
    ix_json = UnicodeAttribute(null=True)
    live_until = NumberAttribute(null=True)

    by_value = _ByValue()
    by_change = _ByChange()


class SegmentsItem(Model):
    """An account's segment definitions, all in one item (pk "seg#<account id>").

    The per-user membership call needs every definition of the account: one
    item is one read (then cached). Bounded by MAX_SEGMENTS and the item size.
    """

    class Meta(_Meta):
        table_name = _settings.accounts_table

    pk = UnicodeAttribute(hash_key=True)
    segments = UnicodeAttribute()  # compact JSON list of segment objects
    cursor_key = UnicodeAttribute()  # hex: per-account HMAC key of pagination cursors
    version = VersionAttribute()


class IndexCatalogueItem(Model):
    """The entry indexes an account's segments need, and which are complete.

    Its own small item (pk "segidx#<account id>"), not a field of the
    segments item: the segment index stream reads it on every invocation,
    and a read is billed for the whole item, which the segments item can
    make up to 350 KB.
    """

    class Meta(_Meta):
        table_name = _settings.accounts_table

    pk = UnicodeAttribute(hash_key=True)
    indexes = UnicodeAttribute()  # JSON list (domain.segments.catalogue)
    version = VersionAttribute()


class BackfillProgressItem(Model):
    """Which chains of one segment index backfill have walked their shards
    (services/segments/index.py): pk "segidx#<account id>#<since>". The chain
    that completes the set marks the catalogue ready; TTL removes the item."""

    class Meta(_Meta):
        table_name = _settings.accounts_table

    pk = UnicodeAttribute(hash_key=True)
    chains_done = NumberSetAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # TTL, epoch seconds


# One botocore client per container for every model (storage/aws.py).
share(
    AccountItem,
    KeyItem,
    SessionItem,
    UserItem,
    IndexEntryItem,
    SegmentsItem,
    IndexCatalogueItem,
    BackfillProgressItem,
)
