"""template.yaml is valid, least-privilege and shaped as the invariants ask."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from insights.local.template import Template, rate_minutes

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.mark.parametrize(
    ("function", "pattern"),
    [
        # Every deletion of a window: TTL's and the sweeper's closes (an erasure's is marked).
        ("SessionCloseFunction", {"eventName": ["REMOVE"]}),
        # TTL deletions only: an erasure or a user deletion cascades by itself.
        (
            "UserRetentionFunction",
            {
                "eventName": ["REMOVE"],
                "userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]},
                "dynamodb": {"Keys": {"sk": {"S": ["profile"]}}},
            },
        ),
    ],
)
def test_stream_consumers_take_their_deletions_and_never_lose_a_batch(
    function: str, pattern: dict
) -> None:
    events = TEMPLATE.resources[function]["Properties"]["Events"].values()
    (props,) = [e["Properties"] for e in events if e["Type"] == "DynamoDB"]
    assert json.loads(props["FilterCriteria"]["Filters"][0]["Pattern"]) == pattern
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_models_project_what_the_template_projects() -> None:
    """pynamodb's index classes, the template and the index-only evaluator must agree."""
    from pynamodb.models import Model

    from insights.domain.segments import partial
    from insights.storage.core import models
    from insights.storage.core.models import LAST_SEEN_PROJECTION

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


# ----------------------------------------------------------------- operations
# A function added later must come with the same operational parts: copy an
# existing function's block together with its <Name>LogGroup and
# <Name>ErrorsAlarm / <Name>ThrottlesAlarm (and <Name>IteratorAgeAlarm for a
# stream consumer), and add it to the dashboard.
FUNCTIONS = TEMPLATE.of_type("AWS::Serverless::Function")
ALARMS = TEMPLATE.of_type("AWS::CloudWatch::Alarm")
NOTIFIES = [{"Ref": "AlarmTopicArn"}]


def alarms_on(namespace: str, metric: str, dimension: str, target: object) -> list[str]:
    return [
        name
        for name, alarm in ALARMS.items()
        if alarm["Properties"].get("Namespace") == namespace  # metric math alarms have none
        and alarm["Properties"]["MetricName"] == metric
        and {"Name": dimension, "Value": target} in alarm["Properties"]["Dimensions"]
    ]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_logs_to_its_own_group_with_the_retention_parameter(function: str) -> None:
    group = f"{function}LogGroup"
    props = FUNCTIONS[function]["Properties"]
    assert props.get("LoggingConfig") == {"LogGroup": {"Ref": group}}, function
    assert TEMPLATE.resources[group]["Type"] == "AWS::Logs::LogGroup"
    assert TEMPLATE.resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_lambda_platform_lines_are_off_unless_asked_for() -> None:
    """JSON logs; START/END/REPORT (~360 bytes an invocation) only at SystemLogLevel INFO."""
    logging = TEMPLATE.body["Globals"]["Function"]["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    assert logging["SystemLogLevel"] == {"Ref": "SystemLogLevel"}
    params = TEMPLATE.body["Parameters"]
    assert params["SystemLogLevel"]["Default"] == "WARN"
    assert "INFO" in params["SystemLogLevel"]["AllowedValues"]
    # The functions' own logs: WARNING by default, the same level for Powertools
    # and for Lambda's filter (which Powertools obeys when it is set).
    assert params["LogLevel"]["Default"] == "WARNING"
    levels = TEMPLATE.body["Mappings"]["ApplicationLogLevels"]
    assert logging["ApplicationLogLevel"] == {
        "Fn::FindInMap": ["ApplicationLogLevels", {"Ref": "LogLevel"}, "Level"]
    }
    assert set(levels) == set(params["LogLevel"]["AllowedValues"])
    assert levels["WARNING"] == {"Level": "WARN"}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_has_error_and_throttle_alarms(function: str) -> None:
    ref = {"Ref": function}
    assert alarms_on("AWS/Lambda", "Errors", "FunctionName", ref) == [f"{function}ErrorsAlarm"]
    assert alarms_on("AWS/Lambda", "Throttles", "FunctionName", ref) == [
        f"{function}ThrottlesAlarm"
    ]
    events = FUNCTIONS[function]["Properties"].get("Events", {}).values()
    if any(event["Type"] in ("DynamoDB", "Kinesis") for event in events):
        assert alarms_on("AWS/Lambda", "IteratorAge", "FunctionName", ref) == [
            f"{function}IteratorAgeAlarm"
        ]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_is_on_the_dashboard(function: str) -> None:
    body = TEMPLATE.resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for metric in ("Invocations", "Errors", "Throttles", "Duration"):
        assert f'["AWS/Lambda", "{metric}", "FunctionName", "${{{function}}}"]' in body, metric


def test_the_dashboard_body_is_json_once_substituted() -> None:
    body = TEMPLATE.resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    assert all(widget["properties"]["metrics"] for widget in widgets)


def test_every_alarm_notifies_the_optional_topic_both_ways() -> None:
    """An alarm exists only with a topic to notify: without one it would tell no one
    and still cost $0.10 a month (issue 18's idle stack)."""
    assert ALARMS
    for name, alarm in ALARMS.items():
        assert alarm.get("Condition") == "HasAlarmTopic", name
        assert alarm["Properties"]["AlarmActions"] == NOTIFIES, name
        assert alarm["Properties"]["OKActions"] == NOTIFIES, name
    assert TEMPLATE.body["Parameters"]["AlarmTopicArn"]["Default"] == ""


def test_every_failure_queue_has_a_depth_alarm() -> None:
    """Queues that receive what failed: on-failure destinations and dead-letter queues."""
    text = json.dumps(TEMPLATE.body["Resources"])
    queues = TEMPLATE.of_type("AWS::SQS::Queue")
    failure_queues = {
        name
        for name in queues
        if f'"Destination": {{"Fn::GetAtt": ["{name}", "Arn"]}}' in text
        or f'"deadLetterTargetArn": {{"Fn::GetAtt": ["{name}", "Arn"]}}' in text
    }
    assert {"StreamFailureQueue", "ImportsDeadLetterQueue", "SweeperFailureQueue"} <= (
        failure_queues
    )
    for queue in failure_queues:
        target = {"Fn::GetAtt": [queue, "QueueName"]}
        assert alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", target), (
            queue
        )


def test_the_sweeper_falling_behind_or_stopping_raises_an_alarm() -> None:
    from insights.services.core.sweep import OLDEST_DUE_METRIC

    globals_env = TEMPLATE.body["Globals"]["Function"]["Environment"]["Variables"]
    (name,) = alarms_on(
        globals_env["POWERTOOLS_METRICS_NAMESPACE"],
        OLDEST_DUE_METRIC,
        "service",
        globals_env["POWERTOOLS_SERVICE_NAME"],
    )
    assert ALARMS[name]["Properties"]["TreatMissingData"] == "breaching"
    # A healthy sweeper on any allowed schedule leaves no period without a
    # datapoint (missing data breaches) and reports ages under one interval.
    props = ALARMS[name]["Properties"]
    schedule = FUNCTIONS["SessionCloseFunction"]["Properties"]["Events"]["Sweep"]["Properties"]
    assert schedule["ScheduleExpression"] == {"Ref": "SweepSchedule"}
    allowed = TEMPLATE.body["Parameters"]["SweepSchedule"]["AllowedValues"]
    assert TEMPLATE.body["Parameters"]["SweepSchedule"]["Default"] in allowed
    for expression in allowed:
        interval_s = rate_minutes(expression) * 60
        assert props["Period"] >= interval_s, expression
        assert props["Threshold"] > interval_s, expression


def test_sweeper_runs_near_their_budget_raise_an_alarm_before_it_falls_behind() -> None:
    from benchmarks.scale_model import SWEEPER_RESERVE_S

    (name,) = alarms_on("AWS/Lambda", "Duration", "FunctionName", {"Ref": "SessionCloseFunction"})
    props = ALARMS[name]["Properties"]
    timeout_s = FUNCTIONS["SessionCloseFunction"]["Properties"]["Timeout"]
    budget_ms = (timeout_s - SWEEPER_RESERVE_S) * 1000
    assert (props["Statistic"], props["ComparisonOperator"]) == ("Maximum", "GreaterThanThreshold")
    assert props["Threshold"] == 0.8 * budget_ms
    # One run every 5 minutes at the default schedule: two periods are two runs.
    assert props["Period"] == 300 and props["EvaluationPeriods"] == 2


def test_the_sweeper_needs_no_reserved_concurrency_and_records_failed_runs() -> None:
    props = FUNCTIONS["SessionCloseFunction"]["Properties"]
    assert "ReservedConcurrentExecutions" not in props
    on_failure = props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["SweeperFailureQueue", "Arn"]},
    }


def test_reserved_concurrency_is_only_ever_an_opt_in_parameter() -> None:
    params = TEMPLATE.body["Parameters"]
    capped = {}
    for name, fn in FUNCTIONS.items():
        reserved = fn["Properties"].get("ReservedConcurrentExecutions")
        if reserved is None:
            continue
        condition, parameter_ref, no_value = reserved["Fn::If"]
        parameter = parameter_ref["Ref"]
        assert TEMPLATE.body["Conditions"][condition] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]
        }, name
        assert no_value == {"Ref": "AWS::NoValue"}, name
        assert params[parameter]["Default"] == "", name
        capped[name] = parameter
    assert capped == {
        "TrackFunction": "TrackReservedConcurrency",
        "ImportFunction": "ImportReservedConcurrency",
    }
    # A queue trigger above the reservation would be throttled, and throttled
    # deliveries count as receives towards the dead-letter queue.
    slices = FUNCTIONS["ImportFunction"]["Properties"]["Events"]["Slices"]["Properties"]
    assert slices["ScalingConfig"]["Fn::If"][1] == {
        "MaximumConcurrency": {"Ref": "ImportReservedConcurrency"}
    }


def test_schedules_get_stack_unique_names() -> None:
    schedules = [
        event
        for fn in FUNCTIONS.values()
        for event in fn["Properties"].get("Events", {}).values()
        if event["Type"] in ("Schedule", "ScheduleV2")
    ]
    assert schedules
    for event in schedules:
        assert event["Properties"].get("OmitName") is True and "Name" not in event["Properties"]


def test_tables_and_queues_keep_their_data_unless_the_stack_opts_out() -> None:
    assert TEMPLATE.body["Parameters"]["DataDeletionPolicy"]["Default"] == "Retain"
    assert "AWS::LanguageExtensions" in TEMPLATE.body["Transform"]
    stateful = {**TEMPLATE.of_type("AWS::DynamoDB::Table"), **TEMPLATE.of_type("AWS::SQS::Queue")}
    for name, resource in stateful.items():
        assert resource.get("DeletionPolicy") == {"Ref": "DataDeletionPolicy"}, name
        assert resource.get("UpdateReplacePolicy") == {"Ref": "DataDeletionPolicy"}, name


def test_layers_build_for_arm64_and_the_geoip_layer_is_never_empty() -> None:
    for name, layer in TEMPLATE.of_type("AWS::Serverless::LayerVersion").items():
        assert layer["Metadata"]["BuildArchitecture"] == "arm64", name
    makefile = (ROOT / "layers/geoip/Makefile").read_text()
    assert 'cp README.txt "$(ARTIFACTS_DIR)/geoip/"' in makefile
    assert (ROOT / "layers/geoip/README.txt").stat().st_size > 0


def test_api_access_log_leaves_out_the_caller_ip_and_user_agent() -> None:
    settings = TEMPLATE.resources["HttpApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(settings["Format"])
    assert fields and not any("identity" in value for value in fields.values())


def test_no_policy_the_project_writes_grants_every_resource() -> None:
    """Every IAM statement anywhere in the template (function policies, bucket policies)."""

    def walk(node: object) -> Iterator[dict]:
        if isinstance(node, dict):
            if "Effect" in node and ("Action" in node or "NotAction" in node):
                yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    found = list(walk(TEMPLATE.resources))
    assert len(found) > 10
    for statement in found:
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            assert resource != "*" and resource != "arn:aws:*", statement


def test_every_checkov_skip_gives_a_reason() -> None:
    skips = [
        (name, skip)
        for name, resource in TEMPLATE.resources.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), name
        assert len(skip.get("comment", "")) > 20, (name, skip)


def test_samconfig_deploys_without_prompts() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert deploy["resolve_s3"] is True
    assert config["default"]["global"]["parameters"]["stack_name"]


def test_the_dashboard_and_the_backlog_metric_are_opt_in() -> None:
    """$3.00 and $0.30 a month an idle stack pays only when someone watches."""
    assert TEMPLATE.resources["Dashboard"]["Condition"] == "HasDashboard"
    assert TEMPLATE.body["Outputs"]["DashboardUrl"]["Condition"] == "HasDashboard"
    assert TEMPLATE.body["Parameters"]["CreateDashboard"]["Default"] == "false"
    env = FUNCTIONS["SessionCloseFunction"]["Properties"]["Environment"]["Variables"]
    assert env["BACKLOG_METRIC"] == {"Fn::If": ["Monitored", "on", "off"]}


def test_custom_metrics_are_published_only_when_someone_watches() -> None:
    """$0.30 each a month: on with AlarmTopicArn or the dashboard, off otherwise."""
    env = TEMPLATE.body["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_METRICS_DISABLED"] == {"Fn::If": ["Monitored", "false", "true"]}
    handlers = list((ROOT / "functions").glob("*/app.py"))
    assert handlers
    for path in handlers:
        # Powertools' own decorator keeps a disabled metric set for the container's life.
        assert "@metrics.log_metrics" not in path.read_text(), path


def test_the_stream_consumers_that_bind_first_take_the_parallelization_parameter() -> None:
    # The two consumers docs/SCALE.md finds binding (the sweeper's closes,
    # an import's profile writes); Lambda keeps each key's records in order.
    param = TEMPLATE.body["Parameters"]["StreamParallelizationFactor"]
    assert (param["Default"], param["MinValue"], param["MaxValue"]) == (2, 1, 10)
    for function, event in (
        ("SessionCloseFunction", "TtlDeletions"),
        ("SegmentIndexFunction", "ProfileChanges"),
    ):
        props = FUNCTIONS[function]["Properties"]["Events"][event]["Properties"]
        assert props["ParallelizationFactor"] == {"Ref": "StreamParallelizationFactor"}


def test_slow_segment_requests_alarm_before_api_gateway_gives_up() -> None:
    """Counts answer in parts after COUNT_BUDGET_S, so a healthy count's requests stay
    under the alarm; one slower than it is on its way to the API's 30 s."""
    from insights.services.segments.counts import COUNT_BUDGET_S

    (name,) = alarms_on("AWS/Lambda", "Duration", "FunctionName", {"Ref": "SegmentsFunction"})
    props = ALARMS[name]["Properties"]
    assert name == "SegmentsFunctionDurationAlarm" and props["ExtendedStatistic"] == "p99"
    assert COUNT_BUDGET_S * 1000 + 2_000 <= props["Threshold"] <= 25_000


def test_a_throttle_of_a_table_or_any_of_its_indexes_raises_an_alarm() -> None:
    # A GSI that cannot keep up throttles its base table's writes: imports,
    # backfills and closes slow down before any quota is near (docs/SCALE.md).
    for table, alarm in (
        ("UsersTable", "UsersTableThrottlesAlarm"),
        ("SessionsTable", "SessionsTableThrottlesAlarm"),
    ):
        props = ALARMS[alarm]["Properties"]
        watched = set()
        for metric in props["Metrics"]:
            if "MetricStat" not in metric:
                continue
            stat = metric["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in stat["Dimensions"]}
            assert dims["TableName"] == {"Ref": table}
            watched.add((stat["MetricName"], dims.get("GlobalSecondaryIndexName")))
        indexes = TEMPLATE.resources[table]["Properties"].get("GlobalSecondaryIndexes", [])
        expected = {("WriteThrottleEvents", None), ("ReadThrottleEvents", None)}
        expected |= {("WriteThrottleEvents", i["IndexName"]) for i in indexes}
        assert watched == expected, table
        expression = next(m["Expression"] for m in props["Metrics"] if m.get("ReturnData"))
        ids = {m["Id"] for m in props["Metrics"] if "MetricStat" in m}
        assert all(f"FILL({i}, 0)" in expression for i in ids)
        assert (props["Threshold"], props["ComparisonOperator"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
        )
