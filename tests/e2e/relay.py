"""A plain HTTP hop on loopback for the client tests: it serves a few files and
forwards every other request, verbatim, to the local stack.

Why not Playwright's request interception: once a page has any route,
Playwright answers every CORS preflight itself with "allow everything", so a
test that routes requests can never see the stack's own CORS answer. A hop
outside the browser keeps the preflight between Chromium and the stack, and
still lets a test record what a client sent (method, path, headers) and make
chosen attempts fail as a flaky network would.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Connection-level headers are the hop's own, never forwarded (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}
)
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@dataclass
class Seen:
    """One request that reached the hop, and the status the client got."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: str | None = None
    status: int = 0
    failed_here: bool = False


@dataclass
class Relay:
    """`files` maps a path to a file to serve; anything else goes to `upstream`.

    `fail(seen)` returning True answers that request with a 503 (with
    `Access-Control-Allow-Origin: *`, so a browser sees the 503 rather than a
    CORS error) instead of forwarding it.
    """

    upstream: str | None = None
    files: dict[str, Path | str] = field(default_factory=dict)
    fail: Callable[[Seen], bool] | None = None
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests(self, method: str | None = None) -> list[Seen]:
        return [s for s in list(self.seen) if method is None or s.method == method]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                pass  # the test reads `seen`

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                text = body.decode("utf-8", "replace") if body else None
                seen = Seen(self.command, self.path, headers, text)
                relay.seen.append(seen)
                path = urlsplit(self.path).path
                if path in relay.files:
                    content = relay.files[path]
                    data = content.read_bytes() if isinstance(content, Path) else content.encode()
                    kind = TYPES.get(Path(path).suffix, "text/html; charset=utf-8")
                    self._send(200, [("content-type", kind), ("cache-control", "no-store")], data)
                elif relay.fail is not None and relay.fail(seen):
                    seen.failed_here = True
                    cors = ("access-control-allow-origin", "*")
                    self._send(503, [("content-type", "text/plain"), cors], b"failing on purpose")
                elif relay.upstream is None:
                    self._send(404, [("content-type", "text/plain")], b"not here")
                else:
                    self._forward(body, headers)
                seen.status = self._status

            def _forward(self, body: bytes | None, headers: dict[str, str]) -> None:
                assert relay.upstream is not None
                target = urlsplit(relay.upstream)
                sent = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
                connection = http.client.HTTPConnection(target.netloc, timeout=60)
                try:
                    connection.request(self.command, self.path, body=body, headers=sent)
                    response = connection.getresponse()
                    data = response.read()
                    kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                    self._send(response.status, kept, data)
                finally:
                    connection.close()

            def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self._status = status
                self.send_response(status)
                for key, value in headers:
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _any

        return Handler
