"""Opaque, tamper-proof pagination cursors: base64url(JSON) + HMAC-SHA256.

The key is a random secret per account (kept with the account's segment
definitions), so a cursor is valid only for the account that received it,
and no constant in the code can forge one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

_MAC_BYTES = 16


class CursorError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: dict[str, Any], key: bytes) -> str:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{_b64(body)}.{_b64(mac)}"


def verify(token: str, key: bytes) -> dict[str, Any]:
    try:
        body_part, mac_part = token.split(".")
        body, mac = _unb64(body_part), _unb64(mac_part)
    except (ValueError, TypeError):
        raise CursorError("malformed cursor") from None
    expected = hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise CursorError("cursor signature does not match")
    try:
        payload = json.loads(body)
    except ValueError:
        raise CursorError("malformed cursor") from None
    if not isinstance(payload, dict):
        raise CursorError("malformed cursor")
    return payload
