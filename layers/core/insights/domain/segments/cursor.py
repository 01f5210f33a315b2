"""Opaque, tamper-proof pagination cursors: base64url(JSON) + HMAC-SHA256.

The key is a random secret per account (kept with the account's segment
definitions), so a cursor is valid only for the account that received it,
and no constant in the code can forge one.

A body over COMPRESS_OVER bytes is deflated first. A count or listing keeps
a position per index range it reads, and an `in` rule of ten values reads
ten ranges per shard: with the SDKs' 36-character uuids its cursor passed
4 KB, where API Gateway allows 10,240 bytes for a request line and its
headers together. The positions repeat the account id and the times, so
they deflate to about a third. The body is inflated only after its MAC
holds, and never past MAX_BODY bytes. Cursors signed before (plain JSON,
which starts with "{") still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from typing import Any

_MAC_BYTES = 16
COMPRESS_OVER = 256
MAX_BODY = 64 * 1024


class CursorError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: dict[str, Any], key: bytes) -> str:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > COMPRESS_OVER:
        body = zlib.compress(body, 9)  # starts with 0x78, never "{"
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
        payload = json.loads(body if body.startswith(b"{") else _inflate(body))
    except (ValueError, zlib.error):
        raise CursorError("malformed cursor") from None
    if not isinstance(payload, dict):
        raise CursorError("malformed cursor")
    return payload


def _inflate(body: bytes) -> bytes:
    inflater = zlib.decompressobj()
    data = inflater.decompress(body, MAX_BODY)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("cursor body too large or cut short")
    return data
