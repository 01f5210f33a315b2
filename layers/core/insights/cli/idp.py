"""``insights scim tokens create|list|revoke``: an account's SCIM tokens, with AWS credentials.

The same as the management API (``/v1/idp/scim/tokens``, secret key), for
whoever holds the stack's AWS credentials rather than the account's key.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from insights.cli.stack import add_target, use_stack


def _account_exists(account_id: str) -> bool:
    from insights.storage.core.accounts import get_account

    return get_account(account_id) is not None


def _tokens(args: argparse.Namespace) -> int:
    target = use_stack(args)
    if not _account_exists(args.account):
        print(f"error: no account {args.account} on {target}", file=sys.stderr)
        return 2
    from insights.services.idp import scim
    from insights.storage.idp import items as idp

    if args.action == "create":
        try:
            created = scim.create_token(args.account, args.name)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(created.as_dict(), indent=2))
        else:
            print(f"Created SCIM token {created.info.token_id} ({created.info.name}) on {target}")
            print(f"  token {created.token}")
            print("  Stored hashed: this is the only time it is shown. SCIM base path: /scim/v2")
        return 0
    if args.action == "list":
        tokens = [t.as_dict() for t in idp.list_tokens(args.account)]
        if args.json:
            print(json.dumps({"tokens": tokens}, indent=2))
        else:
            for token in tokens:
                print(f"{token['id']}  {token['hint']}  {token['name']}")
            if not tokens:
                print("no SCIM tokens")
        return 0
    if not idp.revoke_token(args.account, args.token_id):
        print(f"error: no SCIM token {args.token_id} in {args.account}", file=sys.stderr)
        return 2
    print(f"Revoked SCIM token {args.token_id}")
    return 0


def add_parser(commands: Any) -> None:
    scim = commands.add_parser("scim", help="SCIM provisioning").add_subparsers(
        dest="scim_command", required=True
    )
    tokens = scim.add_parser("tokens", help="an account's SCIM bearer tokens").add_subparsers(
        dest="action", required=True
    )
    for action, help_text in (
        ("create", "create a SCIM token (shown once)"),
        ("list", "list SCIM tokens (never the tokens themselves)"),
        ("revoke", "revoke a SCIM token: it stops working at once"),
    ):
        sub = tokens.add_parser(action, help=help_text)
        sub.add_argument("--account", required=True, help="account id (acc_...)")
        if action == "create":
            sub.add_argument("--name", default="SCIM", help="a label, e.g. the IdP's name")
        if action == "revoke":
            sub.add_argument("token_id", help="the token's id (st_...)")
        if action != "revoke":
            sub.add_argument("--json", action="store_true", help="machine-readable output")
        add_target(sub)
        sub.set_defaults(func=_tokens)
