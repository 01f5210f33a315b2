"""`insights import FILE`: upload a file through the imports API and follow the job.

Talks HTTP only (the API with the secret key, then S3's presigned form), so
it works the same against the local stack and a deployed one. The progress
bar is hand-rolled: twenty lines instead of a new dependency for the
package that also ships in the Lambda layer, and it degrades to a few plain
lines when stderr is not a terminal.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

FINAL = ("succeeded", "partially_succeeded", "failed")
CHUNK = 256 * 1024


class Progress:
    def __init__(self, label: str, total: int | None, stream: IO[str] | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_step = -1

    def update(self, done: int, total: int | None = None, note: str = "") -> None:
        self.done = done
        if total is not None:
            self.total = total
        if self.total:
            fraction = min(1.0, self.done / self.total)
            bar = "#" * int(fraction * 30)
            text = f"{self.label} [{bar:<30}] {fraction:4.0%} {note}"
            step = int(fraction * 4)
        else:
            text, step = f"{self.label} {note}", 0
        if self.tty:
            self.stream.write("\r" + text[:100].ljust(100))
            self.stream.flush()
        elif step != self._last_step:
            self.stream.write(text.rstrip() + "\n")
        self._last_step = step

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def api_call(
    method: str, url: str, secret_key: str, body: Any = None, timeout: float = 30
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {secret_key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"error": "http_error", "message": raw.decode(errors="replace")}


def multipart(
    fields: dict[str, str], path: Path, progress: Progress
) -> tuple[str, int, Iterator[bytes]]:
    """(content type, length, body chunks): the file is streamed, never read whole."""
    boundary = "insights" + secrets.token_hex(12)
    head = b""
    for name, value in fields.items():
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: {kind}\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size

    def chunks() -> Iterator[bytes]:
        yield head
        sent = 0
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                sent += len(chunk)
                progress.update(sent, size, f"{_size(sent)} / {_size(size)}")
                yield chunk
        yield tail

    return f"multipart/form-data; boundary={boundary}", len(head) + size + len(tail), chunks()


def upload(form: dict[str, Any], path: Path, out: IO[str]) -> None:
    progress = Progress("upload ", path.stat().st_size, out)
    content_type, length, body = multipart(form["fields"], path, progress)
    request = urllib.request.Request(form["url"], data=body, method="POST")
    request.add_header("Content-Type", content_type)
    request.add_header("Content-Length", str(length))
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        progress.close()
        detail = exc.read().decode(errors="replace")
        raise SystemExit(f"upload refused ({exc.code}): {detail}") from None
    progress.close()


def follow(api: str, key: str, import_id: str, out: IO[str], timeout: float) -> dict[str, Any]:
    progress = Progress("process", None, out)
    deadline = time.monotonic() + timeout
    while True:
        status, job = api_call("GET", f"{api}/v1/imports/{import_id}", key)
        if status != 200:
            raise SystemExit(f"could not read the import ({status}): {job}")
        rows = job["rows"]
        if job["phase"] == "validate" or job["status"] == "pending":
            progress.update(0, None, f"{job['status']}: checking the file")
        else:
            progress.update(rows["read"], rows["total"], f"{rows['read']} / {rows['total']} rows")
        if job["status"] in FINAL:
            progress.close()
            return dict(job)
        if time.monotonic() > deadline:
            progress.close()
            raise SystemExit(f"still {job['status']} after {timeout:.0f}s: {import_id}")
        time.sleep(0.5)


def summary(job: dict[str, Any]) -> str:
    rows = job["rows"]
    lines = [
        f"import {job['id']} ({job['filename']}): {job['status']}",
        f"  rows read {rows['read']}, imported {rows['imported']}, rejected {rows['rejected']}",
    ]
    if job.get("duration_seconds") is not None:
        lines.append(f"  took {job['duration_seconds']} s")
    if job.get("error"):
        lines.append(f"  reason: {job['error']}")
    if job.get("error_report"):
        lines.append(f"  error report: {job['error_report']['url']}")
    return "\n".join(lines)


def target(args: argparse.Namespace, state_file: Path) -> tuple[str, str]:
    api = args.api or os.environ.get("INSIGHTS_API_URL")
    key = args.secret_key or os.environ.get("INSIGHTS_SECRET_KEY")
    if (not api or not key) and state_file.exists():
        state = json.loads(state_file.read_text())
        api = api or state.get("api_url")
        key = key or (state.get("account") or {}).get("secret_key")
    if not api or not key:
        raise SystemExit(
            "no target: start the local stack (`make run`), or pass --api URL and --secret-key KEY"
        )
    return api.rstrip("/"), key


def run(args: argparse.Namespace, state_file: Path) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"no such file: {path}")
    api, key = target(args, state_file)
    body: dict[str, Any] = {"filename": path.name}
    if args.mapping:
        try:
            body["mapping"] = json.loads(Path(args.mapping).read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"cannot read the mapping {args.mapping}: {exc}") from None
    status, started = api_call("POST", f"{api}/v1/imports", key, body)
    if status != 201:
        message = started.get("message") if isinstance(started, dict) else started
        raise SystemExit(f"the import was refused ({status}): {message}")
    form = started["upload"]
    if path.stat().st_size > form["max_bytes"]:
        raise SystemExit(f"the file is larger than the upload limit of {_size(form['max_bytes'])}")
    out = sys.stderr
    upload(form, path, out)
    if args.no_wait:
        print(f"uploaded; import {started['id']} is pending")
        return 0
    job = follow(api, key, started["id"], out, args.timeout)
    print(summary(job))
    return 0 if job["status"] == "succeeded" else 1


def add_parser(commands: Any, state_file: Path | Callable[[], Path]) -> None:
    """`state_file`: the running local stack's state file, or a function finding it
    when the command runs (the stack may have been started from another directory)."""
    parser = commands.add_parser(
        "import", help="import a CSV or JSON Lines file as custom attributes (upload API)"
    )
    parser.add_argument("file", help="a .csv, .csv.gz, .jsonl or .jsonl.gz file")
    parser.add_argument(
        "--mapping", help="mapping JSON file: uuid, columns, rename, types, timestamp"
    )
    parser.add_argument("--api", help="API base URL (default: the running local stack)")
    parser.add_argument("--secret-key", help="the account's secret key (default: local demo)")
    parser.add_argument("--no-wait", action="store_true", help="upload, then return at once")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds to wait for the import (default 3600)"
    )
    parser.set_defaults(
        func=lambda args: run(args, state_file() if callable(state_file) else state_file)
    )
