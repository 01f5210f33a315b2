"""`insights sql` and `insights events tail`: the local stack's data out.

`sql` answers from the local stack's exports with DuckDB, in this process
(local/sql.py): the same files and table Athena reads on AWS. `events tail`
prints the membership events reaching the local bus.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from insights.cli.stack import DEFAULTS
from insights.local import state as local_state

EXPORT_WAIT_SECONDS = 120.0


def _api(state: dict[str, Any], method: str, path: str, key: str | None = None) -> Any:
    request = urllib.request.Request(f"{state['api_url']}{path}", method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def export_now(state: dict[str, Any], secret_key: str) -> dict[str, Any]:
    """An on-demand export through the API, waited for (the stack runs its queue).

    While the account's last export still runs (409), that one is waited for
    and a new one started: the answer is as of now, not as of that one."""
    deadline = time.monotonic() + EXPORT_WAIT_SECONDS
    while True:
        try:
            job = _api(state, "POST", "/v1/exports", secret_key)
            break
        except urllib.error.HTTPError as exc:
            running = json.loads(exc.read() or b"{}").get("export_id") if exc.code == 409 else None
            if running is None:
                raise
            _wait(state, secret_key, {"id": running, "status": "running"}, deadline)
    job = _wait(state, secret_key, job, deadline)
    if job["status"] != "succeeded":
        raise SystemExit(f"error: export {job['id']} {job['status']}: {job.get('error')}")
    return job


def _wait(
    state: dict[str, Any], secret_key: str, job: dict[str, Any], deadline: float
) -> dict[str, Any]:
    """The job once it ended (or once it is gone: a 409 may name one being made)."""
    while job["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise SystemExit(f"error: export {job['id']} is still {job['status']}")
        time.sleep(0.2)
        try:
            job = _api(state, "GET", f"/v1/exports/{job['id']}", secret_key)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
    return job


def _sql(args: argparse.Namespace) -> int:
    from insights.local import sql

    state = local_state.require_running()
    secret = args.secret_key or (state.get("account") or {}).get("secret_key")
    if args.refresh:
        if not secret:
            raise SystemExit("error: --refresh needs --secret-key (the stack has no demo account)")
        export_now(state, secret)
    # The stack copies its bucket's export files into its data directory.
    root = Path(_api(state, "POST", "/_local/exports")["root"])
    try:
        names, rows = sql.query(root, args.query)
    except sql.NoExport:
        raise SystemExit(
            'error: nothing exported yet; run `insights sql --refresh "..."` to export now '
            "(the stack also exports every account once a day)"
        ) from None
    except Exception as exc:  # DuckDB's parser and binder errors: one line, no traceback
        if type(exc).__module__.startswith("duckdb") or type(exc).__module__.startswith("_duckdb"):
            raise SystemExit(f"error: {exc}") from None
        raise
    if args.json:
        for values in rows:
            print(json.dumps(dict(zip(names, values, strict=True)), default=str))
    else:
        print_table(names, rows)
    return 0


def print_table(names: list[str], rows: list[tuple[Any, ...]]) -> None:
    text = [[("" if v is None else str(v)) for v in values] for values in rows]
    widths = [max([len(n)] + [len(r[i]) for r in text]) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for values in text:
        print("  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _tail(args: argparse.Namespace) -> int:
    state = local_state.require_running()
    position = 0 if args.all else int(_api(state, "GET", "/_local/events?after=0")["position"])
    while True:
        page = _api(state, "GET", f"/_local/events?after={position}")
        for event in page["events"]:
            if args.json:
                print(json.dumps(event), flush=True)
            else:
                detail = event.get("detail", {})
                print(
                    f"{detail.get('time')}  {detail.get('change', '?'):7}  "
                    f"{detail.get('segment_name')} ({detail.get('segment_id')})  "
                    f"{detail.get('uuid')}  {detail.get('event_id')}",
                    flush=True,
                )
        position = page["position"]
        if not args.follow:
            return 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0


def add_parsers(commands: Any) -> None:
    sql = commands.add_parser(
        "sql",
        help="query the local stack's exported profiles with SQL (DuckDB, in process)",
        description="Answer a SQL query from the local stack's exports (the files and the "
        "`insights.users` table Athena reads on AWS; docs/sql.md).",
        formatter_class=DEFAULTS,
    )
    sql.add_argument("query", help='SQL, e.g. "SELECT count(*) FROM insights.users"')
    sql.add_argument(
        "--refresh", action="store_true", help="export the account now first (POST /v1/exports)"
    )
    sql.add_argument("--secret-key", help="the account's secret key (default: the demo account)")
    sql.add_argument("--json", action="store_true", help="one JSON object per row")
    sql.set_defaults(func=_sql)

    events = commands.add_parser("events", help="membership events on the local bus")
    actions = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    tail = actions.add_parser(
        "tail",
        help="print segment membership events as they reach the local bus",
        formatter_class=DEFAULTS,
    )
    tail.add_argument("--all", action="store_true", help="start from the oldest event kept")
    tail.add_argument(
        "--no-follow", dest="follow", action="store_false", help="print what is there and stop"
    )
    tail.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    tail.add_argument("--json", action="store_true", help="the whole EventBridge event, as JSON")
    tail.set_defaults(func=_tail)
