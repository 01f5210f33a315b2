"""Check what `sam build` left in .aws-sam/build before it is deployed.

`sam build` succeeds on things Lambda or CloudFormation refuse later, or
that quietly make the stack slow: an artifact with no files (Lambda rejects
a zip without entries and the stack rolls back), native code for x86-64 in
an arm64 function, a layer without bytecode for the runtime's Python (every
cold start compiles it from source), or layers too big for Lambda's 250 MB
unzipped limit once the City database is added. No library inspects a SAM
build for these, so this reads the build directory and the ELF headers
itself.

    python -m tools.check_build                # check .aws-sam/build
    python -m tools.check_build --find-python  # print a python3.13 (for BYTECODE_PYTHON)

Exit status 1 when an error is found; warnings are printed and pass.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

LAMBDA_PYTHON = (3, 13)
# Lambda: a function's code plus all its layers, unzipped (262,144,000 bytes).
UNZIPPED_LIMIT = 250 * 1024 * 1024
# A current GeoLite2-City.mmdb is about 60 MB; the room kept free for it.
CITY_DATABASE_ROOM = 70 * 1024 * 1024
# What geoip2's web-service client pulls in; the layer installs geoip2 without
# its dependencies (layers/core/Makefile), so none of these may be there.
UNUSED_PACKAGES = (
    "aiohttp",
    "aiohappyeyeballs",
    "aiosignal",
    "frozenlist",
    "multidict",
    "propcache",
    "yarl",
    "requests",
)
EM_X86_64 = 62
EM_AARCH64 = 183
ELF_MAGIC = b"\x7fELF"
MB = 1024 * 1024


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Artifact:
    logical_id: str
    kind: str  # "function" or "layer"
    path: Path


def elf_machine(path: Path) -> int | None:
    """The e_machine field of an ELF file, or None when the file is not ELF."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != ELF_MAGIC:
        return None
    byteorder = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], byteorder)


def artifacts(build_dir: Path) -> list[Artifact]:
    """Every function and layer of the built template, with its directory."""

    # The built template keeps CloudFormation's short tags (!Ref, !If, ...):
    # read them as plain data, only the code locations matter here.
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((build_dir / "template.yaml").read_text(), Loader=Loader)
    found = []
    for name, resource in (template.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            found.append(Artifact(name, "function", build_dir / props["CodeUri"]))
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            found.append(Artifact(name, "layer", build_dir / props["ContentUri"]))
    return found


def files_of(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []


def size_of(files: list[Path]) -> int:
    return sum(p.stat().st_size for p in files)


def find_python(version: tuple[int, int] = LAMBDA_PYTHON) -> str | None:
    """A working interpreter of the Lambda runtime's version, or None.

    Looks at BYTECODE_PYTHON, pythonX.Y on PATH, then pyenv's versions (a
    pyenv shim on PATH fails when that version is not selected, so each
    candidate is run, not just found)."""
    name = f"python{version[0]}.{version[1]}"
    candidates = [os.environ.get("BYTECODE_PYTHON", ""), shutil.which(name) or ""]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version[0]}.{version[1]}*/bin/{name}"))
    for candidate in filter(None, candidates):
        try:
            result = subprocess.run(
                [
                    candidate,
                    "-c",
                    "import sys; print(sys.executable); print(*sys.version_info[:2])",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = result.stdout.split("\n")
        if (
            result.returncode == 0
            and len(lines) >= 2
            and lines[1].split() == list(map(str, version))
        ):
            return lines[0]
    return None


def check(build_dir: Path, *, python: str | None) -> Report:
    """Inspect a `sam build` output. python: the python3.13 found, if any."""
    report = Report()
    if not (build_dir / "template.yaml").is_file():
        report.errors.append(f"{build_dir}/template.yaml not found: run `sam build` first")
        return report
    built = artifacts(build_dir)
    sizes: dict[str, int] = {}
    has_city_database = False
    for artifact in built:
        files = files_of(artifact.path)
        sizes[artifact.logical_id] = size_of(files)
        if not files:
            report.errors.append(
                f"{artifact.logical_id}: the artifact {artifact.path} is empty; Lambda refuses "
                "a zip with no entries and the deployment rolls back"
            )
            continue
        for path in files:
            machine = elf_machine(path)
            if machine is not None and machine != EM_AARCH64:
                arch = "x86-64" if machine == EM_X86_64 else f"machine {machine}"
                report.errors.append(
                    f"{artifact.logical_id}: {path.relative_to(build_dir)} is {arch} native "
                    "code; the functions run on arm64 (aarch64)"
                )
        if artifact.kind == "layer":
            has_city_database |= any(p.suffix == ".mmdb" for p in files)
            _check_python_layer(artifact, build_dir, python, report)
    if not has_city_database:
        report.warnings.append(
            "no GeoIP database in any layer: the stack works, but country/region/city stay "
            "empty. Put GeoLite2-City.mmdb at layers/geoip/ before `sam build` (README, Deploying)."
        )
    _check_size(built, sizes, has_city_database, report)
    return report


def _check_python_layer(
    artifact: Artifact, build_dir: Path, python: str | None, report: Report
) -> None:
    site = artifact.path / "python"
    if not site.is_dir():
        return
    # Only where geoip2 is: another layer may need requests for itself
    # (simple-salesforce in SalesforceLayer).
    present = sorted(name for name in UNUSED_PACKAGES if (site / name).exists())
    if present and (site / "geoip2").exists():
        report.errors.append(
            f"{artifact.logical_id}: {', '.join(present)} in the layer: geoip2's web-service "
            "dependencies, never used (layers/core/Makefile installs geoip2 with --no-deps)"
        )
    static = site / "insights" / "console" / "static"
    if static.is_dir():  # the console's vendored modules come from `make console`
        from insights.console.assets import REQUIRED

        absent = [name for name in REQUIRED if not (static / name).is_file()]
        if absent:
            report.errors.append(
                f"{artifact.logical_id}: the console lacks {', '.join(absent)}: the page "
                "would not load. Run `make console` before `sam build` (`make build` does)"
            )
    tag = f"cpython-{LAMBDA_PYTHON[0]}{LAMBDA_PYTHON[1]}"
    sources = [p for p in site.rglob("*.py") if "__pycache__" not in p.parts]
    missing = [
        p for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").is_file()
    ]
    compiled = len(sources) - len(missing)
    report.notes.append(
        f"{artifact.logical_id}: {compiled} of {len(sources)} modules have {tag} bytecode"
    )
    if not missing:
        return
    example = missing[0].relative_to(build_dir)
    if python:
        report.errors.append(
            f"{artifact.logical_id}: {len(missing)} modules without {tag} bytecode (e.g. "
            f"{example}) although {python} exists: build with BYTECODE_PYTHON={python} "
            "(`make build` does)"
        )
    else:
        report.warnings.append(
            f"{artifact.logical_id}: no python{LAMBDA_PYTHON[0]}.{LAMBDA_PYTHON[1]} here, so "
            f"{len(missing)} modules ship without bytecode and every cold start compiles them "
            "(imports about 3x slower). Install Python 3.13 and rebuild (README, Deploying)."
        )


def _check_size(
    built: list[Artifact], sizes: dict[str, int], has_city_database: bool, report: Report
) -> None:
    # Every function mounts every layer (Globals), so the largest function
    # plus all layers is what Lambda measures against its limit.
    layers = sum(sizes[a.logical_id] for a in built if a.kind == "layer")
    largest = max((sizes[a.logical_id] for a in built if a.kind == "function"), default=0)
    room = 0 if has_city_database else CITY_DATABASE_ROOM
    total = layers + largest
    report.notes.append(
        f"unzipped: layers {layers / MB:.1f} MB + largest function {largest / MB:.2f} MB"
        + ("" if has_city_database else f" + {room / MB:.0f} MB kept for the City database")
        + f" = {(total + room) / MB:.1f} MB of Lambda's {UNZIPPED_LIMIT / MB:.0f} MB"
    )
    if total + room > UNZIPPED_LIMIT:
        report.errors.append(
            f"layers and code take {total / MB:.1f} MB unzipped"
            + ("" if has_city_database else f", {room / MB:.0f} MB more with the City database")
            + f": over Lambda's {UNZIPPED_LIMIT / MB:.0f} MB limit"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    parser.add_argument(
        "--find-python",
        action="store_true",
        help="print a working python3.13 (empty when there is none) and exit",
    )
    args = parser.parse_args(argv)
    python = find_python()
    if args.find_python:
        print(python or "")
        return 0
    report = check(args.build_dir, python=python)
    for note in report.notes:
        print(f"  {note}")
    for warning in report.warnings:
        print(f"WARNING: {warning}")
    for error in report.errors:
        print(f"ERROR: {error}")
    if report.errors:
        print(f"build check: {len(report.errors)} error(s) in {args.build_dir}")
        return 1
    print(f"build check: {args.build_dir} is deployable ({len(report.warnings)} warning(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
