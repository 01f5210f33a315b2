"""`insights integrations salesforce set|get|test|sync|delete`: the integrations API from a shell.

HTTP only, like `insights import`, so it works against the local stack and a
deployed one. `set` sends a connection file (the PUT body, as JSON); secrets
need not live in that file: `--consumer-secret-env NAME` reads the consumer
secret from an environment variable and `--private-key-file PEM` the JWT key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from insights.cli import imports as cli_imports

PATH = "/v1/integrations/salesforce"


def _http(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    return cli_imports.api_call(method, url, key, body)


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None


def connection_body(args: argparse.Namespace) -> dict[str, Any]:
    body = _read_json(args.config)
    if not isinstance(body, dict):
        raise SystemExit(f"{args.config} must hold a JSON object (the connection)")
    credentials = body.get("credentials")
    if args.consumer_secret_env or args.private_key_file:
        if not isinstance(credentials, dict):
            raise SystemExit("the connection file needs a credentials object with its flow")
        credentials = dict(credentials)
        if args.consumer_secret_env:
            secret = os.environ.get(args.consumer_secret_env)
            if not secret:
                raise SystemExit(f"the environment variable {args.consumer_secret_env} is empty")
            credentials["consumer_secret"] = secret
        if args.private_key_file:
            try:
                credentials["private_key"] = Path(args.private_key_file).read_text()
            except OSError as exc:
                raise SystemExit(f"cannot read {args.private_key_file}: {exc}") from None
        body["credentials"] = credentials
    return body


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _refused(what: str, status: int, answer: Any) -> int:
    message = answer.get("message") if isinstance(answer, dict) else answer
    print(f"{what} refused ({status}): {message}", file=sys.stderr)
    if isinstance(answer, dict) and answer.get("problems"):
        for problem in answer["problems"]:
            print(f"  - {problem['code']}: {problem['message']}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace, state_file: Path) -> int:
    api, key = cli_imports.target(args, state_file)
    url = api + PATH
    action = args.action
    if action == "set":
        status, answer = _http("PUT", url, key, connection_body(args))
        if status not in (200, 201):
            return _refused("the connection was", status, answer)
        _print(answer)
        return 0
    if action == "get":
        status, answer = _http("GET", url, key)
        if status != 200:
            return _refused("reading the connection was", status, answer)
        _print(answer)
        return 0
    if action == "test":
        body = connection_body(args) if args.config else None
        status, answer = _http("POST", url + "/test", key, body)
        if status == 200:
            _print(answer)
            return 0
        return _refused("the test was", status, answer)
    if action == "sync":
        status, answer = _http("POST", url + "/sync", key, {"full": True} if args.full else None)
        if status != 202:
            return _refused("the sync was", status, answer)
        if args.no_wait:
            print(f"sync started: import {answer['id']}")
            return 0
        job = cli_imports.follow(api, key, answer["id"], sys.stderr, args.timeout)
        print(cli_imports.summary(job))
        return 0 if job["status"] == "succeeded" else 1
    status, answer = _http("DELETE", url, key)
    if status != 204:
        return _refused("disconnecting was", status, answer)
    print("disconnected: the credentials were deleted; imported values stay")
    return 0


def add_parser(commands: Any, state_file: Path | Callable[[], Path]) -> None:
    integrations = commands.add_parser(
        "integrations", help="incoming integrations (Salesforce)"
    ).add_subparsers(dest="integration", required=True)
    salesforce = integrations.add_parser(
        "salesforce", help="connect Salesforce, test it, sync it now (docs/salesforce.md)"
    ).add_subparsers(dest="action", required=True)
    helps = {
        "set": "connect, or replace the connection, from a JSON file",
        "get": "show the connection and its status (never the credentials)",
        "test": "sign in and check the mapping; nothing is imported",
        "sync": "start a sync now and follow it",
        "delete": "disconnect and delete the credentials; imported values stay",
    }
    for action, text in helps.items():
        sub = salesforce.add_parser(action, help=text)
        sub.add_argument("--api", help="API base URL (default: the running local stack)")
        sub.add_argument("--secret-key", help="the account's secret key (default: local demo)")
        if action in ("set", "test"):
            sub.add_argument(
                "--config",
                required=action == "set",
                help="connection JSON: login_host, credentials, object, uuid_field, fields, ...",
            )
            sub.add_argument(
                "--consumer-secret-env", help="environment variable holding the consumer secret"
            )
            sub.add_argument("--private-key-file", help="PEM private key for the jwt_bearer flow")
        if action == "sync":
            sub.add_argument("--full", action="store_true", help="read every record again")
            sub.add_argument("--no-wait", action="store_true", help="start it and return")
            sub.add_argument("--timeout", type=float, default=3600, help="seconds to wait")
        sub.set_defaults(
            func=lambda args: run(args, state_file() if callable(state_file) else state_file)
        )
