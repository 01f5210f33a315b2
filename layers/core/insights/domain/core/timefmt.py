"""ISO-8601 parsing and formatting; all internal times are UTC epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
MAX_EPOCH_MS = 10**14  # the year 5138
MIN_ISO_MS = int(datetime(1, 1, 2, tzinfo=UTC).timestamp() * 1000)
MAX_ISO_MS = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)
MAX_DURATION_DIGITS = 9


class TimeFormatError(ValueError):
    pass


def parse_time(value: object) -> int:
    """Parse an ISO-8601 string (offset required, or 'Z') or epoch milliseconds."""
    if isinstance(value, bool):
        raise TimeFormatError("must be an ISO-8601 timestamp or epoch milliseconds")
    if isinstance(value, int | float):
        if not 0 <= value < MAX_EPOCH_MS:
            raise TimeFormatError("epoch milliseconds out of range")
        return int(value)
    if not isinstance(value, str) or not value:
        raise TimeFormatError("must be an ISO-8601 timestamp or epoch milliseconds")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TimeFormatError(f"not an ISO-8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise TimeFormatError("timestamp needs a UTC offset or 'Z'")
    ms = int(parsed.timestamp() * 1000)
    # Every time kept or compared must format back as an ISO UTC date:
    # 9999-12-31T23:59:59-14:00 is in the year 10000 in UTC.
    if not MIN_ISO_MS <= ms <= MAX_ISO_MS:
        raise TimeFormatError("timestamp out of range (years 0001 to 9999 in UTC)")
    return ms


def format_time(ms: int | None) -> str | None:
    if ms is None:
        return None
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_duration(value: str) -> int:
    """'30m', '12h', '7d', '45s' -> milliseconds."""
    units = {"s": SECOND_MS, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
    if not isinstance(value, str) or len(value) < 2 or value[-1] not in units:
        raise TimeFormatError("must be a duration like '30m', '12h' or '7d'")
    number = value[:-1]
    # ASCII digits only: "²".isdigit() is true and int("²") fails.
    if not (number.isascii() and number.isdecimal()) or len(number) > MAX_DURATION_DIGITS:
        raise TimeFormatError("must be a duration like '30m', '12h' or '7d'")
    return int(number) * units[value[-1]]
