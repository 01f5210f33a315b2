"""Serving the console's static files from the package (HTTP API v2 events).

- `GET /` answers `index.html`, `Cache-Control: no-cache` with an `ETag`: a
  browser revalidates it on every load (a `304` without a body when nothing
  changed), so a deployment reaches it at once.
- `GET /console/{version}/{file}` answers every other file, where `version`
  is a hash of all of them: the URL changes whenever any file does, so they
  are cached for a year as `immutable`. ES modules import their siblings by
  relative URL, which keeps them under the same version without rewriting
  them (the reason for a versioned directory rather than hashed file names).
  An unknown version or file is a `404` that no one caches.
- Every answer carries a Content-Security-Policy with no inline script or
  style at all, and `connect-src` limited to this origin and the imports
  bucket (the upload form and the error report links).

Files are read once per container (again only when one changes, which only
happens locally); the whole console is a few tens of KB.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

STATIC = Path(__file__).with_name("static")
INDEX = "index.html"
ASSET_PREFIX = "/console/"
VERSION_PLACEHOLDER = "{{assets}}"
TYPES = {
    ".mjs": "text/javascript; charset=utf-8",  # RFC 9239
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# The page needs these; the vendor-*.mjs ship in the repository and `make console`
# checks them against console/package-lock.json (tools/console_vendor.py).
REQUIRED = (
    "index.html",
    "app.mjs",
    "vendor-preact.mjs",
    "vendor-preact-hooks.mjs",
    "vendor-htm.mjs",
)


class ConsoleMissing(RuntimeError):
    """The static files are incomplete: a package built from a partial checkout."""


def _stamp() -> tuple[tuple[str, int, int], ...]:
    """What the directory holds now: an edited file changes it (no restart locally)."""
    return tuple(
        (entry.name, entry.stat().st_mtime_ns, entry.stat().st_size)
        for entry in sorted(STATIC.iterdir())
        if entry.is_file() and entry.suffix in TYPES
    )


def files() -> dict[str, tuple[bytes, str]]:
    """name -> (content, content type) of every servable file."""
    return _load(_stamp())[0]


def version() -> str:
    """A hash of every file but the index: the asset directory's name."""
    return _load(_stamp())[1]


def index() -> tuple[str, str]:
    """(index.html pointing at this version's assets, its ETag)."""
    return _load(_stamp())[2]


@lru_cache(maxsize=1)
def _load(
    stamp: tuple[tuple[str, int, int], ...],
) -> tuple[dict[str, tuple[bytes, str]], str, tuple[str, str]]:
    found = {name: ((STATIC / name).read_bytes(), TYPES[Path(name).suffix]) for name, _, _ in stamp}
    missing = [name for name in REQUIRED if name not in found]
    if missing:
        raise ConsoleMissing(
            f"console files missing from {STATIC}: {', '.join(missing)} (they are in the "
            "repository; `make console` checks them, `make console-update` rebuilds them)"
        )
    digest = hashlib.sha256()
    for name, (content, _) in found.items():
        if name != INDEX:
            digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    version = digest.hexdigest()[:16]
    page = found[INDEX][0].decode().replace(VERSION_PLACEHOLDER, f"{ASSET_PREFIX}{version}")
    etag = '"' + hashlib.sha256(page.encode()).hexdigest()[:20] + '"'
    return found, version, (page, etag)


def upload_origins() -> list[str]:
    """Where the page may send files and read error reports: the imports bucket.

    Locally that is the moto server (AWS_ENDPOINT_URL); on AWS the bucket's
    virtual-hosted names, global and regional (boto3 signs either).
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        return [f"{parts.scheme}://{parts.netloc}"]
    bucket = os.environ.get("IMPORTS_BUCKET", "")
    region = os.environ.get("AWS_REGION", "us-east-1")
    if not bucket:
        return []
    return [f"https://{bucket}.s3.amazonaws.com", f"https://{bucket}.s3.{region}.amazonaws.com"]


def security_policy() -> str:
    connect = " ".join(["'self'", *upload_origins()])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; form-action 'none'; frame-ancestors 'none'; "
        "base-uri 'none'; manifest-src 'self'"
    )


def _headers(content_type: str, cache_control: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "Cache-Control": cache_control,
        "Content-Security-Policy": security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def _reply(status: int, headers: dict[str, str], body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}


def _not_found(path: str) -> dict[str, Any]:
    message = f"no console file at {path}; reload the console (GET /) for the current one"
    headers = {**_headers("application/json", "no-store")}
    return _reply(404, headers, json.dumps({"error": "not_found", "message": message}))


def _fresh(event: dict[str, Any], etag: str) -> bool:
    sent = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return etag in [tag.strip() for tag in (sent.get("if-none-match") or "").split(",")]


def serve(event: dict[str, Any]) -> dict[str, Any]:
    """The answer to GET / or GET /console/{version}/{file}."""
    try:
        return _serve(event)
    except ConsoleMissing as exc:  # a package built from a partial checkout
        headers = _headers("text/plain; charset=utf-8", "no-store")
        return _reply(503, headers, f"The console is not built here: {exc}\n")


def _serve(event: dict[str, Any]) -> dict[str, Any]:
    path = event.get("rawPath") or "/"
    if path == "/":
        page, etag = index()
        headers = {**_headers(TYPES[".html"], REVALIDATE), "ETag": etag}
        if _fresh(event, etag):
            return _reply(304, headers, "")
        return _reply(200, headers, page)
    wanted, _, name = path.removeprefix(ASSET_PREFIX).partition("/")
    found = files().get(name)
    if not path.startswith(ASSET_PREFIX) or wanted != version() or name == INDEX or not found:
        return _not_found(path)
    content, content_type = found
    etag = f'"{version()}"'
    headers = {**_headers(content_type, IMMUTABLE), "ETag": etag}
    if _fresh(event, etag):
        return _reply(304, headers, "")
    return _reply(200, headers, content.decode())
