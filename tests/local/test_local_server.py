"""`insights serve` as a user runs it: a real process, real HTTP, real signals.

The data directory and the per-user state file are temporary, so these tests
never see (or disturb) a stack someone else is running on the machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INSIGHTS = [sys.executable, "-m", "insights.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[str]
    data_dir: Path
    env: dict[str, str]
    info: dict[str, Any]

    @property
    def api(self) -> str:
        return str(self.info["api_url"])

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        account = self.info["account"]
        headers = {"content-type": "application/json"}
        if key == "write":
            headers["x-insights-key"] = account["write_key"]
        elif key == "secret":
            headers["authorization"] = f"Bearer {account['secret_key']}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def stop(self, signum: int = signal.SIGTERM) -> str:
        self.process.send_signal(signum)
        out, _ = self.process.communicate(timeout=60)
        return out


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_STATE_HOME"] = str(tmp_path / "user-state")
    env.pop("INSIGHTS_HOME", None)
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("ACCOUNTS_TABLE", None)
    env["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    return env


def ignore_sigint() -> None:
    # What a shell does to a background job (`make run &`) when job control is
    # off: SIGINT ignored, and an ignored signal stays ignored across exec.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start(tmp_path: Path, *extra: str, background: bool = False) -> Server:
    env = cli_env(tmp_path)
    data_dir = tmp_path / "data"
    port = str(free_port())
    process = subprocess.Popen(
        [*INSIGHTS, "serve", "--port", port, "--quiet", "--data-dir", str(data_dir), *extra],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ignore_sigint if background else None,
    )
    state_file = data_dir / "local.json"
    for _ in range(600):
        if state_file.exists():
            info = json.loads(state_file.read_text())
            if info.get("pid") == process.pid:
                return Server(process, data_dir, env, info)
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.communicate()[0]}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError("serve did not start")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = start(tmp_path)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.communicate()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One stack for the tests that only make requests."""
    running = start(tmp_path_factory.mktemp("shared"))
    yield running
    running.stop()


def run_cli(server: Server, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INSIGHTS, *args], env=server.env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def session(server: Server, uuid: str, **props: Any) -> None:
    status, _ = server.call(
        "POST", "/v1/events", {"events": [{"uuid": uuid, "user_properties": props}]}, key="write"
    )
    assert status == 200
    assert server.call("POST", "/_local/clock?advance=1860")[0] == 200
    assert server.call("POST", "/_local/tick")[0] == 200


def test_data_survives_a_sigterm_and_a_restart_and_fresh_starts_empty(
    server: Server, tmp_path: Path
) -> None:
    session(server, "u1", plan="VIP")
    status, user = server.call("GET", "/v1/users/u1", key="secret")
    assert status == 200 and user["custom"]["plan"]["value"] == "VIP"
    status, clock_before = server.call("POST", "/_local/clock?advance=0")
    out = server.stop(signal.SIGTERM)
    assert "data saved" in out and server.process.returncode == 0
    assert not (server.data_dir / "local.json").exists()  # no stale state left behind
    assert (server.data_dir / "snapshot" / "dynamodb" / "UsersTable.jsonl").exists()

    again = start(tmp_path)
    try:
        # A second stack on the same data directory would overwrite it: refused.
        second = subprocess.run(
            [*INSIGHTS, "serve", "--port", str(free_port()), "--data-dir", str(again.data_dir)],
            env=again.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0 and "already running" in second.stderr
        assert again.info["account"] == server.info["account"]  # same account, same keys
        assert again.info["restored"]["items"]["UsersTable"] >= 1
        status, user2 = again.call("GET", "/v1/users/u1", key="secret")
        assert status == 200 and user2 == user
        _, clock_after = again.call("POST", "/_local/clock?advance=0")
        assert clock_after["now_ms"] >= clock_before["now_ms"]  # the offset came back
        # Streams work on restored data: a second session closes and counts.
        session(again, "u1")
        assert again.call("GET", "/v1/users/u1", key="secret")[1]["standard"]["total_sessions"] == 2
        assert "data saved" in again.stop(signal.SIGHUP)  # a closed terminal, same as Ctrl-C
    finally:
        if again.process.poll() is None:
            again.process.kill()

    fresh = start(tmp_path, "--fresh")
    try:
        assert fresh.info["restored"] is None
        assert fresh.info["account"]["account_id"] != server.info["account"]["account_id"]
        assert fresh.call("GET", "/v1/users/u1", key="secret")[0] == 404
    finally:
        fresh.stop()


def test_ctrl_c_stops_a_stack_started_as_a_background_job(tmp_path: Path) -> None:
    server = start(tmp_path, background=True)
    try:
        session(server, "u1", plan="VIP")
        try:
            out = server.stop(signal.SIGINT)  # Ctrl-C, or `kill -INT`
        except subprocess.TimeoutExpired:
            raise AssertionError("SIGINT did not stop the stack within 60 s") from None
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()
    assert server.process.returncode == 0, out
    assert "stopping" in out and "data saved" in out, out
    assert not (server.data_dir / "local.json").exists()


def test_commands_find_the_stack_from_any_directory_and_say_when_it_is_gone(
    server: Server, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "some" / "other" / "dir"
    elsewhere.mkdir(parents=True)
    listed = run_cli(server, "accounts", "list", "--json", cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    ids = [a["account_id"] for a in json.loads(listed.stdout)]
    assert ids == [server.info["account"]["account_id"]]

    # A crash (kill -9) leaves the state file behind: commands must not trust it.
    server.process.kill()
    server.process.communicate()
    assert (server.data_dir / "local.json").exists()
    for args in (
        ["accounts", "create", "--name", "X"],
        ["accounts", "list"],
        ["demo"],
        ["import", str(Path(__file__))],
    ):
        result = run_cli(server, *args, cwd=elsewhere)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr  # one line, no traceback
        assert "not running" in lines[0] or "no target" in lines[0]
        assert "make run" in lines[0]


def test_http_edges_answer_as_api_gateway_does(shared: Server) -> None:
    host, port = shared.api.removeprefix("http://").split(":")
    # HEAD and TRACE reach the routes: no route, so 404 (HEAD without a body).
    for method in ("HEAD", "TRACE"):
        request = urllib.request.Request(shared.api + "/v1/account", method=method)
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(request, timeout=30)
        assert failed.value.code == 404
    # A Content-Length that is not a number: 400, not a dropped connection.
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        chunks = []
        while chunk := sock.recv(4096):  # the server answers, then closes
            chunks.append(chunk)
        answer = b"".join(chunks).decode()
    assert answer.startswith("HTTP/1.1 400") and "Content-Length" in answer
    # A bad clock advance is a 400 with a reason, not a crash.
    status, body = shared.call("POST", "/_local/clock?advance=soon")
    assert status == 400 and body["error"] == "invalid_advance"


def reset(sock: socket.socket) -> None:
    """Close as a browser drops an idle keep-alive connection: a TCP reset, no FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_that_resets_its_connection_is_no_server_error(server: Server) -> None:
    host, port = server.api.removeprefix("http://").split(":")
    # Idle after one answer (the server waits for the next request line), and
    # half-way through a request line: both resets reach the server's read.
    idle = socket.create_connection((host, int(port)), timeout=30)
    idle.sendall(b"GET /_local/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    reset(idle)
    partial = socket.create_connection((host, int(port)), timeout=30)
    partial.sendall(b"GET /_local/hea")
    reset(partial)
    time.sleep(0.5)  # the server's threads read the resets
    assert server.call("GET", "/_local/health")[0] == 200
    output = server.stop()
    assert "Traceback" not in output and "ConnectionResetError" not in output, output


def test_the_clock_is_read_with_get_and_moved_with_post(shared: Server) -> None:
    status, read = shared.call("GET", "/_local/clock")
    assert status == 200, read
    status, moved = shared.call("POST", "/_local/clock?advance=60")
    assert status == 200
    assert moved["now_ms"] - read["now_ms"] >= 60_000
    assert moved["offset_seconds"] - read["offset_seconds"] == 60
    status, again = shared.call("GET", "/_local/clock")
    assert status == 200 and again["now_ms"] >= moved["now_ms"]
    assert again["offset_seconds"] == moved["offset_seconds"]  # reading moves nothing
    assert again["now"].endswith("Z") and again["now"][:4].isdigit()  # ISO-8601, UTC
    status, refused = shared.call("PUT", "/_local/clock")
    assert status == 405 and refused["error"] == "method_not_allowed"


def test_many_concurrent_clients_are_all_answered(shared: Server) -> None:
    def one(n: int) -> int:
        return shared.call("GET", "/_local/health")[0]

    with ThreadPoolExecutor(max_workers=40) as pool:
        assert list(pool.map(one, range(200))) == [200] * 200


def test_tick_says_which_path_closed_the_session(tmp_path: Path) -> None:
    # Background duties off: a background sweep landing between the clock's
    # advance and the tick would close the session first (seen on a busy CI).
    own = start(tmp_path, "--sweep-interval", "86400", "--ttl-interval", "86400")
    try:
        status, _ = own.call("POST", "/v1/events", {"events": [{"uuid": "t"}]}, key="write")
        assert status == 200
        own.call("POST", "/_local/clock?advance=1860")
        status, tick = own.call("POST", "/_local/tick")
    finally:
        own.stop()
    assert status == 200
    # TTL expiry runs first and its stream consumer closes the session, so
    # the sweeper finds nothing left: the answer says so instead of "closed": 0.
    assert tick["sessions_closed"] == {"sweeper": 0, "ttl": 1}
    assert tick["sweep"]["Sweep"]["closed"] == 0


def test_make_demo_says_what_it_changed_and_sends_the_readmes_plan(shared: Server) -> None:
    def demo() -> dict[str, Any]:
        result = run_cli(shared, "demo", "--users", "20", "--show", "20", "--json", cwd=Path("/"))
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    def profiles() -> list[dict[str, Any]]:
        status, body = shared.call("GET", "/v1/users?prefix=demo-&limit=100", key="secret")
        assert status == 200, body
        return list(body["users"])

    _, clock_before = shared.call("GET", "/_local/clock")
    first = demo()
    assert first["settings_changed"] == {"backfill_days": {"from": 7, "to": 30}}
    assert first["rejected"] == 0
    assert any("plan" in user["custom"] for user in first["shown"])
    # What the summary says will be recorded is what the API shows once the
    # sessions closed: empty sessions, and users who had only those, record nothing.
    recorded = first["recorded"]
    users = profiles()
    assert recorded["users"] == len(users) <= first["users"]
    assert recorded["sessions"] == sum(u["standard"]["total_sessions"] for u in users)
    assert recorded["empty_sessions"] > 0
    assert recorded["sessions"] + recorded["empty_sessions"] == first["sessions_sent"]
    # ...and it says it moved the stack's clock, which stays moved.
    _, clock_after = shared.call("GET", "/_local/clock")
    assert first["clock_advanced_seconds"] == 31 * 60
    assert clock_after["offset_seconds"] - clock_before["offset_seconds"] == 31 * 60
    # Run again for the same users (as printed for a person): their older
    # events are late and change no session, and the summary counts only what
    # is recorded.
    before = sum(u["standard"]["total_sessions"] for u in profiles())
    printed = run_cli(shared, "demo", "--users", "20", "--show", "0", cwd=Path("/"))
    assert printed.returncode == 0, printed.stderr
    match = re.search(r"Recorded: (\d+) sessions of (\d+) users", printed.stdout)
    assert match, printed.stdout
    assert "events were late" in printed.stdout
    assert "Moved the local stack's clock 31 minutes on" in printed.stdout
    after = sum(u["standard"]["total_sessions"] for u in profiles())
    assert after - before == int(match[1])
    again = demo()
    assert again["settings_changed"] == {}  # nothing to change the second time
    assert again["late"] > 0
    assert (
        sum(u["standard"]["total_sessions"] for u in profiles()) - after
        == (again["recorded"]["sessions"])
    )
    # The README's segment example is valid against the demo data.
    rules = {"attribute": "custom.plan", "op": "changed_within", "value": "7d", "to": "VIP"}
    status, _ = shared.call("POST", "/v1/segments", {"name": "vip", "rules": rules}, key="secret")
    assert status == 201


def test_scim_over_http_says_http_and_reads_repeated_if_match_lines(shared: Server) -> None:
    """Issue 25.7 and 24.11: the Location of a User on `insights serve` (plain http), and an
    If-Match list sent as two header lines (one list, as API Gateway passes it)."""
    import http.client

    status, token = shared.call("POST", "/v1/idp/scim/tokens", {"name": "t"}, key="secret")
    assert status == 201, token
    host = shared.api.removeprefix("http://")

    def scim(method: str, path: str, body: Any, *if_match: str) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(host, timeout=60)
        connection.putrequest(method, "/scim/v2" + path)
        connection.putheader("Authorization", f"Bearer {token['token']}")
        connection.putheader("Content-Type", "application/scim+json")
        for tag in if_match:
            connection.putheader("If-Match", tag)
        data = json.dumps(body).encode()
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        return connection.getresponse()

    created = scim("POST", "/Users", {"userName": "served@example.com"})
    assert created.status == 201
    location = created.getheader("Location")
    assert location.startswith(f"http://{host}/scim/v2/Users/")
    user = json.loads(created.read())
    assert user["meta"]["location"] == location
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    answer = scim("PATCH", f"/Users/{user['id']}", patch, 'W/"7"', user["meta"]["version"])
    assert answer.status == 200, answer.read()
