"""schemathesis over the local stack: every operation of docs/openapi.yaml, with valid keys.

The run is bounded and derandomized by schemathesis.toml (the repository's
configuration, also used by hand); it must find no 5xx, no answer the
description does not allow, and no answer slower than its limit (no hang).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_local_stack import ROOT, RunningStack
from tests.openapi_check import operations

pytestmark = pytest.mark.e2e


@pytest.fixture
def fuzzed_stack(tmp_path: Path) -> Iterator[RunningStack]:
    stack = RunningStack(tmp_path)
    yield stack
    output = stack.stop()
    assert "Traceback" not in output, output  # nothing failed inside the stack either


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_description(
    fuzzed_stack: RunningStack,
) -> None:
    account = fuzzed_stack.state["account"]
    env = {
        **os.environ,
        "INSIGHTS_WRITE_KEY": account["write_key"],
        "INSIGHTS_SECRET_KEY": account["secret_key"],
        "NO_COLOR": "1",
    }
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [str(st), "run", "docs/openapi.yaml", "--url", fuzzed_stack.url, "--no-color"],
        cwd=ROOT,  # schemathesis.toml is read from here
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # a hang fails here, beside the per-request limit in the config
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert f"{len(operations())} selected / {len(operations())} total" in out, out[-3000:]
    for phase in ("Examples", "Coverage", "Fuzzing"):
        assert f"✅  {phase}" in out, out[-3000:]
    assert account["secret_key"] not in out and account["write_key"] not in out
