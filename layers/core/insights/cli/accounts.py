"""`insights accounts create|list`: accounts and their keys, with AWS credentials."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from insights.cli.stack import DEFAULTS, add_target, use_stack


def _create(args: argparse.Namespace) -> int:
    target = use_stack(args)
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


def _list(args: argparse.Namespace) -> int:
    target = use_stack(args)
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


def add_parser(commands: Any) -> None:
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
    add_target(create)
    create.set_defaults(func=_create)

    listing = accounts.add_parser(
        "list", help="list every account with its settings (not its keys)", formatter_class=DEFAULTS
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add_target(listing)
    listing.set_defaults(func=_list)
