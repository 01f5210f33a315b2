"""The `insights` command: run the local stack, manage accounts, import files, re-index."""

from __future__ import annotations

import argparse
import sys

from insights.cli import (
    accounts,
    data,
    identity,
    idp,
    imports,
    integrations,
    local,
    segments,
    team,
)
from insights.cli.stack import DEFAULTS, unreachable
from insights.local import state as local_state


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"insights {version('insights')}"
    except PackageNotFoundError:
        return "insights (not installed as a package)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="insights", description=__doc__, formatter_class=DEFAULTS)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    local.add_parsers(commands)
    accounts.add_parser(commands)
    segments.add_parser(commands)
    imports.add_parser(commands, local_state.state_file_of_running)
    integrations.add_parser(commands, local_state.state_file_of_running)
    idp.add_parser(commands)
    identity.add_parser(commands)
    team.add_parser(commands)
    data.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        message = unreachable(exc)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
