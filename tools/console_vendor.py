"""The console's third-party modules (Preact, its hooks, htm): checked with Python alone.

The three ES modules are committed in `layers/core/insights/console/static/`
as `vendor-*.mjs`, and so are the npm tarballs they come from
(`console/packages/<name>-<version>.tgz`), so `make run` and `make test` need
no npm. `make console` (and the tests) check the chain from the lock to the
files served: each tarball's SHA-512 equals the integrity hash that
`console/package-lock.json` pins, and each `vendor-*.mjs` is byte for byte
the file read from that tarball (with the one import rewritten, below).

npm is needed only to change versions: `npm install preact@x --package-lock-only`
in `console/`, then `make console-update`, which fetches the newly locked
tarballs with `npm pack`, checks them against the lock and rewrites the files.

Preact's hooks module imports the bare specifier "preact", which a browser
resolves only through an import map; an import map is an inline script,
which the console's CSP forbids. So the copy points that one import at the
sibling file instead (checked: exactly one such import, or the update fails).
Why no bundler: docs/console.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "console"
STATIC = ROOT / "layers" / "core" / "insights" / "console" / "static"
# name in static/ -> (package, path inside its tarball)
FILES = {
    "vendor-preact.mjs": ("preact", "package/dist/preact.mjs"),
    "vendor-preact-hooks.mjs": ("preact", "package/hooks/dist/hooks.mjs"),
    "vendor-htm.mjs": ("htm", "package/dist/htm.mjs"),
}
REWRITES = {'from"preact"': 'from"./vendor-preact.mjs"'}
UPDATE = "`make console-update` (needs npm) rebuilds them from console/package-lock.json"


class VendorError(Exception):
    """The committed modules do not match the lock, or an update could not be made."""


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    integrity: str

    @property
    def tarball(self) -> str:
        return f"{self.name}-{self.version}.tgz"


def locked(project: Path = PROJECT) -> dict[str, Locked]:
    """The packages the lock pins, by name."""
    lock = json.loads((project / "package-lock.json").read_text(encoding="utf-8"))
    found = {}
    for key, entry in lock.get("packages", {}).items():
        if key.startswith("node_modules/"):
            name = key.removeprefix("node_modules/")
            found[name] = Locked(name, entry["version"], entry["integrity"])
    return found


def matches(data: bytes, integrity: str) -> bool:
    """Subresource-integrity check: any listed sha256/384/512 hash that equals data's."""
    for item in integrity.split():
        algorithm, _, expected = item.partition("-")
        if algorithm in ("sha256", "sha384", "sha512"):
            actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
            if hmac.compare_digest(actual, expected):
                return True
    return False


def _tarball(package: Locked, project: Path) -> bytes:
    path = project / "packages" / package.tarball
    if not path.is_file():
        raise VendorError(f"{path.relative_to(project.parent)} is missing: {UPDATE}")
    data = path.read_bytes()
    if not matches(data, package.integrity):
        raise VendorError(
            f"{path.relative_to(project.parent)} does not match the integrity hash "
            f"console/package-lock.json pins for {package.name}@{package.version}: {UPDATE}"
        )
    return data


def _module(data: bytes, member: str, name: str) -> bytes:
    """One file of a package tarball, its bare import pointed at the sibling copy."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        extracted = archive.extractfile(member)
        if extracted is None:
            raise VendorError(f"{member} is not a file in the {name} package")
        text = extracted.read().decode("utf-8")
    for bare, sibling in REWRITES.items():
        found = text.count(bare)
        if found > 1 or (found == 0 and name == "vendor-preact-hooks.mjs"):
            raise VendorError(f"{member}: expected one import {bare!r}, found {found}")
        text = text.replace(bare, sibling)
    if 'from"' in text.replace('from"./', ""):
        raise VendorError(f"{member}: a bare import is left; the browser cannot resolve it")
    return text.encode("utf-8")


def expected(project: Path = PROJECT) -> dict[str, bytes]:
    """name in static/ -> the bytes it must hold, from the integrity-checked tarballs."""
    packages = locked(project)
    tarballs: dict[str, bytes] = {}
    wanted = {}
    for name, (package, member) in FILES.items():
        if package not in packages:
            raise VendorError(f"console/package-lock.json does not lock {package}")
        if package not in tarballs:
            tarballs[package] = _tarball(packages[package], project)
        wanted[name] = _module(tarballs[package], member, name)
    return wanted


def problems(project: Path = PROJECT, static: Path = STATIC) -> list[str]:
    """What differs between the committed modules and the locked packages (none: [])."""
    try:
        wanted = expected(project)
    except VendorError as exc:
        return [str(exc)]
    found = []
    for name, content in wanted.items():
        path = static / name
        if not path.is_file():
            found.append(f"{name} is missing from {static}: {UPDATE}")
        elif path.read_bytes() != content:
            found.append(f"{name} is not the file the locked package holds: {UPDATE}")
    stale = {p.name for p in (project / "packages").glob("*.tgz")} - {
        p.tarball for p in locked(project).values()
    }
    found += [f"console/packages/{name} is not in the lock: delete it" for name in sorted(stale)]
    return found


def vendor(project: Path = PROJECT, static: Path = STATIC) -> list[Path]:
    """The committed modules, checked against the lock (tests/conftest.py calls this)."""
    found = problems(project, static)
    if found:
        raise VendorError("the console's vendored modules:\n  " + "\n  ".join(found))
    return [static / name for name in FILES]


def update(project: Path = PROJECT, static: Path = STATIC) -> list[Path]:
    """Fetch the locked tarballs that are missing (npm pack), check them, rewrite the modules."""
    packages = locked(project)
    folder = project / "packages"
    folder.mkdir(exist_ok=True)
    for package in packages.values():
        if (folder / package.tarball).is_file():
            continue
        npm = shutil.which("npm")
        if npm is None:
            raise VendorError("npm is needed to fetch a new version (Debian: apt-get install npm)")
        done = subprocess.run(
            [npm, "pack", f"{package.name}@{package.version}", "--pack-destination", str(folder)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise VendorError(f"npm pack {package.name}@{package.version}:\n{done.stderr}")
    for path in folder.glob("*.tgz"):
        if path.name not in {p.tarball for p in packages.values()}:
            path.unlink()
    written = []
    for name, content in expected(project).items():  # raises on a tarball the lock refuses
        target = static / name
        if not target.is_file() or target.read_bytes() != content:
            partial = target.with_suffix(".tmp")
            partial.write_bytes(content)
            partial.replace(target)  # a running stack never serves half a file
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--update",
        action="store_true",
        help="fetch the locked versions with npm when missing and rewrite the modules",
    )
    args = parser.parse_args(argv)
    try:
        paths = update() if args.update else vendor()
    except VendorError as exc:
        print(f"console: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(path.name for path in paths)
    verb = "written" if args.update else "match the packages console/package-lock.json pins"
    print(f"console: {names} {verb}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
