"""The audit log's entries and pages, the pure part.

An entry says who (a person's email, or "secret key"), with which role,
did what (the route and the concrete path), when, from where (the network,
IPv4 /24 or IPv6 /48: the address itself is never stored, invariant 8) and
with what result (the HTTP status). Entries are kept per account for
``RETENTION_DAYS`` and read newest first, a page at a time.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from insights.domain.core.limits import whole_number
from insights.domain.core.timefmt import format_time

RETENTION_DAYS = 90
DAY_MS = 86_400_000
PAGE = (1, 100, 50)  # min, max, default entries per page
SECRET_KEY_ACTOR = "secret key"
_SORT_KEY = re.compile(r"^\d{13}#[0-9a-f]{8}$")


class AuditQueryError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Entry:
    at_ms: int
    actor: str  # an email, or "secret key"
    via: str  # "session" | "secret_key" | "sign_in"
    role: str | None
    action: str  # the route: "DELETE /v1/segments/{id}", "sign_in"
    path: str | None  # the concrete path (which segment, which user)
    status: int
    network: str | None
    detail: str | None = None  # a refusal's code

    def public(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("at_ms")
        return {"at": format_time(self.at_ms), **body}

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Entry:
        return cls(**json.loads(text))


def parse_page(limit: str | None, cursor: str | None) -> tuple[int, str | None]:
    """(entries per page, the sort key to read below) from the query string."""
    low, high, default = PAGE
    if limit in (None, ""):
        count = default
    else:
        parsed = whole_number(limit, low, high)  # ASCII digits: int("²") raises
        if parsed is None:
            raise AuditQueryError("limit", f"limit must be a whole number from {low} to {high}")
        count = parsed
    if cursor in (None, ""):
        return count, None
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["before"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise AuditQueryError("cursor", "cursor is not one this API gave") from None
    if not isinstance(after, str) or not _SORT_KEY.match(after):
        raise AuditQueryError("cursor", "cursor is not one this API gave")
    return count, after


def cursor_for(sort_key: str) -> str:
    raw = json.dumps({"before": sort_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def oldest_kept(now_ms: int) -> int:
    """Entries older than this are gone logically, whatever TTL has not yet removed."""
    return now_ms - RETENTION_DAYS * DAY_MS
