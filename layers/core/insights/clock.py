"""The clock of record: server receive time, in epoch milliseconds.

Everything that needs "now" asks this module, so the local stack can move
time forward (to show a session closing without waiting 30 minutes) without
any special path inside the handlers.
"""

from __future__ import annotations

import time

_offset_ms = 0


def now_ms() -> int:
    return int(time.time() * 1000) + _offset_ms


def advance(seconds: float) -> None:
    """Move the clock forward (local stack and tests only; never called in Lambda)."""
    global _offset_ms
    _offset_ms += int(seconds * 1000)


def reset() -> None:
    global _offset_ms
    _offset_ms = 0
