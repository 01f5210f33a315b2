"""`insights segments reindex`: segment maintenance, with AWS credentials."""

from __future__ import annotations

import argparse
import json
from typing import Any

from insights.cli.stack import DEFAULTS, add_target, use_stack


def _reindex(args: argparse.Namespace) -> int:
    target = use_stack(args)
    from dataclasses import asdict

    from insights.services.segments.index import reindex_account

    done = reindex_account(args.account)
    if args.json:
        print(json.dumps(asdict(done), indent=2))
    else:
        print(
            f"Re-indexed account {args.account} on {target}: {done.profiles} profiles "
            f"({done.keys_rewritten} with new index keys), {done.entries_written} index "
            f"entries written, {done.entries_deleted} stale ones deleted"
        )
    return 0


def add_parser(commands: Any) -> None:
    segments = commands.add_parser("segments", help="segment maintenance").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    reindex = segments.add_parser(
        "reindex",
        formatter_class=DEFAULTS,
        help="rewrite every profile's segment index keys and entries of one account "
        "(after an upgrade that changed them; scans the whole users table)",
    )
    reindex.add_argument("--account", required=True, help="account id (acc_...)")
    reindex.add_argument("--json", action="store_true", help="machine-readable output")
    add_target(reindex)
    reindex.set_defaults(func=_reindex)
