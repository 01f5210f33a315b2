"""End to end: the local stack in a subprocess, spoken to only over HTTP.

These run what a newcomer runs: `insights serve`, the curl lines it prints
(the README's quickstart), and `insights demo`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from insights.local.server import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


class RunningStack:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Its own per-user state file too: other tests' stacks start and stop meanwhile.
        env = {
            **os.environ,
            "INSIGHTS_HOME": str(home),
            "XDG_STATE_HOME": str(home / "user-state"),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        for key in ("AWS_ENDPOINT_URL", "GEOIP_DATABASE_PATH", "INSIGHTS_GEOIP_DATABASE"):
            env.pop(key, None)
        self.env = env
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "insights.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--sweep-interval",
                "1",
                "--ttl-interval",
                "1",
                "--quiet",
            ],
            cwd=home,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.banner = self._read_banner()
        self.state = json.loads((home / "local.json").read_text())  # INSIGHTS_HOME=home

    def _read_banner(self) -> str:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError("stack exited early:\n" + "".join(lines))
            lines.append(line)
            if line.startswith("Ctrl-C stops it."):
                return "".join(lines)
        raise AssertionError("stack did not start within 120 s:\n" + "".join(lines))

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read().decode() or "null")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            out, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningStack]:
    stack = RunningStack(tmp_path)
    yield stack
    output = stack.stop()
    assert stack.process.returncode == 0, output  # Ctrl-C stops it cleanly
    assert "stopping" in output and "Traceback" not in output, output
    assert not (tmp_path / "local.json").exists()


def wait_for_user(stack: RunningStack, uuid: str, secret: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = stack.request(
            "GET", f"/v1/users/{uuid}", headers={"Authorization": f"Bearer {secret}"}
        )
        if status == 200:
            return body
        time.sleep(0.3)
    raise AssertionError(f"user {uuid} never appeared: {status} {body}")


def test_quickstart_curl_lines_work_as_written(running: RunningStack) -> None:
    assert shutil.which("curl"), "curl is needed to run the README's commands"
    curls = [
        line.strip() for line in running.banner.splitlines() if line.strip().startswith("curl")
    ]
    send, read = curls
    sent = json.loads(
        subprocess.run(send, shell=True, capture_output=True, text=True, check=True).stdout
    )
    assert sent == {"accepted": 1, "late": 0, "rejected": []}
    readme = (ROOT / "README.md").read_text()
    skip_wait = re.findall(
        r"^curl -X POST '(http://127\.0\.0\.1:3000/_local/[^']+)'", readme, flags=re.M
    )
    assert len(skip_wait) == 2, "README must show the clock and tick commands"
    for url in skip_wait:
        subprocess.run(
            ["curl", "-sf", "-X", "POST", url.replace("http://127.0.0.1:3000", running.url)],
            check=True,
        )
    user = json.loads(
        subprocess.run(read, shell=True, capture_output=True, text=True, check=True).stdout
    )
    assert user["standard"]["total_sessions"] == 1
    assert user["standard"]["country"] == "United Kingdom"
    assert user["custom"]["role"]["value"] == "admin"


def readme_tour() -> list[str]:
    """The shell lines of the README's five-minute tour, in order."""
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", tour, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_readmes_tour_runs_as_written(running: RunningStack) -> None:
    lines = readme_tour()
    keys, *commands = lines
    assert keys.startswith("WK=wk_...; SK=sk_...")
    account = running.state["account"]
    env = {**os.environ, "WK": account["write_key"], "SK": account["secret_key"]}

    def run(command: str) -> str:
        command = command.replace("http://127.0.0.1:3000", running.url)
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)
        return done.stdout

    send, clock, tick, read, question = commands
    assert json.loads(run(send)) == {"accepted": 1, "late": 0, "rejected": []}
    run(clock)
    run(tick)
    user = json.loads(run(read))
    assert user["standard"]["total_sessions"] == 1
    assert user["standard"]["city"] == "London"
    assert user["custom"]["role"]["value"] == "admin"
    answer = json.loads(run(question))
    assert answer["count"] >= 1 and "user-42" in [u["uuid"] for u in answer["users"]]


def test_sessions_close_by_themselves_and_the_user_appears(running: RunningStack) -> None:
    account = running.state["account"]
    headers = {"X-Insights-Key": account["write_key"]}
    status, body = running.request(
        "POST",
        "/v1/events",
        {
            "context": {
                "ip": "89.160.20.112",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64; "
                "rv:128.0) Gecko/20100101 Firefox/128.0",
            },
            "events": [{"uuid": "e2e", "user_properties": {"status": "VIP"}}],
        },
        headers,
    )
    assert (status, body["accepted"]) == (200, 1)
    status, _ = running.request("POST", "/_local/clock?advance=1860")
    assert status == 200
    user = wait_for_user(running, "e2e", account["secret_key"])  # the 1-second sweeper
    # Sweden in any City database (the bundled sample says Linköping, the
    # 2018 GeoLite2 of maxminddb-geolite2 says Stockholm).
    assert user["standard"]["country"] == "Sweden" and user["standard"]["city"]
    assert user["standard"]["browser_name"] == "Firefox"
    assert user["custom"]["status"]["value"] == "VIP"


def test_demo_traffic_gives_plausible_users(running: RunningStack) -> None:
    env = running.env
    result = subprocess.run(
        [sys.executable, "-m", "insights.cli", "demo", "--users", "40", "--show", "40", "--json"],
        cwd=running.home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["users"] == 40 and summary["rejected"] == 0
    users = summary["shown"]
    assert len(users) >= 30  # a few have only empty sessions and never appear
    standards = [u["standard"] for u in users]
    assert all(s["country"] for s in standards)  # every demo address is public and known
    browsers = {s["browser_name"] for s in standards}
    assert {"Chrome", "Firefox"} <= browsers and len(browsers) >= 5
    assert sum(s["total_sessions"] > 1 for s in standards) >= len(users) // 3
    assert any(u["custom"].get("status", {}).get("value") == "VIP" for u in users)
    for s in standards:
        assert s["first_seen"] <= s["last_seen"]
        if s["total_sessions"] > 1:
            assert s["avg_time_between_sessions"] >= 30 * 60
