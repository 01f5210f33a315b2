"""The insights command: account creation with keys that work, and clear errors."""

from __future__ import annotations

import json

import pytest

from insights import cli
from tests.conftest import Stack


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


def test_accounts_create_human_output_shows_keys_once(stack: Stack, capsys) -> None:
    assert cli.main(["accounts", "create", "--name", "Beta", "--no-unique-user-ids"]) == 0
    out = capsys.readouterr().out
    assert "write key" in out and "secret key" in out and "only time" in out


def test_accounts_create_refuses_bad_settings(stack: Stack, capsys) -> None:
    assert cli.main(["accounts", "create", "--name", "X", "--session-timeout-minutes", "0"]) == 2
    assert "session_timeout_minutes" in capsys.readouterr().err


def test_no_target_is_explained(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("ACCOUNTS_TABLE", raising=False)
    monkeypatch.setattr(cli, "STATE_FILE", tmp_path / "missing.json")
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
