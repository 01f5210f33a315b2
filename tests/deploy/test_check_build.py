"""tools/check_build.py finds what would break or slow a deployed stack in a
`sam build` output; here on small build directories shaped like SAM's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools import check_build

BUILT_TEMPLATE = """\
Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Conditions:
  HasTopic: !Not [!Equals [!Ref Topic, ""]]
Resources:
  TrackFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: TrackFunction, Handler: app.handler}
  CoreLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: CoreLayer}
  GeoIpLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: GeoIpLayer}
"""


def elf(machine: int) -> bytes:
    """A 64-bit little-endian ELF header for the given e_machine."""
    return (
        b"\x7fELF\x02\x01\x01"
        + bytes(9)
        + (3).to_bytes(2, "little")
        + machine.to_bytes(2, "little")
    )


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A deployable build: handler, a compiled layer with aarch64 native code,
    and a GeoIP layer holding only its README."""
    write(tmp_path / "template.yaml", BUILT_TEMPLATE)
    write(tmp_path / "TrackFunction/app.py", "def handler(event, context): ...\n")
    site = tmp_path / "CoreLayer/python"
    for module in ("insights/__init__.py", "insights/http.py", "six.py"):
        write(site / module, "x = 1\n")
        source = site / module
        write(source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc", b"pyc")
    write(site / "maxminddb/extension.cpython-313-aarch64-linux-gnu.so", elf(183))
    write(tmp_path / "GeoIpLayer/geoip/README.txt", "Put GeoLite2-City.mmdb here.\n")
    return tmp_path


def test_a_good_build_passes_with_a_warning_for_the_missing_city_database(build: Path) -> None:
    report = check_build.check(build, python="/usr/bin/python3.13")
    assert report.errors == []
    assert len(report.warnings) == 1 and "GeoLite2-City.mmdb" in report.warnings[0]
    assert "CoreLayer: 3 of 3 modules have cpython-313 bytecode" in report.notes


def test_an_empty_artifact_is_an_error(build: Path) -> None:
    (build / "GeoIpLayer/geoip/README.txt").unlink()
    (errors,) = check_build.check(build, python=None).errors
    assert errors.startswith("GeoIpLayer:") and "no entries" in errors


def test_x86_64_native_code_is_an_error(build: Path) -> None:
    write(build / "CoreLayer/python/fast/_speedups.cpython-313-x86_64-linux-gnu.so", elf(62))
    (error,) = check_build.check(build, python="/usr/bin/python3.13").errors
    assert "_speedups.cpython-313-x86_64-linux-gnu.so is x86-64" in error


def test_elf_machine_reads_big_endian_headers_and_ignores_other_files(tmp_path: Path) -> None:
    big = tmp_path / "big.so"
    big.write_bytes(
        b"\x7fELF\x02\x02\x01" + bytes(9) + (3).to_bytes(2, "big") + (62).to_bytes(2, "big")
    )
    text = tmp_path / "notes.so"
    text.write_text("not an ELF file at all")
    assert check_build.elf_machine(big) == 62
    assert check_build.elf_machine(text) is None


def test_geoip2_web_service_dependencies_in_the_layer_are_an_error(build: Path) -> None:
    for package in ("geoip2", "aiohttp"):
        write(build / f"CoreLayer/python/{package}/__init__.py", "")
        write(build / f"CoreLayer/python/{package}/__pycache__/__init__.cpython-313.pyc", b"pyc")
    (error,) = check_build.check(build, python=None).errors
    assert error.startswith("CoreLayer: aiohttp in the layer")


def test_a_layer_without_geoip2_may_carry_requests_for_itself(build: Path) -> None:
    """As SalesforceLayer does (simple-salesforce needs requests): only geoip2's layer may not."""
    write(build / "CoreLayer/python/requests/__init__.py", "")
    write(build / "CoreLayer/python/requests/__pycache__/__init__.cpython-313.pyc", b"pyc")
    assert check_build.check(build, python=None).errors == []


def test_a_console_without_its_vendored_modules_is_an_error(build: Path) -> None:
    static = build / "CoreLayer/python/insights/console/static"
    for name in ("index.html", "app.mjs", "vendor-preact.mjs", "vendor-preact-hooks.mjs"):
        write(static / name, "x")
    errors = check_build.check(build, python=None).errors
    assert errors == [
        "CoreLayer: the console lacks vendor-htm.mjs: the page would not load. "
        "Run `make console` before `sam build` (`make build` does)"
    ]
    write(static / "vendor-htm.mjs", "x")
    assert check_build.check(build, python=None).errors == []


def test_missing_bytecode_is_an_error_when_a_python313_exists(build: Path) -> None:
    write(build / "CoreLayer/python/insights/extra.py", "y = 2\n")
    (error,) = check_build.check(build, python="/opt/py/bin/python3.13").errors
    assert "1 modules without cpython-313 bytecode" in error
    assert "BYTECODE_PYTHON=/opt/py/bin/python3.13" in error


def test_missing_bytecode_without_a_python313_is_a_visible_warning(
    build: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for pyc in (build / "CoreLayer").rglob("*.pyc"):
        pyc.unlink()
    monkeypatch.setattr(check_build, "find_python", lambda: None)
    assert check_build.main(["--build-dir", str(build)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: CoreLayer: no python3.13 here, so 3 modules ship without bytecode" in out
    assert "is deployable (2 warning(s))" in out


def test_the_layers_must_leave_room_for_the_city_database(
    build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(build / "CoreLayer/python/big.bin", bytes(3000))
    monkeypatch.setattr(check_build, "UNZIPPED_LIMIT", 10_000)
    monkeypatch.setattr(check_build, "CITY_DATABASE_ROOM", 8_000)
    (error,) = check_build.check(build, python=None).errors
    assert "more with the City database" in error
    # With the database already in the layer, no extra room is kept.
    write(build / "GeoIpLayer/geoip/GeoLite2-City.mmdb", bytes(1000))
    assert check_build.check(build, python=None).errors == []


def test_a_missing_build_says_to_run_sam_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_build.main(["--build-dir", str(tmp_path)]) == 1
    assert "run `sam build` first" in capsys.readouterr().out


def test_find_python_runs_each_candidate_and_checks_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tuple(sys.version_info[:2])
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("BYTECODE_PYTHON", sys.executable)
    assert check_build.find_python(here) is not None
    assert check_build.find_python((3, 99)) is None
    # A pyenv shim that is not the selected version exits non-zero: skipped.
    shim = tmp_path / "empty-bin" / "python3.99"
    write(shim, "#!/bin/sh\nexit 127\n")
    shim.chmod(0o755)
    monkeypatch.setenv("BYTECODE_PYTHON", str(tmp_path / "missing/python3.99"))
    assert check_build.find_python((3, 99)) is None


def test_geoip2_works_without_its_web_service_dependencies(geo_db: Path) -> None:
    """The layer installs geoip2 with --no-deps: reading a database must not need them."""
    script = (
        "import sys\n"
        "for name in ('aiohttp', 'requests', 'yarl', 'multidict'):\n"
        "    sys.modules[name] = None  # any import of them raises ImportError\n"
        "import geoip2.database\n"
        f"reader = geoip2.database.Reader({str(geo_db)!r})\n"
        "print(reader.city('81.2.69.160').country.iso_code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "GB"
