"""The clock of record: server receive time, in epoch milliseconds.

Everything that needs "now" asks this module, so the local stack can move
time forward (to show a session closing without waiting 30 minutes) without
any special path inside the handlers.
"""

from __future__ import annotations

import time

_offset_ms = 0
_frozen_ms: int | None = None


def now_ms() -> int:
    if _frozen_ms is not None:
        return _frozen_ms
    return int(time.time() * 1000) + _offset_ms


def advance(seconds: float) -> None:
    """Move the clock forward (local stack and tests only; never called in Lambda)."""
    global _offset_ms, _frozen_ms
    if _frozen_ms is not None:
        _frozen_ms += int(seconds * 1000)
    else:
        _offset_ms += int(seconds * 1000)


def offset_ms() -> int:
    """How far the clock has been moved forward (the local stack keeps it across restarts)."""
    return _offset_ms


def freeze(at_ms: int) -> None:
    """Stop the clock at a given time (tests), so durations are exact."""
    global _frozen_ms
    _frozen_ms = at_ms


def reset() -> None:
    global _offset_ms, _frozen_ms
    _offset_ms = 0
    _frozen_ms = None
