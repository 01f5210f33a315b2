"""The console's static files as the stack serves them (routes from template.yaml).

Content types, the cache split (a revalidated index, immutable versioned
assets), the CSP, that the page holds no inline script or handler, and that
the committed third-party modules are the packages the lock pins (checked
with Python alone). The page's behaviour in a real browser:
tests/e2e/test_console.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from insights.console import assets
from tests.conftest import Stack
from tools import console_vendor
from tools.console_vendor import VendorError, problems, vendor

STATIC = assets.STATIC
ROOT = Path(__file__).resolve().parents[2]


def asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/console/[^"]+)"', page)


def test_the_index_is_revalidated_and_points_at_versioned_assets(stack: Stack) -> None:
    response = stack.cloud.http("GET", "/")
    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    urls = asset_urls(response.body)
    assert {url.rsplit("/", 1)[1] for url in urls} == {"icon.svg", "style.css", "app.mjs"}
    assert {url.split("/")[2] for url in urls} == {assets.version()}
    again = stack.cloud.http("GET", "/", headers={"If-None-Match": response.headers["etag"]})
    assert again.status == 304 and again.body == ""


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.mjs", "text/javascript; charset=utf-8"),
        ("vendor-preact.mjs", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_immutable_under_their_version(
    stack: Stack, name: str, content_type: str
) -> None:
    response = stack.cloud.http("GET", f"/console/{assets.version()}/{name}")
    assert response.status == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.body == (STATIC / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path",
    [
        "/console/0000000000000000/app.mjs",  # an old version: never the current file
        "/console/{version}/nothing.mjs",
        "/console/{version}/index.html",  # the index only at /
        "/console/{version}/..%2Fassets.py",
    ],
)
def test_unknown_versions_and_files_are_uncached_404s(stack: Stack, path: str) -> None:
    response = stack.cloud.http("GET", path.format(version=assets.version()))
    assert response.status == 404
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"


def test_the_version_changes_with_any_asset(tmp_path: Path, monkeypatch) -> None:
    for path in STATIC.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(assets, "STATIC", tmp_path)
    before, page_before = assets.version(), assets.index()[0]
    (tmp_path / "style.css").write_text("body { color: red }\n")
    assert assets.version() != before
    assert assets.index()[0] != page_before
    assert f"/console/{assets.version()}/app.mjs" in assets.index()[0]


def test_missing_vendored_modules_say_how_to_build_them(tmp_path: Path, monkeypatch) -> None:
    for path in STATIC.iterdir():
        if not path.name.startswith("vendor-"):
            (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(assets, "STATIC", tmp_path)
    with pytest.raises(assets.ConsoleMissing, match="make console"):
        assets.version()
    answer = assets.serve({"rawPath": "/"})  # a clear 503, not a stack trace
    assert answer["statusCode"] == 503 and "make console" in answer["body"]


def test_the_policy_forbids_inline_script_and_foreign_hosts(stack: Stack, monkeypatch) -> None:
    policy = stack.cloud.http("GET", "/").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    # connect-src: this origin and the imports bucket (presigned uploads), nothing else
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("IMPORTS_BUCKET", "insights-imports-abc")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    expected = (
        "connect-src 'self' https://insights-imports-abc.s3.amazonaws.com "
        "https://insights-imports-abc.s3.eu-west-1.amazonaws.com;"
    )
    assert expected in assets.security_policy()


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("an inline <script>")
        self.problems += [f"inline handler {n}" for n in names if n.startswith("on")]
        if "style" in names:
            self.problems.append(f"inline style on <{tag}>")


def test_the_page_and_modules_hold_no_inline_script_or_handler_strings() -> None:
    parser = _Inline()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.problems == []
    for module in STATIC.glob("*.mjs"):
        if module.name.startswith("vendor-"):
            continue
        source = module.read_text()
        # htm templates: handlers are bound as properties (onClick=${fn}), never strings
        assert not re.search(r"\bon[a-z]+=\"", source), module.name
        assert "innerHTML" not in source and "dangerouslySetInnerHTML" not in source, module.name
        assert "eval(" not in source and "new Function" not in source, module.name


# ------------------------------------------------ the vendored modules
def test_the_committed_vendor_modules_are_the_packages_the_lock_pins() -> None:
    assert problems() == []
    assert [path.name for path in vendor()] == list(console_vendor.FILES)


def test_the_check_needs_python_alone() -> None:
    """`make console` (before `make run` and `make test`) works on a machine without npm."""
    checked = subprocess.run(
        [sys.executable, "-m", "tools.console_vendor"],
        cwd=ROOT,
        env={"PATH": "/nonexistent"},  # no npm, no node
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "match the packages console/package-lock.json pins" in checked.stderr


@pytest.fixture
def copied(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of console/ and of the vendored modules to tamper with."""
    project, static = tmp_path / "console", tmp_path / "static"
    shutil.copytree(console_vendor.PROJECT, project, ignore=shutil.ignore_patterns("node_modules"))
    static.mkdir()
    for name in console_vendor.FILES:
        shutil.copyfile(STATIC / name, static / name)
    assert problems(project, static) == []
    return project, static


def test_a_changed_vendor_module_is_caught(copied: tuple[Path, Path]) -> None:
    project, static = copied
    module = static / "vendor-htm.mjs"
    module.write_bytes(module.read_bytes().replace(b"function", b"function ", 1))
    assert problems(project, static) == [
        "vendor-htm.mjs is not the file the locked package holds: " + console_vendor.UPDATE
    ]
    with pytest.raises(VendorError, match=r"vendor-htm\.mjs"):
        vendor(project, static)
    module.unlink()
    assert problems(project, static)[0].startswith("vendor-htm.mjs is missing")


def test_a_tarball_other_than_the_locked_one_is_caught(copied: tuple[Path, Path]) -> None:
    project, static = copied
    tarball = project / "packages" / "preact-11.2.0.tgz"
    tarball.write_bytes(tarball.read_bytes() + b"\0")  # still a valid gzip stream
    (found,) = problems(project, static)
    assert "preact-11.2.0.tgz does not match the integrity hash" in found


def test_a_new_version_in_the_lock_needs_its_tarball(copied: tuple[Path, Path]) -> None:
    project, static = copied
    lock_path = project / "package-lock.json"
    lock = json.loads(lock_path.read_text())
    lock["packages"]["node_modules/htm"]["version"] = "3.1.2"
    lock_path.write_text(json.dumps(lock))
    (found,) = problems(project, static)
    assert found.startswith("console/packages/htm-3.1.2.tgz is missing")
