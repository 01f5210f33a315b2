"""Cold start: what a handler module imports before its first request.

The in-process stack imports every function, so only a fresh interpreter
shows what one handler's import pulls in (benchmarks, part 2, times it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOADED = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.handler)
print(json.dumps(sorted(sys.modules)))
"""


def modules_after_import(handler_file: Path) -> set[str]:
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "core"), str(ROOT)]),
    }
    out = subprocess.run(
        [sys.executable, "-c", LOADED, str(handler_file)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_api_function_defers_the_user_routes_service() -> None:
    loaded = modules_after_import(ROOT / "functions" / "api" / "app.py")
    # What the account routes need is loaded at import ...
    assert {"insights.http", "insights.storage.accounts"} <= loaded
    # ... and what only the user routes need is not: it was about a tenth of
    # the import and put the function over 1.5x `import boto3`.
    assert not loaded & {"insights.services.users", "insights.storage.store"}
