"""The insights command: account creation with keys that work, and clear errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

import pytest

from insights.cli import main as cli
from tests.conftest import Stack


def keys_work(stack: Stack, created: dict[str, Any]) -> None:
    """The secret key reads the account; the write key sends events."""
    me = stack.cloud.http(
        "GET", "/v1/account", headers={"Authorization": f"Bearer {created['secret_key']}"}
    )
    assert me.status == 200 and me.json()["account_id"] == created["account_id"]
    sent = stack.cloud.http(
        "POST",
        "/v1/events",
        headers={"X-Insights-Key": created["write_key"]},
        body={"events": [{"uuid": "u"}]},
    )
    assert sent.status == 200


def test_accounts_create_json_gives_working_keys(stack: Stack, capsys) -> None:
    code = cli.main(
        [
            "accounts",
            "create",
            "--name",
            "Acme",
            "--json",
            "--session-timeout-minutes",
            "15",
            "--backfill-days",
            "30",
        ]
    )
    assert code == 0
    created = json.loads(capsys.readouterr().out)
    assert created["account_id"].startswith("acc_")
    assert created["write_key"].startswith("wk_") and created["secret_key"].startswith("sk_")
    assert created["settings"]["session_timeout_minutes"] == 15
    keys_work(stack, created)


def test_accounts_create_human_output_shows_keys_once(stack: Stack, capsys) -> None:
    assert cli.main(["accounts", "create", "--name", "Beta", "--no-unique-user-ids"]) == 0
    out = capsys.readouterr().out
    assert "write key" in out and "secret key" in out and "only time" in out


def test_accounts_create_refuses_bad_settings(stack: Stack, capsys) -> None:
    assert cli.main(["accounts", "create", "--name", "X", "--session-timeout-minutes", "0"]) == 2
    assert "session_timeout_minutes" in capsys.readouterr().err


def isolated_from_running_stacks(monkeypatch, tmp_path) -> None:
    from insights.local import state

    monkeypatch.delenv("ACCOUNTS_TABLE", raising=False)
    monkeypatch.delenv("INSIGHTS_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "user-state"))
    monkeypatch.setattr(state, "PROJECT", tmp_path / "project")
    monkeypatch.chdir(tmp_path)


def test_no_target_is_explained(monkeypatch, tmp_path) -> None:
    isolated_from_running_stacks(monkeypatch, tmp_path)
    with pytest.raises(SystemExit, match="make run"):
        cli.main(["accounts", "create", "--name", "X"])


def test_scim_tokens_create_list_revoke(stack: Stack, capsys) -> None:
    account = stack.account()
    assert cli.main(["scim", "tokens", "create", "--account", account.account_id, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["token"].startswith("scim_") and created["name"] == "SCIM"
    works = stack.cloud.http(
        "GET", "/scim/v2/Users", headers={"Authorization": f"Bearer {created['token']}"}
    )
    assert works.status == 200
    assert cli.main(["scim", "tokens", "list", "--account", account.account_id, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["tokens"]
    assert [t["id"] for t in listed] == [created["id"]] and "token" not in listed[0]
    assert (
        cli.main(["scim", "tokens", "revoke", "--account", account.account_id, created["id"]]) == 0
    )
    capsys.readouterr()
    revoked = stack.cloud.http(
        "GET", "/scim/v2/Users", headers={"Authorization": f"Bearer {created['token']}"}
    )
    assert revoked.status == 401
    assert (
        cli.main(["scim", "tokens", "revoke", "--account", account.account_id, created["id"]]) == 2
    )
    assert "no SCIM token" in capsys.readouterr().err
    assert cli.main(["scim", "tokens", "list", "--account", "acc_missing"]) == 2
    assert "no account" in capsys.readouterr().err


def test_a_stale_state_file_is_not_trusted(monkeypatch, tmp_path) -> None:
    """A crashed stack's state file (dead pid, nothing listening) means "not running"."""
    isolated_from_running_stacks(monkeypatch, tmp_path)
    stale = tmp_path / ".insights" / "local.json"
    stale.parent.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    stale.write_text(
        json.dumps(
            {
                "pid": int(dead.stdout),
                "api_url": "http://127.0.0.1:9",
                "aws_endpoint_url": "http://127.0.0.1:9",
            }
        )
    )
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)  # found by searching upwards, then judged stale
    with pytest.raises(SystemExit, match=r"not running \(stale .*local.json"):
        cli.main(["demo"])


def test_version_and_help_texts(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("insights 0.")
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in commands.choices.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        parsers = {f"{name} {n}": p for a in nested for n, p in a.choices.items()} or {name: sub}
        for label, each in parsers.items():
            for action in each._actions:
                if action.option_strings and not action.help:
                    missing.append(f"{label} {action.option_strings[0]}")
    assert missing == []
    serve_help = commands.choices["serve"].format_help()
    assert "(default: 3000)" in " ".join(serve_help.split())
    assert "--data-dir" in serve_help and "--fresh" in serve_help


def test_accounts_list_shows_every_account_without_keys(stack: Stack, capsys) -> None:
    first = stack.account("Acme")
    second = stack.account("Beta", backfill_days=30)
    assert cli.main(["accounts", "list"]) == 0
    out = capsys.readouterr().out
    assert first.account.account_id in out and second.account.account_id in out
    assert "backfill_days=30" in out and first.secret_key not in out
    assert cli.main(["accounts", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_name = {a["name"]: a for a in listed}
    assert set(by_name) == {"Acme", "Beta"}  # oldest first; here created in the same ms
    assert by_name["Beta"]["settings"]["backfill_days"] == 30


def test_accounts_create_survives_a_retry_of_a_write_that_had_landed(
    stack: Stack, capsys, monkeypatch
) -> None:
    """Issue 24.11: under load a write's answer was lost and botocore sent it again; the
    retry's condition failed (the items existed) and the CLI crashed with a
    ConditionalCheckFailed traceback: the account existed, its keys were never shown."""
    import botocore.client

    real = botocore.client.BaseClient._make_api_call
    retried: list[str] = []

    def answer_lost_once(self: Any, operation: str, params: dict[str, Any]) -> Any:
        conditional = operation == "TransactWriteItems" or (
            operation == "PutItem" and "ConditionExpression" in params
        )
        if self.meta.service_model.service_name == "dynamodb" and conditional and not retried:
            retried.append(operation)
            real(self, operation, params)  # applied; its answer never arrives
        return real(self, operation, params)  # botocore's retry of the same request

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", answer_lost_once)
    code = cli.main(["accounts", "create", "--name", "Retry", "--json"])
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", real)

    assert retried, "a conditional write was retried"
    assert code == 0
    created = json.loads(capsys.readouterr().out)
    keys_work(stack, created)
