"""The audit log: written once per management action, read by admins a page at a time.

``record`` is called by ``insights.http`` after a management write (and
after any refusal by role), and by the sign-in for each sign-in, admitted or
refused. One PutItem per action (under 1 KB: 1 WRU). A failed write is
logged as an error and does not turn the action's answer into
an error: the action has happened by then.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from insights import clock
from insights.domain.team.audit import DAY_MS, RETENTION_DAYS, Entry, cursor_for, oldest_kept
from insights.domain.team.flow import network
from insights.storage import team as store

logger = Logger(child=True)


def record(
    account_id: str,
    *,
    actor: str,
    via: str,
    role: str | None,
    action: str,
    path: str | None,
    status: int,
    ip: str | None,
    detail: str | None = None,
) -> None:
    now = clock.now_ms()
    entry = Entry(now, actor, via, role, action, path, status, network(ip), detail)
    try:
        store.put_audit(account_id, entry, (now + (RETENTION_DAYS + 1) * DAY_MS) // 1000)
    except Exception as exc:  # the action happened; its answer stands
        why = {"action": action, "error": type(exc).__name__}
        logger.error("audit entry not written", extra=why)


def page(account_id: str, limit: int, before: str | None) -> dict[str, Any]:
    entries, last = store.audit_page(account_id, oldest_kept(clock.now_ms()), before, limit)
    return {
        "entries": [entry.public() for entry in entries],
        "next_cursor": cursor_for(last) if last else None,
        "retention_days": RETENTION_DAYS,
    }
