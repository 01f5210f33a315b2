"""`insights serve` and `insights demo`: the local stack, and traffic to send it."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from insights.cli.stack import DEFAULTS
from insights.local import state as local_state


def _serve(args: argparse.Namespace) -> int:
    from insights.local.server import ServeOptions, serve

    serve(
        ServeOptions(
            host=args.host,
            port=args.port,
            sweep_interval=args.sweep_interval,
            ttl_interval=args.ttl_interval,
            geoip_database=args.geoip_database,
            quiet=args.quiet,
            data_dir=Path(args.data_dir) if args.data_dir else None,
            fresh=args.fresh,
        )
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from insights.local.demo import Api, print_summary, run_demo

    state: dict[str, Any] = {}
    if not (args.api and args.write_key and args.secret_key):
        state = local_state.require_running()
    account = state.get("account") or {}
    api_url = args.api or state.get("api_url")
    write_key = args.write_key or account.get("write_key")
    secret_key = args.secret_key or account.get("secret_key")
    if not (api_url and write_key and secret_key):
        raise SystemExit(
            "error: the running stack has no demo account; pass --write-key and --secret-key "
            "(from `insights accounts create`)"
        )
    summary = run_demo(
        Api(api_url, write_key, secret_key),
        users=args.users,
        show=args.show,
        change_settings=not args.keep_settings,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0


def add_parsers(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the whole service locally (moto, no Docker)",
        description="Run the whole service on localhost: the API, the tracking function URL, "
        "streams, the sweeper and TTL. Data is kept in the data directory across restarts.",
        formatter_class=DEFAULTS,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("INSIGHTS_PORT", "3000")),
        help="port of the API (env INSIGHTS_PORT)",
    )
    serve.add_argument(
        "--sweep-interval",
        type=float,
        default=60.0,
        help="seconds between sweeper runs (AWS: the SweepSchedule parameter, 300 by default)",
    )
    serve.add_argument(
        "--ttl-interval", type=float, default=60.0, help="seconds between simulated TTL deletions"
    )
    serve.add_argument(
        "--geoip-database",
        help="path of a MaxMind City .mmdb file (default: env INSIGHTS_GEOIP_DATABASE, the "
        "maxminddb-geolite2 package, else a small sample)",
    )
    serve.add_argument(
        "--data-dir",
        help="where tables, files and the clock are kept across restarts "
        f"(default: env INSIGHTS_HOME, else {local_state.PROJECT / '.insights'})",
    )
    serve.add_argument(
        "--fresh", action="store_true", help="start empty: delete the saved data first"
    )
    serve.add_argument("--quiet", action="store_true", help="no request log")
    serve.set_defaults(func=_serve)

    demo = commands.add_parser(
        "demo",
        help="send realistic traffic to a running stack",
        description="Send two weeks of realistic traffic (sessions, browsers, countries, "
        "plan upgrades) to a stack, say what will be recorded (empty sessions record "
        "nothing), then print a few users. If the account's backfill_days is under 15 it is "
        "raised to 30 so the older events are accepted, and the demo says so. On the local "
        "stack it moves the stack's clock past the session timeout (for good) so the "
        "sessions close at once.",
        formatter_class=DEFAULTS,
    )
    demo.add_argument("--api", help="API base URL (default: the running local stack)")
    demo.add_argument("--write-key", help="the account's write key (default: the demo account)")
    demo.add_argument("--secret-key", help="the account's secret key (default: the demo account)")
    demo.add_argument("--users", type=int, default=200, help="users to simulate")
    demo.add_argument("--show", type=int, default=8, help="users to print afterwards")
    demo.add_argument(
        "--keep-settings",
        action="store_true",
        help="never change the account's backfill_days (events older than it are rejected)",
    )
    demo.add_argument("--json", action="store_true", help="machine-readable output")
    demo.set_defaults(func=_demo)
