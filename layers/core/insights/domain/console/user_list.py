"""The console's user list: query parameters and its cursor.

The cursor is the last uuid a page looked at and the prefix it was for,
base64url JSON. It needs no signature: it only says where to continue
inside the caller's own account (every read is scoped by the key's
account), and a forged one just starts elsewhere (or is refused when it names
no possible uuid: that would reach DynamoDB as an invalid key condition).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from insights.domain.core.admission import uuid_problem
from insights.domain.core.limits import whole_number

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_PREFIX_CHARS = 256  # the longest uuid


class ListError(ValueError):
    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Page:
    prefix: str
    limit: int
    after: str | None  # continue with uuids greater than this one


def parse(
    prefix: str | None,
    limit: str | None,
    cursor: str | None,
    *,
    default: int = DEFAULT_LIMIT,
    most: int = MAX_LIMIT,
) -> Page:
    """A page of a list by name (users by uuid; the attribute catalogue by name)."""
    prefix = prefix or ""
    if len(prefix) > MAX_PREFIX_CHARS:
        raise ListError(
            "invalid_prefix", f"prefix is longer than {MAX_PREFIX_CHARS} characters", "prefix"
        )
    size = default
    if limit not in (None, ""):
        parsed = whole_number(limit, 1, most)
        if parsed is None:
            raise ListError(
                "invalid_limit", f"limit must be a whole number from 1 to {most}", "limit"
            )
        size = parsed
    after = None if cursor in (None, "") else _decode(cursor, prefix)
    return Page(prefix, size, after)


def encode_cursor(after: str, prefix: str) -> str:
    raw = json.dumps({"a": after, "p": prefix}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, prefix: str) -> str:
    bad = ListError("invalid_cursor", "cursor is not a next_cursor of this list", "cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(found, dict) or not isinstance(found.get("a"), str):
        raise bad
    if uuid_problem(found["a"]) is not None:
        # Forged: it would reach DynamoDB as a key condition no uuid can meet (a 500).
        raise bad
    if found.get("p") != prefix:
        raise ListError("invalid_cursor", "cursor belongs to a list with another prefix", "cursor")
    return found["a"]
