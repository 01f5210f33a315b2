"""The `insights` command: run the local stack, manage accounts, import files, re-index."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from insights.local.server import STATE_FILE


def _target(args: argparse.Namespace) -> str:
    """Point the storage layer at a deployed stack or the running local stack.

    Account management uses AWS credentials, not an API key: whoever may
    deploy the stack may create its accounts.
    """
    if args.stack:
        import boto3

        stack = boto3.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        os.environ["ACCOUNTS_TABLE"] = outputs["AccountsTableName"]
        os.environ["SESSIONS_TABLE"] = outputs["SessionsTableName"]
        os.environ["USERS_TABLE"] = outputs["UsersTableName"]
        return f"stack {args.stack}"
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
        return args.endpoint_url
    if os.environ.get("ACCOUNTS_TABLE"):
        return f"table {os.environ['ACCOUNTS_TABLE']}"
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        os.environ["AWS_ENDPOINT_URL"] = state["aws_endpoint_url"]
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(key, "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        return f"local stack at {state['api_url']}"
    raise SystemExit(
        "no target: start the local stack (`make run`), or pass --stack NAME for a deployed "
        "stack, or --endpoint-url URL"
    )


def _accounts_create(args: argparse.Namespace) -> int:
    target = _target(args)
    from insights.domain.accounts import AccountSettings, SettingsError, patch_settings
    from insights.services.accounts import create_account

    patch: dict[str, Any] = {}
    if args.session_timeout_minutes is not None:
        patch["session_timeout_minutes"] = args.session_timeout_minutes
    if args.backfill_days is not None:
        patch["backfill_days"] = args.backfill_days
    if args.no_unique_user_ids:
        patch["unique_user_ids"] = False
    try:
        settings = patch_settings(AccountSettings(), patch) if patch else AccountSettings()
        created = create_account(args.name, settings)
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(created.as_dict(), indent=2))
    else:
        print(f"Created account {created.account.account_id} ({created.account.name}) on {target}")
        print(f"  write key  {created.write_key}   (public: send events)")
        print(f"  secret key {created.secret_key}   (keep secret: Authorization: Bearer ...)")
        print("  Keys are stored hashed: this is the only time they are shown.")
    return 0


def _segments_reindex(args: argparse.Namespace) -> int:
    target = _target(args)
    from dataclasses import asdict

    from insights.services.segment_index import reindex_account

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
        )
    )
    return 0


def _local_state() -> dict[str, Any]:
    if not STATE_FILE.exists():
        return {}
    return json.loads(STATE_FILE.read_text())


def _demo(args: argparse.Namespace) -> int:
    from insights.local.demo import Api, print_summary, run_demo

    state = _local_state()
    account = state.get("account", {})
    api_url = args.api or state.get("api_url")
    write_key = args.write_key or account.get("write_key")
    secret_key = args.secret_key or account.get("secret_key")
    if not (api_url and write_key and secret_key):
        raise SystemExit(
            "no stack to send to: start one with `make run`, or pass --api, --write-key "
            "and --secret-key"
        )
    summary = run_demo(Api(api_url, write_key, secret_key), users=args.users, show=args.show)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="insights", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the whole service locally (moto, no Docker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("INSIGHTS_PORT", "3000")))
    serve.add_argument(
        "--sweep-interval", type=float, default=60.0, help="seconds between sweeper runs (AWS: 60)"
    )
    serve.add_argument(
        "--ttl-interval", type=float, default=60.0, help="seconds between simulated TTL deletions"
    )
    serve.add_argument("--geoip-database", help="path of a MaxMind City .mmdb file")
    serve.add_argument("--quiet", action="store_true", help="no request log")
    serve.set_defaults(func=_serve)

    accounts = commands.add_parser("accounts", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create = accounts.add_parser("create", help="create an account and its two keys")
    create.add_argument("--name", required=True)
    create.add_argument("--session-timeout-minutes", type=int)
    create.add_argument("--backfill-days", type=int)
    create.add_argument("--no-unique-user-ids", action="store_true")
    create.add_argument("--json", action="store_true", help="machine-readable output")
    create.add_argument("--stack", help="a deployed CloudFormation stack name")
    create.add_argument("--endpoint-url", help="AWS endpoint (e.g. a moto server)")
    create.set_defaults(func=_accounts_create)

    segments = commands.add_parser("segments", help="segment maintenance").add_subparsers(
        dest="action", required=True
    )
    reindex = segments.add_parser(
        "reindex",
        help="rewrite every profile's segment index keys and entries of one account "
        "(after an upgrade that changed them; scans the whole users table)",
    )
    reindex.add_argument("--account", required=True, help="account id (acc_...)")
    reindex.add_argument("--json", action="store_true", help="machine-readable output")
    reindex.add_argument("--stack", help="a deployed CloudFormation stack name")
    reindex.add_argument("--endpoint-url", help="AWS endpoint (e.g. a moto server)")
    reindex.set_defaults(func=_segments_reindex)

    demo = commands.add_parser("demo", help="send realistic traffic to a running stack")
    demo.add_argument("--api", help="base URL (default: the running local stack)")
    demo.add_argument("--write-key")
    demo.add_argument("--secret-key")
    demo.add_argument("--users", type=int, default=200)
    demo.add_argument("--show", type=int, default=8, help="users to print")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(func=_demo)

    from insights.cli_imports import add_parser as add_import_parser

    add_import_parser(commands, STATE_FILE)
    from insights.cli_identity import add_parser as add_identity_parser

    add_identity_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
