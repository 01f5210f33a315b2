"""The `insights` command: run the local stack, manage accounts, import files, re-index."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from insights.local import state as local_state


class DEFAULTS(argparse.HelpFormatter):
    """Help that shows each option's default, unless it says it or has none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return text
        return text + " (default: %(default)s)"


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
        if "IdpTableName" in outputs:
            os.environ["IDP_TABLE"] = outputs["IdpTableName"]
        return f"stack {args.stack}"
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
        return args.endpoint_url
    if os.environ.get("ACCOUNTS_TABLE"):
        return f"table {os.environ['ACCOUNTS_TABLE']}"
    state, stale = local_state.find_running()
    if state is not None:
        os.environ["AWS_ENDPOINT_URL"] = state["aws_endpoint_url"]
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(key, "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        return f"local stack at {state['api_url']}"
    raise SystemExit(
        "error: no target: the local stack is not running"
        + (" (stale state left by a stopped stack)" if stale else "")
        + f"; {local_state.START_HINT}, or pass --stack NAME for a deployed stack, "
        "or --endpoint-url URL"
    )


def _accounts_create(args: argparse.Namespace) -> int:
    target = _target(args)
    from insights.domain.core.accounts import AccountSettings, SettingsError, patch_settings
    from insights.services.core.accounts import create_account

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


def _accounts_list(args: argparse.Namespace) -> int:
    target = _target(args)
    from dataclasses import asdict

    from insights.storage.core.accounts import list_accounts

    accounts = list_accounts()
    if args.json:
        print(json.dumps([asdict(a) for a in accounts], indent=2))
        return 0
    if not accounts:
        print(f"No accounts on {target}; create one with `insights accounts create --name NAME`")
        return 0
    from insights.domain.core.timefmt import format_time

    print(f"{len(accounts)} account(s) on {target} (keys are stored hashed: never shown again)")
    for account in accounts:
        settings = account.settings
        print(
            f"  {account.account_id}  {account.name}  created {format_time(account.created_at)}"
            f"  session_timeout_minutes={settings.session_timeout_minutes}"
            f" backfill_days={settings.backfill_days}"
            f" unique_user_ids={str(settings.unique_user_ids).lower()}"
        )
    return 0


def _segments_reindex(args: argparse.Namespace) -> int:
    target = _target(args)
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"insights {version('insights')}"
    except PackageNotFoundError:
        return "insights (not installed as a package)"


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        help="a deployed CloudFormation stack name (uses your AWS credentials); "
        "default: the running local stack",
    )
    parser.add_argument(
        "--endpoint-url", help="an AWS endpoint to use instead (e.g. a moto server)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="insights", description=__doc__, formatter_class=DEFAULTS)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    accounts = commands.add_parser("accounts", help="create and list accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = accounts.add_parser(
        "create", help="create an account and its two keys", formatter_class=DEFAULTS
    )
    create.add_argument("--name", required=True, help="the account's name (shown in listings)")
    create.add_argument(
        "--session-timeout-minutes", type=int, help="1-240; default 30 (the account default)"
    )
    create.add_argument("--backfill-days", type=int, help="0-365; default 7 (the account default)")
    create.add_argument(
        "--no-unique-user-ids",
        action="store_true",
        help="accept events but keep no user records",
    )
    create.add_argument("--json", action="store_true", help="machine-readable output")
    _add_target(create)
    create.set_defaults(func=_accounts_create)

    listing = accounts.add_parser(
        "list", help="list every account with its settings (not its keys)", formatter_class=DEFAULTS
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _add_target(listing)
    listing.set_defaults(func=_accounts_list)

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
    _add_target(reindex)
    reindex.set_defaults(func=_segments_reindex)

    demo = commands.add_parser(
        "demo",
        help="send realistic traffic to a running stack",
        description="Send two weeks of realistic traffic (sessions, browsers, countries, "
        "plan upgrades) to a stack, then print a few users. If the account's backfill_days "
        "is under 15 it is raised to 30 so the older events are accepted, and the demo says so.",
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

    from insights.cli.imports import add_parser as add_import_parser

    add_import_parser(commands, local_state.state_file_of_running)

    from insights.cli.integrations import add_parser as add_integrations_parser

    add_integrations_parser(commands, local_state.state_file_of_running)

    from insights.cli.idp import add_parser as add_idp_parser

    add_idp_parser(commands)

    from insights.cli.identity import add_parser as add_identity_parser

    add_identity_parser(commands)
    return parser


def _unreachable(exc: BaseException) -> str | None:
    """A one-line message when a command could not reach its stack, else None.

    pynamodb wraps botocore's connection error (PutError "Could not connect"),
    urllib wraps the socket's: the cause is looked for along the chain.
    """
    from botocore.exceptions import EndpointConnectionError

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        reason = getattr(seen, "reason", None)
        if isinstance(seen, EndpointConnectionError | ConnectionError) or isinstance(
            reason, ConnectionError
        ):
            return (
                "error: cannot reach the stack; if it is the local stack, it is not running: "
                + local_state.START_HINT
            )
        seen = seen.__cause__ or seen.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        message = _unreachable(exc)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
