"""`insights serve`: the whole service on localhost, no AWS account, no Docker.

moto's threaded server plays AWS; LocalCloud wires template.yaml onto it; a
small HTTP server plays API Gateway; a background loop plays the Lambda
pollers (stream records within about a second), EventBridge Scheduler (the
sweeper) and DynamoDB's TTL process.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from insights import clock
from insights.local import pages

STATE_DIR = Path(os.environ.get("INSIGHTS_HOME", ".insights"))
STATE_FILE = STATE_DIR / "local.json"


# Function URLs are served under this prefix: /_url/<function logical id>/...
URL_PREFIX = "/_url/"


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    sweep_interval: float = 60.0
    ttl_interval: float = 60.0
    geoip_database: str | None = None
    demo_account: bool = True
    quiet: bool = False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_geo_database(explicit: str | None) -> tuple[str, str]:
    """(path, note): a real City database when there is one, else a bundled sample."""
    for candidate in (explicit, os.environ.get("INSIGHTS_GEOIP_DATABASE")):
        if candidate:
            if not Path(candidate).exists():
                raise SystemExit(f"GeoIP database not found: {candidate}")
            return candidate, f"GeoIP: {candidate}"
    try:
        # maxminddb-geolite2 ships a dated (2018) GeoLite2-City database.
        import _maxminddb_geolite2

        path = Path(_maxminddb_geolite2.geolite2_database())
        if path.exists():
            return str(path), (
                f"GeoIP: {path} (GeoLite2-City from 2018; for current data see README)"
            )
    except ImportError:
        pass
    from insights.local import geodb

    path = geodb.build(STATE_DIR / "sample-City.mmdb")
    return str(path), (
        "GeoIP: no City database found, using a small sample (a few MaxMind test "
        "networks): most addresses will have no country. See README to use GeoLite2."
    )


class LocalStack:
    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self._stop = threading.Event()
        self.errors: list[str] = []

    def start(self) -> dict[str, Any]:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_port = free_port(self.options.host)
        self.moto = ThreadedMotoServer(ip_address=self.options.host, port=moto_port, verbose=False)
        self.moto.start()
        endpoint = f"http://{self.options.host}:{moto_port}"
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        geo_path, geo_note = find_geo_database(self.options.geoip_database)

        from insights.local.cloud import LocalCloud

        self.cloud = LocalCloud(on_error=self._report).deploy()
        os.environ["GEOIP_DATABASE_PATH"] = geo_path
        try:
            self.http = ThreadingHTTPServer((self.options.host, self.options.port), self._handler())
        except OSError as exc:
            self.moto.stop()
            raise SystemExit(
                f"cannot listen on {self.options.host}:{self.options.port} ({exc.strerror}); "
                "is another stack running? Choose another port with --port or PORT=..."
            ) from None
        self.api_url = f"http://{self.options.host}:{self.http.server_address[1]}"
        state: dict[str, Any] = {
            "api_url": self.api_url,
            "function_urls": {
                name: f"{self.api_url}{URL_PREFIX}{name}/" for name in self.cloud.function_urls
            },
            "aws_endpoint_url": endpoint,
            "tables": self.cloud.deployment.tables,
            "geoip": geo_note,
            "pid": os.getpid(),
        }
        if self.options.demo_account:
            from insights.services.accounts import create_account

            state["account"] = create_account("Demo").as_dict()
        self.state = state
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps(state, indent=2))
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        threading.Thread(target=self._background, daemon=True).start()
        return state

    def stop(self) -> None:
        self._stop.set()
        self.http.shutdown()
        self.moto.stop()
        if STATE_FILE.exists() and json.loads(STATE_FILE.read_text()).get("pid") == os.getpid():
            STATE_FILE.unlink()

    def tick(self, *, sweep: bool = True, ttl: bool = True) -> dict[str, Any]:
        """Run every background duty once, now."""
        result: dict[str, Any] = {"expired": self.cloud.expire_ttl() if ttl else 0}
        self.cloud.settle()
        if sweep:
            result["sweep"] = self.cloud.run_schedules()
        self.cloud.settle()
        return result

    def _background(self) -> None:
        last_sweep = last_ttl = time.monotonic()
        while not self._stop.wait(0.5):
            try:
                self.cloud.settle()
                now = time.monotonic()
                if now - last_sweep >= self.options.sweep_interval:
                    last_sweep = now
                    self.cloud.run_schedules()
                if now - last_ttl >= self.options.ttl_interval:
                    last_ttl = now
                    self.cloud.expire_ttl()
            except Exception as exc:  # the stack keeps serving whatever happens
                self._report(f"background loop: {exc!r}")

    def _report(self, text: str) -> None:
        self.errors.append(text)
        print(text, file=sys.stderr, flush=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stack = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                if not stack.options.quiet:
                    sys.stderr.write(
                        f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n"
                    )

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                url = urlsplit(self.path)
                # The SDK demo and test pages (local/pages.py).
                page = pages.handle(stack, self.command, url.path, dict(parse_qsl(url.query)))
                if page is not None:
                    self._reply(*page)
                    return
                if url.path.startswith("/_local/"):
                    status, payload = stack._local_endpoint(
                        self.command, url.path, dict(parse_qsl(url.query))
                    )
                    self._reply(status, {"content-type": "application/json"}, json.dumps(payload))
                    return
                source_ip = self.headers.get("x-forwarded-for") or self.client_address[0]
                headers = dict(self.headers.items())
                function, _, rest = url.path.removeprefix(URL_PREFIX).partition("/")
                if url.path.startswith(URL_PREFIX) and function in stack.cloud.function_urls:
                    # A function URL is a host of its own on AWS; here it is a path prefix.
                    target = f"/{rest}" + (f"?{url.query}" if url.query else "")
                    response = stack.cloud.function_url(
                        function,
                        self.command,
                        target,
                        headers=headers,
                        body=body,
                        source_ip=source_ip,
                    )
                else:
                    response = stack.cloud.http(
                        self.command, self.path, headers=headers, body=body, source_ip=source_ip
                    )
                self._reply(response.status, response.headers, response.body)

            def _reply(self, status: int, headers: dict[str, str], body: str) -> None:
                data = body.encode()
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

        return Handler

    def _local_endpoint(self, method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        """Local-only controls: not part of the deployed API."""
        if path == "/_local/health":
            return 200, {"ok": True, "errors": len(self.errors)}
        if path == "/_local/clock" and method == "POST":
            clock.advance(float(query.get("advance", "0")))
            return 200, {"now_ms": clock.now_ms()}
        if path == "/_local/tick" and method == "POST":
            return 200, self.tick()
        return 404, {"error": "not_found", "message": f"no local endpoint {method} {path}"}


def serve(options: ServeOptions) -> None:
    stack = LocalStack(options)
    state = stack.start()
    print_banner(state)
    try:
        # Short sleeps: Linux may deliver Ctrl-C's SIGINT to any thread, and
        # Python only acts on it when the main thread next runs bytecode.
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        stack.stop()


def print_banner(state: dict[str, Any]) -> None:
    api = state["api_url"]
    track_url = state.get("function_urls", {}).get("TrackFunction", f"{api}/v1/events")
    lines = [f"Insights is running at {api}", state["geoip"]]
    account = state.get("account")
    if account:
        lines += [
            "",
            f"Demo account {account['account_id']}",
            f"  write key  {account['write_key']}",
            f"  secret key {account['secret_key']}",
            "",
            f"Send an event (to the tracking function URL; POST {api}/v1/events works too):",
            f"  curl -s -X POST '{track_url}' -H 'X-Insights-Key: {account['write_key']}' "
            "-H 'content-type: application/json' "
            '-d \'{"context": {"ip": "81.2.69.160"}, "events": [{"uuid": "user-42", '
            '"properties": {"role": "admin"}}]}\'',
            "Read the user (after the session closes; `curl -X POST "
            f"{api}/_local/clock?advance=1860` then `curl -X POST {api}/_local/tick` "
            "skips the 30 minutes):",
            f"  curl -s '{api}/v1/users/user-42' "
            f"-H 'Authorization: Bearer {account['secret_key']}'",
            f"Browser SDK demo: {api}/demo",
            "",
            "Ctrl-C stops it.",
        ]
    print("\n".join(lines), flush=True)
