"""A local stack served in a subprocess, and the browser, for the end-to-end tests.

What a newcomer runs: `insights serve` on a free port with its own data
directory and its own per-user state file, spoken to over HTTP only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from insights.local.server import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("INSIGHTS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class RunningStack:
    def __init__(self, home: Path, prelude: str = "") -> None:
        """`prelude`: Python run in the served process before the CLI starts (e.g. a
        smaller count budget, as an in-process test would monkeypatch it)."""
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
        # What an in-process stack of an earlier test left in this worker's
        # environment: with ACCOUNTS_TABLE set, the CLI would skip looking for
        # the running stack and talk to no endpoint at all.
        for key in (
            "AWS_ENDPOINT_URL",
            "ACCOUNTS_TABLE",
            "GEOIP_DATABASE_PATH",
            "INSIGHTS_GEOIP_DATABASE",
        ):
            env.pop(key, None)
        self.env = env
        serve = ["serve", "--port", str(self.port), "--sweep-interval", "1"]
        serve += ["--ttl-interval", "1", "--quiet"]
        command = [sys.executable, "-m", "insights.cli.main", *serve]
        if prelude:
            start = f"from insights.cli.main import main; raise SystemExit(main({serve!r}))"
            command = [sys.executable, "-c", f"{prelude}\n{start}"]
        self.process = subprocess.Popen(
            command,
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
