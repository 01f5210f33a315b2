"""Finding the stack a command works on, and what every command group shares.

Account management uses AWS credentials, not an API key: whoever may deploy
the stack may manage its accounts. A command works on a deployed stack
(`--stack NAME`), an AWS endpoint (`--endpoint-url`), or the running local
stack, found through its state file.
"""

from __future__ import annotations

import argparse
import os

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


def use_stack(args: argparse.Namespace) -> str:
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


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        help="a deployed CloudFormation stack name (uses your AWS credentials); "
        "default: the running local stack",
    )
    parser.add_argument(
        "--endpoint-url", help="an AWS endpoint to use instead (e.g. a moto server)"
    )


def unreachable(exc: BaseException) -> str | None:
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
