"""`insights import` against a running local stack, over real HTTP (e2e)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from insights.local.server import free_port

CLI = [sys.executable, "-m", "insights.cli"]


@pytest.mark.e2e
def test_insights_import_uploads_follows_and_summarises(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "INSIGHTS_HOME": str(home), "XDG_STATE_HOME": str(home / "user-state")}
    for name in ("AWS_ENDPOINT_URL", "IMPORT_BATCH_ROWS", "IMPORT_RESERVE_MS"):
        env.pop(name, None)
    port = free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--quiet"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        state_file = home / "local.json"
        deadline = time.monotonic() + 60
        while not state_file.exists():
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the local stack did not start"
            time.sleep(0.2)
        data = tmp_path / "people.csv"
        data.write_bytes(b"uuid,Job Title,age\r\nu1,CTO,41\r\nu2,Dev,forty\r\n")
        mapping = tmp_path / "mapping.json"
        mapping.write_text(
            json.dumps({"rename": {"Job Title": "role"}, "types": {"age": "number"}})
        )
        done = subprocess.run(
            [*CLI, "import", str(data), "--mapping", str(mapping), "--timeout", "60"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr  # partially succeeded
        lines = done.stdout.splitlines()
        assert lines[0].endswith("(people.csv): partially_succeeded")
        assert lines[1] == "  rows read 2, imported 1, rejected 1"
        assert "upload  [" in done.stderr and "100%" in done.stderr
        link = next(line for line in lines if "error report:" in line).split(": ", 1)[1]
        with urllib.request.urlopen(link, timeout=10) as response:
            assert response.read().decode().splitlines() == [
                "row,column,reason",
                "3,age,not a number",
            ]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
