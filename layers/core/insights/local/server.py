"""`insights serve`: the whole service on localhost, no AWS account, no Docker.

moto's threaded server plays AWS; LocalCloud wires template.yaml onto it; a
small HTTP server plays API Gateway; a background loop plays the Lambda
pollers (stream records within about a second), EventBridge Scheduler (the
sweeper) and DynamoDB's TTL process. Its data lives in a data directory
(`.insights/` in the project by default; state.py, snapshot.py) and is
restored on the next start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
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
from insights.domain.core.timefmt import DAY_MS, format_time
from insights.local import pages, snapshot, state

# The default data directory and its state file (see state.py for how
# commands find a stack started with another one).
STATE_DIR = state.default_data_dir()
STATE_FILE = STATE_DIR / state.STATE_NAME

# API Gateway's payload limit (HTTP APIs: 10 MB); a larger body is refused with 413.
MAX_BODY_BYTES = 10 * 1024 * 1024


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
    data_dir: Path | None = None  # default: state.default_data_dir()
    fresh: bool = False  # start empty (the old data is deleted)
    autosave_interval: float = 60.0  # seconds between snapshots while data changes


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_geo_database(explicit: str | None, data_dir: Path = STATE_DIR) -> tuple[str, str]:
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

    path = geodb.build(data_dir / "sample-City.mmdb")
    return str(path), (
        "GeoIP: no City database found, using a small sample (a few MaxMind test "
        "networks): most addresses will have no country. See README to use GeoLite2."
    )


class _HttpServer(ThreadingHTTPServer):
    # socketserver's default backlog of 5 resets connections at ~20 concurrent
    # clients; a thread per request, not waited for at shutdown.
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser drops idle keep-alive connections with a reset, and a user
        # may close a tab mid-answer: the client left, the server is fine. Any
        # other exception still prints its traceback (socketserver's default).
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LocalStack:
    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.data_dir = (options.data_dir or state.default_data_dir()).expanduser().resolve()
        self._stop = threading.Event()
        self._save_lock = threading.Lock()
        self._saved_invocations = 0
        self.errors: list[str] = []
        self.restored: dict[str, Any] | None = None

    def start(self) -> dict[str, Any]:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        running = state.running_in(self.data_dir)
        if running is not None:  # two stacks would overwrite each other's data
            raise SystemExit(
                f"a stack is already running with {self.data_dir} (pid {running.get('pid')}, "
                f"{running.get('api_url')}); stop it first, or choose another --data-dir"
            )
        moto_port = free_port(self.options.host)
        self.moto = ThreadedMotoServer(ip_address=self.options.host, port=moto_port, verbose=False)
        self.moto.start()
        endpoint = f"http://{self.options.host}:{moto_port}"
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        if self.options.fresh:
            for name in ("snapshot", "snapshot.old", "snapshot.new"):
                shutil.rmtree(self.data_dir / name, ignore_errors=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        geo_path, geo_note = find_geo_database(self.options.geoip_database, self.data_dir)

        from insights.local.cloud import LocalCloud

        self.cloud = LocalCloud(on_error=self._report, trim_streams=True).deploy()
        os.environ["GEOIP_DATABASE_PATH"] = geo_path
        try:
            self.restored = snapshot.restore(self.cloud, self.data_dir)
        except (OSError, ValueError, KeyError) as exc:
            self.moto.stop()
            raise SystemExit(
                f"cannot restore the data in {self.data_dir / 'snapshot'} ({exc!r}); "
                "start empty with --fresh (deletes it) or choose another --data-dir"
            ) from None
        self._saved_invocations = sum(self.cloud.invocations.values())
        try:
            self.http = _HttpServer((self.options.host, self.options.port), self._handler())
        except OSError as exc:
            self.moto.stop()
            raise SystemExit(
                f"cannot listen on {self.options.host}:{self.options.port} ({exc.strerror}); "
                "is another stack running? Choose another port with --port or PORT=..."
            ) from None
        self.api_url = f"http://{self.options.host}:{self.http.server_address[1]}"
        info: dict[str, Any] = {
            "api_url": self.api_url,
            "function_urls": {
                name: f"{self.api_url}{URL_PREFIX}{name}/" for name in self.cloud.function_urls
            },
            "aws_endpoint_url": endpoint,
            "tables": self.cloud.deployment.tables,
            "buckets": self.cloud.deployment.buckets,
            "geoip": geo_note,
            "data_dir": str(self.data_dir),
            "restored": None,
            "pid": os.getpid(),
        }
        if self.restored is not None:
            info["restored"] = {
                "saved_at": self.restored.get("saved_at"),
                "items": self.restored.get("items", {}),
                "clock_offset_seconds": int(self.restored.get("clock_offset_ms") or 0) / 1000,
            }
        if self.restored is not None and self.restored.get("account"):
            info["account"] = self.restored["account"]  # the same demo account and keys
        elif self.options.demo_account:
            from insights.services.core.accounts import create_account

            info["account"] = create_account("Demo").as_dict()
        self.info = info
        state.write(self.data_dir, info)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        threading.Thread(target=self._background, daemon=True).start()
        return info

    def stop(self) -> None:
        self._stop.set()
        self.http.shutdown()
        try:
            self.save()
        finally:
            self.moto.stop()
            state.remove(self.data_dir, os.getpid())

    def save(self) -> Path:
        """Snapshot everything into the data directory (see snapshot.py)."""
        with self._save_lock:
            self._saved_invocations = sum(self.cloud.invocations.values())
            extra = {"account": self.info.get("account")} if getattr(self, "info", None) else {}
            return snapshot.save(self.cloud, self.data_dir, extra)

    def tick(self, *, sweep: bool = True, ttl: bool = True) -> dict[str, Any]:
        """Run every background duty once, now, and say what closed which session."""
        before = dict(self.cloud.closes)
        result: dict[str, Any] = {"expired": self.cloud.expire_ttl() if ttl else 0}
        self.cloud.settle()
        if sweep:
            result["sweep"] = self.cloud.run_schedules()
        self.cloud.settle()
        after = dict(self.cloud.closes)
        # The sweeper's own "closed" counts only its closes; a session whose TTL
        # deletion reached the stream first was closed by the TTL path.
        result["sessions_closed"] = {
            "sweeper": after.get("sweep", 0) - before.get("sweep", 0),
            "ttl": after.get("ttl", 0) - before.get("ttl", 0),
        }
        return result

    def _background(self) -> None:
        last_sweep = last_ttl = last_save = time.monotonic()
        export_day = clock.now_ms() // DAY_MS
        while not self._stop.wait(0.5):
            try:
                self.cloud.settle()
                now = time.monotonic()
                if now - last_sweep >= self.options.sweep_interval:
                    last_sweep = now
                    self.cloud.run_schedules()
                if clock.now_ms() // DAY_MS != export_day:
                    # The daily schedules (the export), once per day of the stack's clock.
                    export_day = clock.now_ms() // DAY_MS
                    self.cloud.run_schedules(self.cloud.daily_functions())
                if now - last_ttl >= self.options.ttl_interval:
                    last_ttl = now
                    self.cloud.expire_ttl()
                changed = sum(self.cloud.invocations.values()) != self._saved_invocations
                if changed and now - last_save >= self.options.autosave_interval:
                    last_save = now
                    self.save()  # a crash (kill -9) loses at most a minute
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
                # The path only: a query string can carry a key (?key=...), and
                # logs never hold keys.
                if not stack.options.quiet:
                    path = urlsplit(getattr(self, "path", "") or "").path
                    # log_request's args are (request line, status, size); an
                    # error's message may quote the request line: left out.
                    status = args[1] if fmt.startswith('"%s"') and len(args) > 1 else "error"
                    sys.stderr.write(f"{self.command} {path} -> {status}\n")

            def _serve(self) -> None:
                raw_length = self.headers.get("content-length") or "0"
                if not raw_length.strip().isdigit():
                    self.close_connection = True
                    self._error(400, f"Content-Length is not a byte count: {raw_length[:40]!r}")
                    return
                length = int(raw_length)
                if length > MAX_BODY_BYTES:
                    self.close_connection = True
                    self._error(413, f"Request Entity Too Large (over {MAX_BODY_BYTES} bytes)")
                    return
                try:
                    body = self.rfile.read(length) if length else None
                except TimeoutError:
                    body = None
                if length and (body is None or len(body) < length):
                    self.close_connection = True
                    self._error(400, "the body is shorter than its Content-Length")
                    return
                url = urlsplit(self.path)
                # The SDK demo and test pages (local/pages.py).
                page = pages.handle(stack, self.command, url.path, dict(parse_qsl(url.query)))
                if page is not None:
                    self._reply(*page)
                    return
                if url.path.startswith("/_local/"):
                    status, extra, payload = stack._local_endpoint(
                        self.command, url.path, dict(parse_qsl(url.query))
                    )
                    headers = {"content-type": "application/json", **extra}
                    self._reply(status, headers, json.dumps(payload))
                    return
                source_ip = self.headers.get("x-forwarded-for") or self.client_address[0]
                # Repeated header lines are one comma-separated list, as API Gateway passes
                # them (If-Match: W/"1" and If-Match: W/"2" is If-Match: W/"1", W/"2").
                headers: dict[str, str] = {}
                for name, value in self.headers.items():
                    key = name.lower()
                    headers[key] = f"{headers[key]}, {value}" if key in headers else value
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
                self._reply(response.status, response.headers, response.body, response.cookies)

            def _error(self, status: int, message: str) -> None:
                self._reply(
                    status, {"content-type": "application/json"}, json.dumps({"message": message})
                )

            def _reply(
                self,
                status: int,
                headers: dict[str, str],
                body: str,
                cookies: list[str] | None = None,
            ) -> None:
                data = body.encode()
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        if key.lower() != "content-length":
                            self.send_header(key, value)
                    for cookie in cookies or []:
                        self.send_header("set-cookie", cookie)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":  # HEAD: the headers of the answer, no body
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The client left first (a browser tab closed or navigated away
                    # mid-request): nothing to answer, and not the stack's error.
                    self.close_connection = True

            # Every method reaches the routes, as on API Gateway: one without a
            # route (HEAD, TRACE, ...) gets its 404 {"message": "Not Found"}.
            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve
            do_HEAD = do_TRACE = _serve

            def __getattr__(self, name: str) -> Any:
                # Any other method (QUERY, ...) reaches the router too, as on API
                # Gateway, instead of http.server's 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        Handler.timeout = 30  # a client that stops sending mid-body does not hold a thread

        return Handler

    def _local_endpoint(
        self, method: str, path: str, query: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        """Local-only controls: not part of the deployed API. (status, headers, body)"""
        routes: dict[str, dict[str, Any]] = {
            "/_local/health": {"GET": lambda: {"ok": True, "errors": len(self.errors)}},
            "/_local/clock": {"GET": self._clock, "POST": lambda: self._advance(query)},
            "/_local/tick": {"POST": self.tick},
            "/_local/exports": {"POST": self._exports},
            "/_local/events": {"GET": lambda: self._events(query)},
        }
        methods = routes.get(path)
        if methods is None:
            return 404, {}, {"error": "not_found", "message": f"no local endpoint {path}"}
        if method not in methods:
            allow = ", ".join(methods)
            message = f"{path} answers {allow}, not {method}"
            return 405, {"allow": allow}, {"error": "method_not_allowed", "message": message}
        answer = methods[method]()
        return (answer[0], {}, answer[1]) if isinstance(answer, tuple) else (200, {}, answer)

    @staticmethod
    def _clock() -> dict[str, Any]:
        now = clock.now_ms()
        return {
            "now_ms": now,
            "now": format_time(now),
            "offset_seconds": clock.offset_ms() / 1000,
        }

    def _advance(self, query: dict[str, str]) -> Any:
        try:
            seconds = float(query.get("advance", "0"))
        except ValueError:
            seconds = float("nan")
        if not seconds >= 0:  # also NaN
            message = "advance is a number of seconds, 0 or more (the clock only moves on)"
            return 400, {"error": "invalid_advance", "message": message}
        clock.advance(seconds)
        return self._clock()

    def _exports(self) -> dict[str, Any]:
        """The exports bucket's files, copied into the data directory for `insights sql`
        (DuckDB reads files; the command needs no AWS client)."""
        from insights.local import sql

        root = self.data_dir / "exports"
        bucket = self.cloud.deployment.buckets["ExportsBucket"]
        return {"root": str(root), "fetched": sql.mirror(self.cloud.s3, bucket, root)}

    def _events(self, query: dict[str, str]) -> Any:
        """The local bus's log after a position, for `insights events tail`."""
        after = query.get("after", "0")
        if not after.isdecimal():
            return 400, {"error": "invalid_after", "message": "after is a whole number"}
        events, position = self.cloud.events_after(int(after))
        return {"events": events, "position": position}


def _stop_like_ctrl_c(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve(options: ServeOptions) -> None:
    stack = LocalStack(options)
    info = stack.start()
    # SIGTERM (kill, systemd, an IDE's stop button) and SIGHUP (the terminal
    # closed) stop the stack as Ctrl-C does: data saved, state file removed.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_like_ctrl_c)
    # A shell starts background jobs (`make run &`, `make test &`) with SIGINT
    # ignored, and Python then leaves it ignored: Ctrl-C and `kill -INT` would
    # do nothing. This server is meant to be stopped that way wherever it runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print_banner(info)
    try:
        # Short sleeps: Linux may deliver Ctrl-C's SIGINT to any thread, and
        # Python only acts on it when the main thread next runs bytecode.
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping (saving data)...", flush=True)
    finally:
        # A second Ctrl-C while saving must not leave a half-written snapshot:
        # the snapshot is written beside the old one and swapped at the end.
        stack.stop()
        print(f"stopped; data saved in {stack.data_dir}", flush=True)


def print_banner(info: dict[str, Any]) -> None:
    api = info["api_url"]
    track_url = info.get("function_urls", {}).get("TrackFunction", f"{api}/v1/events")
    lines = [f"Insights is running at {api}", info["geoip"]]
    restored = info.get("restored")
    if info.get("data_dir"):
        if restored:
            items = sum((restored.get("items") or {}).values())
            lines.append(
                f"Data: {info['data_dir']} (restored {items} items saved {restored['saved_at']}; "
                "`insights serve --fresh` starts empty)"
            )
        else:
            lines.append(f"Data: {info['data_dir']} (new; kept across restarts)")
    account = info.get("account")
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
            '"user_properties": {"role": "admin"}}]}\'',
            "Read the user (after the session closes; `curl -X POST "
            f"'{api}/_local/clock?advance=1860'` then `curl -X POST '{api}/_local/tick'` "
            "skips the 30 minutes):",
            f"  curl -s '{api}/v1/users/user-42' "
            f"-H 'Authorization: Bearer {account['secret_key']}'",
            f"Browser SDK demo: {api}/demo",
            f"Console: {api}/ (sign in with the secret key)",
            "",
            "Ctrl-C stops it.",
        ]
    print("\n".join(lines), flush=True)
