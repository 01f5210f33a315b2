"""`insights sql` and `insights events tail` on a running local stack, as a person runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_local_stack import RunningStack, wait_for_user


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningStack]:
    stack = RunningStack(tmp_path)
    yield stack
    output = stack.stop()
    assert stack.process.returncode == 0 and "Traceback" not in output, output


def cli(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INSIGHTS_HOME": str(stack.home)}
    for key in ("AWS_ENDPOINT_URL", "ACCOUNTS_TABLE"):
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "insights.cli.main", *args],
        cwd=stack.home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sql_and_events_tail_on_the_local_stack(running: RunningStack) -> None:
    account = running.state["account"]
    secret = {"Authorization": f"Bearer {account['secret_key']}"}
    before = cli(running, "sql", "SELECT count(*) FROM insights.users")
    assert before.returncode != 0 and "nothing exported yet" in before.stderr, before
    rules = {"attribute": "total_sessions", "op": "gte", "value": 1}
    status, segment = running.request(
        "POST", "/v1/segments", {"name": "Visitors", "rules": rules, "notify": True}, secret
    )
    assert status == 201 and segment["notify"] is True
    status, _ = running.request(
        "POST",
        "/v1/events",
        {"events": [{"uuid": "cli-user", "type": "click", "user_properties": {"plan": "VIP"}}]},
        {"X-Insights-Key": account["write_key"]},
    )
    assert status == 200
    running.request("POST", "/_local/clock?advance=1860")
    running.request("POST", "/_local/tick")
    wait_for_user(running, "cli-user", account["secret_key"])

    answer = cli(
        running,
        "sql",
        "--refresh",
        "--json",
        "SELECT uuid, total_sessions, custom['plan'].value AS plan FROM insights.users",
    )
    assert answer.returncode == 0, answer.stderr
    assert [json.loads(line) for line in answer.stdout.splitlines()] == [
        {"uuid": "cli-user", "total_sessions": 1, "plan": "VIP"}
    ]
    table = cli(running, "sql", "SELECT count(*) AS users FROM users")
    assert table.returncode == 0 and table.stdout.splitlines()[2].strip() == "1", table
    bad = cli(running, "sql", "SELECT nope FROM users")
    assert bad.returncode != 0 and bad.stderr.startswith("error: "), bad
    assert "Traceback" not in bad.stderr

    deadline = time.monotonic() + 15
    events: list[Any] = []
    while time.monotonic() < deadline and not events:
        tail = cli(running, "events", "tail", "--all", "--no-follow", "--json")
        assert tail.returncode == 0, tail.stderr
        events = [json.loads(line) for line in tail.stdout.splitlines()]
        time.sleep(0.3)
    assert [
        (e["detail"]["uuid"], e["detail"]["change"], e["detail"]["segment_id"]) for e in events
    ] == [("cli-user", "entered", segment["id"])]
    printed = cli(running, "events", "tail", "--all", "--no-follow")
    assert "entered" in printed.stdout and "Visitors" in printed.stdout
