"""The console's aggregates: what one profile change adds to daily stats and the catalogue.

Pure: the segment index stream feeds it the old and new image of every
profile write (services/console/aggregates.py), and the sums it returns are
applied with atomic ADDs. Everything counted is a difference between two
images, so every writer of profiles (the three close paths, imports and
integrations, erasure, retention) is counted without knowing it is.

Counted users are the visible ones: a profile with at least one closed
session (imported attributes of a user without one wait, uncounted, as they
wait unseen by segments). A record that expires and is replaced by a fresh
one on the user's return is a new user again (DESIGN invariant 7).

Session durations go into a log-scale histogram per day, four buckets per
doubling: a bucket's representative (its geometric middle) is within
2^(1/8) - 1 = 9.05 % of every duration in it, so the median read from it is
too. Durations of exactly 0 (one-event sessions, common) have their own
bucket and read as 0.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from insights.domain.core.profile import CustomValue, Profile

BUCKETS_PER_DOUBLING = 4
ZERO_BUCKET = "h_z"
HISTOGRAM_PREFIX = "h_"
SOURCE_PREFIX = "src_"
TYPE_PREFIX = "type_"
MAX_EXAMPLES = 5
# Longer values are not offered as examples: the catalogue items stay small
# (one write unit), and a long free text is a poor example anyway.
MAX_EXAMPLE_CHARS = 64
VALUE_TYPES = ("string", "number", "boolean", "date")
# What imports store for a "date" column (insights.domain.imports.files._date_from_text).
_ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


# ------------------------------------------------------------------ histogram
def bucket_of(duration_ms: int) -> str:
    """The histogram attribute a session of this duration counts in."""
    if duration_ms <= 0:
        return ZERO_BUCKET
    seconds = duration_ms / 1000
    if seconds < 1:
        return f"{HISTOGRAM_PREFIX}0"
    return f"{HISTOGRAM_PREFIX}{1 + math.floor(BUCKETS_PER_DOUBLING * math.log2(seconds))}"


def bucket_seconds(bucket: str) -> float:
    """A bucket's representative duration: the geometric middle of its bounds."""
    if bucket == ZERO_BUCKET:
        return 0.0
    index = int(bucket.removeprefix(HISTOGRAM_PREFIX))
    if index == 0:
        return 0.5  # (0, 1) s
    return 2 ** ((index - 0.5) / BUCKETS_PER_DOUBLING)


def _order(bucket: str) -> int:
    return -1 if bucket == ZERO_BUCKET else int(bucket.removeprefix(HISTOGRAM_PREFIX))


def median_seconds(histogram: dict[str, int]) -> float | None:
    """The median duration from bucket counts (the mean of the two middle ones when even)."""
    counts = sorted(((b, n) for b, n in histogram.items() if n > 0), key=lambda p: _order(p[0]))
    total = sum(n for _, n in counts)
    if total == 0:
        return None
    lower, upper = (total - 1) // 2, total // 2  # 0-based ranks of the middle value(s)
    found: list[float] = []
    seen = 0
    for bucket, n in counts:
        for rank in (lower, upper):
            if seen <= rank < seen + n:
                found.append(bucket_seconds(bucket))
        seen += n
    return round(sum(found) / len(found), 3)


# ----------------------------------------------------------------------- days
def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


def last_days(now_ms: int, count: int) -> list[str]:
    """The `count` UTC days ending today, oldest first."""
    today = date.fromisoformat(day_of(now_ms))
    return [(today - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]


# ----------------------------------------------------------------- catalogue
def value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str) and _ISO_UTC.match(value):
        return "date"
    return "string"


def example_of(value: Any) -> str | None:
    """A value as stored in the examples set (typed JSON), or None when too long."""
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= MAX_EXAMPLE_CHARS else None


# --------------------------------------------------------------------- deltas
@dataclass
class Deltas:
    """What a run of profile changes adds up to, per aggregate item."""

    users: int = 0
    days: dict[str, Counter] = field(default_factory=dict)  # day -> {counter: n}
    attributes: dict[str, Counter] = field(default_factory=dict)  # name -> {counter: n}
    examples_gone: dict[str, set[str]] = field(default_factory=dict)
    examples_seen: dict[str, set[str]] = field(default_factory=dict)

    def _day(self, day: str) -> Counter:
        return self.days.setdefault(day, Counter())

    def _attribute(self, name: str) -> Counter:
        return self.attributes.setdefault(name, Counter())

    def add_profile_change(self, old: Profile | None, new: Profile | None) -> None:
        was, now = _counted(old), _counted(new)
        self.users += int(now is not None) - int(was is not None)
        self._sessions(was, now)
        self._custom(was.custom if was else {}, now.custom if now else {})

    def _sessions(self, was: Profile | None, now: Profile | None) -> None:
        if now is None or now.first_seen is None or now.last_seen is None:
            return
        same_record = was is not None and was.first_seen == now.first_seen
        if not same_record:
            self._day(day_of(now.first_seen))["new_users"] += 1
        base_sessions = was.total_sessions if same_record and was else 0
        base_duration = was.total_duration_ms if same_record and was else 0
        added = now.total_sessions - base_sessions
        if added <= 0:
            return
        duration = now.total_duration_ms - base_duration
        # One session per close is the rule; a window closed with several
        # runs at once gives only their sum: each counts with the mean
        # duration, dated from the last one's end back over the sum.
        each = duration // added
        start = now.last_seen - duration
        if not same_record:
            start = now.first_seen
        for _ in range(added):
            counters = self._day(day_of(start))
            counters["sessions"] += 1
            counters[bucket_of(each)] += 1
            start += each

    def _custom(self, old: dict[str, CustomValue], new: dict[str, CustomValue]) -> None:
        for name in old.keys() | new.keys():
            before, after = old.get(name), new.get(name)
            if before is not None and after is not None and _same(before, after):
                continue
            counters = self._attribute(name)
            if before is not None:
                counters["users"] -= 1
                counters[SOURCE_PREFIX + before.source] -= 1
                counters[TYPE_PREFIX + value_type(before.value)] -= 1
                example = example_of(before.value)
                # Examples forget a value when its user goes (erasure, expiry),
                # not when it changes: every change would rewrite the item.
                if example is not None and after is None:
                    self.examples_gone.setdefault(name, set()).add(example)
            if after is not None:
                counters["users"] += 1
                counters[SOURCE_PREFIX + after.source] += 1
                counters[TYPE_PREFIX + value_type(after.value)] += 1
                example = example_of(after.value)
                if example is not None:
                    self.examples_seen.setdefault(name, set()).add(example)

    def is_empty(self) -> bool:
        return not (
            self.users or self.nonzero_days() or self.nonzero_attributes() or self.examples_seen
        )

    def merge(self, other: Deltas) -> None:
        """Add another run's sums to these."""
        self.users += other.users
        for day, counters in other.days.items():
            self._day(day).update(counters)
        for name, counters in other.attributes.items():
            self._attribute(name).update(counters)
        for mine, theirs in (
            (self.examples_gone, other.examples_gone),
            (self.examples_seen, other.examples_seen),
        ):
            for name, values in theirs.items():
                mine.setdefault(name, set()).update(values)

    def encode(self) -> str:
        """Compact JSON of the non-zero sums (a pending delta item, one write unit)."""
        body: dict[str, Any] = {
            "u": self.users,
            "d": self.nonzero_days(),
            "a": self.nonzero_attributes(),
            "g": {k: sorted(v) for k, v in self.examples_gone.items() if v},
            "s": {k: sorted(v) for k, v in self.examples_seen.items() if v},
        }
        return json.dumps({k: v for k, v in body.items() if v}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Deltas:
        body = json.loads(text)
        return cls(
            users=int(body.get("u", 0)),
            days={d: Counter(c) for d, c in body.get("d", {}).items()},
            attributes={n: Counter(c) for n, c in body.get("a", {}).items()},
            examples_gone={n: set(v) for n, v in body.get("g", {}).items()},
            examples_seen={n: set(v) for n, v in body.get("s", {}).items()},
        )

    def item_count(self) -> int:
        """How many aggregate items these sums update (a transaction holds 100)."""
        names = self.nonzero_attributes().keys() | self.examples_seen.keys()
        return len(self.nonzero_days()) + int(bool(self.users)) + len(names)

    def nonzero_days(self) -> dict[str, dict[str, int]]:
        return {
            d: {k: n for k, n in c.items() if n} for d, c in self.days.items() if any(c.values())
        }

    def nonzero_attributes(self) -> dict[str, dict[str, int]]:
        return {
            name: {k: n for k, n in c.items() if n}
            for name, c in self.attributes.items()
            if any(c.values()) or name in self.examples_gone
        }


def _counted(profile: Profile | None) -> Profile | None:
    return profile if profile is not None and profile.total_sessions > 0 else None


def _same(a: CustomValue, b: CustomValue) -> bool:
    return (
        a.source == b.source
        and value_type(a.value) == value_type(b.value)
        and example_of(a.value) == example_of(b.value)
    )


# ------------------------------------------------------------------- reading
def attribute_view(name: str, counters: dict[str, Any], examples: list[str]) -> dict[str, Any]:
    """One catalogue entry as the API shows it."""

    def present(prefix: str) -> list[str]:
        return sorted(
            k.removeprefix(prefix) for k, n in counters.items() if k.startswith(prefix) and n > 0
        )

    return {
        "name": name,
        "sources": present(SOURCE_PREFIX),
        "types": [t for t in VALUE_TYPES if t in present(TYPE_PREFIX)],
        "users": max(0, int(counters.get("users", 0))),
        "examples": [json.loads(e) for e in sorted(examples)[:MAX_EXAMPLES]],
    }


def day_view(day: str, counters: dict[str, Any]) -> dict[str, Any]:
    histogram = {
        k: int(n) for k, n in counters.items() if k.startswith(HISTOGRAM_PREFIX) and int(n) > 0
    }
    return {
        "date": day,
        "new_users": int(counters.get("new_users", 0)),
        "sessions": int(counters.get("sessions", 0)),
        "median_session_seconds": median_seconds(histogram),
    }
