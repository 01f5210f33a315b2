"""Copy the console's third-party modules (Preact, its hooks, htm) next to its own.

`make run`, `make test` and `make build` run this (`make console`); the copies
are git-ignored build output. npm installs exactly what `console/package-lock.json`
pins (integrity hashes checked) into the git-ignored `.cache/console-npm/`,
once per lock, and the three ES modules are copied into
`layers/core/insights/console/static/` as `vendor-*.mjs`.

Preact's hooks module imports the bare specifier "preact", which a browser
resolves only through an import map; an import map is an inline script,
which the console's CSP forbids. So the copy points that one import at the
sibling file instead (checked: exactly one such import, or the build fails).
Why no bundler: docs/console.md.
"""

from __future__ import annotations

import fcntl
import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "console"
CACHE = ROOT / ".cache" / "console-npm"
STATIC = ROOT / "layers" / "core" / "insights" / "console" / "static"
# node_modules path -> name in static/, and the bare imports to point at siblings
FILES = {
    "preact/dist/preact.mjs": "vendor-preact.mjs",
    "preact/hooks/dist/hooks.mjs": "vendor-preact-hooks.mjs",
    "htm/dist/htm.mjs": "vendor-htm.mjs",
}
REWRITES = {'from"preact"': 'from"./vendor-preact.mjs"'}


def install() -> Path:
    """node_modules for the committed lock, reused while the lock is unchanged."""
    modules = CACHE / "node_modules"
    lock, cached = PROJECT / "package-lock.json", CACHE / "package-lock.json"
    if modules.is_dir() and cached.exists() and filecmp.cmp(lock, cached, shallow=False):
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to build the console (Debian: apt-get install nodejs npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PROJECT / name, CACHE / name)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=CACHE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        cached.unlink(missing_ok=True)
        raise SystemExit(f"npm ci failed for the console:\n{done.stdout}\n{done.stderr}")
    return modules


def vendor() -> list[Path]:
    """Install (when the lock changed) and copy; one process at a time (pytest -n)."""
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(CACHE.parent / "console-npm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _copy(install())


def _copy(modules: Path) -> list[Path]:
    written = []
    for source, name in FILES.items():
        text = (modules / source).read_text(encoding="utf-8")
        for bare, sibling in REWRITES.items():
            found = text.count(bare)
            if found > 1 or (found == 0 and name == "vendor-preact-hooks.mjs"):
                raise SystemExit(f"{source}: expected one import {bare!r}, found {found}")
            text = text.replace(bare, sibling)
        if 'from"' in text.replace('from"./', ""):
            raise SystemExit(f"{source}: a bare import is left; the browser cannot resolve it")
        target = STATIC / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            partial = target.with_suffix(".tmp")
            partial.write_text(text, encoding="utf-8")
            partial.replace(target)  # a running stack never serves half a file
        written.append(target)
    return written


if __name__ == "__main__":
    for path in vendor():
        print(f"console: {path.relative_to(ROOT)}", file=sys.stderr)
