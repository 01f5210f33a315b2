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
