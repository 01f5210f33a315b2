"""`insights identity`: create/rotate an account's identity secret, turn verification on/off.

Uses AWS credentials, like `insights accounts create` (the management API's
`POST /v1/account/identity/secret` does the same with the secret key).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from insights.cli.stack import add_target, use_stack


def _rotate(args: argparse.Namespace) -> int:
    from insights import clock
    from insights.storage.core import accounts as account_store

    target = use_stack(args)
    if account_store.get_account(args.account) is None:
        print(f"error: no account {args.account} on {target}", file=sys.stderr)
        return 2
    from insights.services.core.identity import IdentityError, rotate_secret

    try:
        secret, settings = rotate_secret(args.account, clock.now_ms())
    except IdentityError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"identity_secret": secret, **settings.public()}, indent=2))
        return 0
    print(f"New identity secret for {args.account} on {target}:")
    print(f"  {secret}")
    print("  Keep it on your servers: user_hash = HMAC-SHA256(secret, uuid), hex.")
    until = settings.public()["previous_secret_valid_until"]
    print("  It is shown only now." + (f" The previous one works until {until}." if until else ""))
    return 0


def _verification(args: argparse.Namespace) -> int:
    from insights.services.core.identity import IdentityError, set_verification

    target = use_stack(args)
    try:
        settings = set_verification(args.account, args.state == "on")
    except IdentityError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(settings.public()) if args.json else f"verification {args.state} ({target})")
    return 0


def add_parser(commands: Any) -> None:
    identity = commands.add_parser(
        "identity", help="identity verification (user_hash) of an account"
    ).add_subparsers(dest="action", required=True)
    rotate = identity.add_parser(
        "rotate", help="create or rotate the identity secret (the old one works 24 h more)"
    )
    verification = identity.add_parser(
        "verification", help="reject events without a valid user_hash (on) or not (off)"
    )
    verification.add_argument("state", choices=["on", "off"])
    for parser, func in ((rotate, _rotate), (verification, _verification)):
        parser.add_argument("--account", required=True, help="account id (acc_...)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        add_target(parser)
        parser.set_defaults(func=func)
