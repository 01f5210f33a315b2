"""template.yaml is valid, least-privilege and shaped as the invariants ask."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from insights.local.template import Template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Template.load(ROOT / "template.yaml")


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def statements():
    for name, fn in TEMPLATE.of_type("AWS::Serverless::Function").items():
        for policy in fn["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                yield name, statement


def test_no_wildcard_actions_or_data_resources() -> None:
    found = list(statements())
    assert found
    for name, statement in found:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in action for action in actions), (name, actions)
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        assert all(resource != "*" for resource in resources), (name, resources)


def test_functions_run_on_a_current_python_on_arm64_without_docker() -> None:
    function_globals = TEMPLATE.body["Globals"]["Function"]
    assert function_globals["Architectures"] == ["arm64"]
    assert re.fullmatch(r"python3\.1[3-9]", function_globals["Runtime"])
    for name, res in {
        **TEMPLATE.of_type("AWS::Serverless::Function"),
        **TEMPLATE.of_type("AWS::Serverless::LayerVersion"),
    }.items():
        assert res["Metadata"]["BuildMethod"] == "makefile", name
        code = ROOT / res["Properties"].get("CodeUri", res["Properties"].get("ContentUri"))
        assert f"build-{name}:" in (code / "Makefile").read_text(), name


def test_tables_have_recovery_encryption_and_the_streams_closing_needs() -> None:
    tables = TEMPLATE.of_type("AWS::DynamoDB::Table")
    for name, table in tables.items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], name
        assert props["SSESpecification"]["SSEEnabled"], name
    sessions = tables["SessionsTable"]["Properties"]
    assert sessions["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert sessions["StreamSpecification"]["StreamViewType"] in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")


@pytest.mark.parametrize("function", ["SessionExpiryFunction", "UserRetentionFunction"])
def test_stream_consumers_take_ttl_deletions_only_and_never_lose_a_batch(function: str) -> None:
    event = next(iter(TEMPLATE.resources[function]["Properties"]["Events"].values()))
    props = event["Properties"]
    pattern = props["FilterCriteria"]["Filters"][0]["Pattern"]
    assert '"principalId": ["dynamodb.amazonaws.com"]' in pattern
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_layer_requirements_match_the_package_dependencies() -> None:
    def names(lines: list[str]) -> dict[str, str]:
        parsed = {}
        for line in lines:
            line = line.split("#")[0].strip()
            if line:
                name = re.split(r"[\[<>=!~ ]", line, maxsplit=1)[0].lower()
                parsed[name] = line
        return parsed

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = (ROOT / "layers/core/requirements.txt").read_text().splitlines()
    assert names(project) == names(layer)


def test_models_project_what_the_template_projects() -> None:
    """pynamodb's index classes, the template and the index-only evaluator must agree."""
    from pynamodb.models import Model

    from insights.domain.segments import partial
    from insights.storage import models
    from insights.storage.models import LAST_SEEN_PROJECTION

    indexes = TEMPLATE.resources["UsersTable"]["Properties"]["GlobalSecondaryIndexes"]
    by_name = {index["IndexName"]: index["Projection"] for index in indexes}
    modelled = [
        index
        for kind in vars(models).values()
        if isinstance(kind, type) and issubclass(kind, Model) and kind is not Model
        if kind.Meta.table_name == models.UserItem.Meta.table_name
        for index in kind._indexes.values()
    ]
    assert {index.Meta.index_name for index in modelled} == set(by_name)
    for index in modelled:
        meta = index.Meta
        template = by_name[meta.index_name]
        assert template["ProjectionType"] == meta.projection.projection_type, meta.index_name
        assert set(template.get("NonKeyAttributes", [])) == set(
            getattr(meta.projection, "non_key_attributes", None) or []
        ), meta.index_name
    assert set(by_name["by_last_seen"]["NonKeyAttributes"]) == set(LAST_SEEN_PROJECTION)
    assert partial.STANDARD_FIELDS - {"last_seen"} == set(LAST_SEEN_PROJECTION)
