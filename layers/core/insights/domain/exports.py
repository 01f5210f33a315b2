"""Profiles for SQL: the rows, files and partitions of an export, and the spec's questions.

An export writes the visible users of each account (a closed session, not
expired at the export's moment) as gzipped JSON Lines under
`users/account=<account id>/dt=<YYYY-MM-DD>/`: the layout the Glue table
`users` projects its partitions from (template.yaml), and the one DuckDB
reads locally (`insights sql`). Times are UTC timestamps to the
millisecond ("2026-11-28 12:00:00.000"), which Athena's JSON SerDe and
DuckDB both read as TIMESTAMP; durations are seconds, as in the API.

Every row carries `exported_at`, the export's moment: the questions below
measure relative times from it, so the same SQL gives the same answer on
Athena, on DuckDB, and as the segments API would have at that moment.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from insights.domain.core.profile import Profile
from insights.domain.core.timefmt import DAY_MS

PREFIX = "users/"
JOB_PATTERN = re.compile(r"^exp_[0-9a-f]{16}$")


def sql_time(ms: int | None) -> str | None:
    """UTC to the millisecond, as SQL engines read a TIMESTAMP: "2026-11-28 12:00:00.000".

    By arithmetic on a cached date: a few microseconds per user matter when a
    million users are exported (docs/sql.md, "Cost")."""
    if ms is None:
        return None
    days, rest = divmod(int(ms), DAY_MS)
    seconds, millis = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_date(days)} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


@functools.lru_cache(maxsize=4096)
def _date(days: int) -> str:
    return datetime.fromtimestamp(days * 86_400, UTC).strftime("%Y-%m-%d")


def day_of(ms: int) -> str:
    """The partition date (UTC) of an export taken at `ms`."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def partition(account_id: str, dt: str) -> str:
    return f"{PREFIX}account={account_id}/dt={dt}/"


def part_key(account_id: str, dt: str, job_id: str, part: str, exported_at: int) -> str:
    """One file of a job: named by the export's moment and the job, so that the
    export of a partition that ends can tell earlier exports' files (removed)
    from a later one's (which replaces its own)."""
    return f"{partition(account_id, dt)}{exported_at:013d}-{job_id}-{part}.json.gz"


def export_of_key(key: str) -> tuple[int, str]:
    """(moment, job id) of the export a file belongs to, the order exports replace
    each other in. Files named before the moment was in the name
    (``exp_...-<part>.json.gz``), or by anything else, come before every export."""
    name = key.rsplit("/", 1)[-1]
    moment, _, rest = name.partition("-")
    if not (moment.isascii() and moment.isdigit()) or not rest.startswith("exp_"):
        return -1, name.split("-", 1)[0]
    return int(moment), rest.split("-", 1)[0]


def new_job_id() -> str:
    return "exp_" + secrets.token_hex(8)


def _typed(value: Any) -> tuple[str | None, str]:
    """A custom value as text plus its JSON type: SQL compares `value = 'VIP'`, and
    numbers cast (`CAST(custom['score'].value AS double)`)."""
    if isinstance(value, bool):
        return ("true" if value else "false"), "boolean"
    if isinstance(value, int | float):
        return json.dumps(value), "number"
    if value is None:
        return None, "null"
    return str(value), "string"


def row(profile: Profile, exported_at: int) -> dict[str, Any] | None:
    """The export's line for one profile, or None when the user is not visible then."""
    if not profile.is_visible(exported_at):
        return None
    sessions = profile.total_sessions
    gap = profile.avg_gap_ms
    custom = {}
    for name, item in sorted(profile.custom.items()):
        text, kind = _typed(item.value)
        custom[name] = {
            "value": text,
            "type": kind,
            "updated_at": sql_time(item.updated_at),
            "changed_at": sql_time(item.changed_since),
            "source": item.source,
        }
    return {
        "uuid": profile.uuid,
        "first_seen": sql_time(profile.first_seen),
        "last_seen": sql_time(profile.last_seen),
        "total_sessions": profile.total_sessions,
        # Seconds, rounded as the API's standard attributes are.
        "total_session_duration": round(profile.total_duration_ms / 1000, 3),
        "avg_session_duration": round(profile.total_duration_ms / sessions / 1000, 3),
        "avg_time_between_sessions": None if gap is None else round(gap / 1000, 3),
        "country": profile.country,
        "region": profile.region,
        "city": profile.city,
        "browser_name": profile.browser_name,
        "browser_version": profile.browser_version,
        "custom": custom,
        "exported_at": sql_time(exported_at),
    }


def line(values: dict[str, Any]) -> bytes:
    return (json.dumps(values, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


# ------------------------------------------------------------------- jobs
@dataclass(frozen=True, slots=True)
class Job:
    id: str
    account_id: str
    status: str  # queued | running | succeeded | failed
    created_at: int
    dt: str
    exported_at: int
    finished_at: int | None = None
    users: int = 0
    files: int = 0
    error: str | None = None

    def public(self, bucket: str) -> dict[str, Any]:
        from insights.domain.core.timefmt import format_time

        return {
            "id": self.id,
            "status": self.status,
            "created_at": format_time(self.created_at),
            "exported_at": format_time(self.exported_at),
            "finished_at": format_time(self.finished_at),
            "users": self.users,
            "files": self.files,
            "partition": {"account": self.account_id, "dt": self.dt},
            "location": f"s3://{bucket}/{partition(self.account_id, self.dt)}",
            "error": self.error,
        }


# --------------------------------------------------------------- questions
# The spec's four questions (tests/segments/test_segments_spec_questions.py has
# them as segment rules), over one account's export of one day. Standard SQL
# that Athena (Trino) and DuckDB both run.
FOUR_QUESTIONS = """\
SELECT
  count_if(first_seen BETWEEN exported_at - INTERVAL '7' DAY AND exported_at)
    AS signed_up_last_week,
  count_if(total_sessions = 1 AND last_seen < exported_at - INTERVAL '7' DAY)
    AS signed_up_once_never_came_back,
  count_if(custom['plan'].type = 'string' AND custom['plan'].value = 'VIP'
           AND custom['plan'].changed_at >= exported_at - INTERVAL '7' DAY)
    AS recently_upgraded_to_vip,
  count_if(total_sessions >= 2 AND last_seen < exported_at - INTERVAL '30' DAY
           AND last_seen BETWEEN exported_at - INTERVAL '60' DAY AND exported_at)
    AS active_until_a_month_ago
FROM {table}
WHERE account = '{account}' AND dt = '{dt}'"""


def four_questions(table: str, account_id: str, dt: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_]+", account_id) or not re.fullmatch(r"\d{4}-\d\d-\d\d", dt):
        raise ValueError("an account id and a YYYY-MM-DD date")
    return FOUR_QUESTIONS.format(table=table, account=account_id, dt=dt)
