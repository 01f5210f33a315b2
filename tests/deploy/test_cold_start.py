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

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
    assert {"insights.http", "insights.storage.core.accounts"} <= loaded
    # ... and what only the user routes need is not: it was about a tenth of
    # the import and put the function over 1.5x `import boto3`.
    assert not loaded & {"insights.services.core.users", "insights.storage.core.store"}


def _handler_files() -> dict[str, Path]:
    from insights.local.template import Template

    template = Template.load(ROOT / "template.yaml")
    return {
        spec.logical_id: spec.code_dir / f"{spec.handler.rpartition('.')[0]}.py"
        for spec in template.functions()
    }


# Powertools pieces whose import was 0.15-0.2x `import boto3` each: the event
# handler and batch packages load asyncio and every event data class.
POWERTOOLS_HEAVY = {
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
    "asyncio",
}


@pytest.mark.parametrize("function", sorted(_handler_files()))
def test_no_function_imports_powertools_routing_or_batch_packages(function: str) -> None:
    loaded = modules_after_import(_handler_files()[function])
    assert {"aws_lambda_powertools.logging", "aws_lambda_powertools.metrics"} <= loaded
    assert not loaded & POWERTOOLS_HEAVY


def test_imports_api_imports_boto3_only_to_presign() -> None:
    loaded = modules_after_import(ROOT / "functions" / "imports_api" / "app.py")
    assert "insights.storage.imports.objects" in loaded  # botocore comes with pynamodb ...
    assert "botocore" in loaded
    assert "boto3" not in loaded  # ... boto3 only with the first S3 client
