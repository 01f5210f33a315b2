"""The local cloud enforces each function's template policies, as IAM would."""

from __future__ import annotations

import sys

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Stack


def check(stack: Stack, function: str, operation: str, params: dict) -> None:
    stack.cloud.iam.check(function, "dynamodb", operation, params, stack.cloud.arn_of)


def test_granted_calls_pass_and_others_are_denied(stack: Stack) -> None:
    from insights.local.iam import AccessDenied

    check(stack, "SessionCloseFunction", "Scan", {"TableName": "SessionsTable"})
    check(
        stack,
        "TrackFunction",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "SessionsTable"}},
                {"Put": {"TableName": "UsersTable"}},
            ]
        },
    )
    with pytest.raises(AccessDenied, match="dynamodb:Scan"):
        check(stack, "TrackFunction", "Scan", {"TableName": "UsersTable"})
    with pytest.raises(AccessDenied, match=r"dynamodb:Scan on [^ ]*table/UsersTable:"):
        check(stack, "SessionCloseFunction", "Scan", {"TableName": "UsersTable"})
    with pytest.raises(AccessDenied, match="AccountsTable"):
        check(stack, "SessionCloseFunction", "GetItem", {"TableName": "AccountsTable"})


def test_a_handler_making_an_ungranted_call_fails_like_on_aws(stack: Stack, monkeypatch) -> None:
    acme = stack.account()
    reports: list[str] = []
    monkeypatch.setattr(stack.cloud, "_on_error", reports.append)
    module = sys.modules[stack.cloud.handler("TrackFunction").__module__]

    def nosy(*args, **kwargs):
        import boto3

        boto3.client("dynamodb", region_name="us-east-1").scan(TableName="UsersTable")

    monkeypatch.setattr(module, "ingest", nosy)
    assert stack.send(acme, [{"uuid": "u"}]).status == 500
    assert "not authorized to perform dynamodb:Scan" in reports[0]


def test_calls_outside_an_invocation_are_not_checked(stack: Stack) -> None:
    import boto3

    try:
        boto3.client("dynamodb", region_name="us-east-1").scan(TableName="UsersTable")
    except ClientError as exc:  # pragma: no cover - would mean tests cannot set up data
        pytest.fail(str(exc))


def test_a_nested_invocation_restores_the_outer_functions_identity(stack: Stack) -> None:
    from insights.local import lambdas

    seen: list[object] = []

    def outer(event, context):
        stack.cloud.invoke("SessionCloseFunction", {})
        seen.append(lambdas._current.get())

    from dataclasses import replace

    module = type(sys)("outer")
    module.handler = outer  # type: ignore[attr-defined]
    stack.cloud._modules["Outer"] = module
    stack.cloud.functions["Outer"] = replace(
        stack.cloud.functions["SessionCloseFunction"], logical_id="Outer", handler="app.handler"
    )
    stack.cloud.invoke("Outer", {})
    assert seen == [(stack.cloud, "Outer")]


def test_leading_keys_conditions_hold_a_function_to_its_items(stack: Stack) -> None:
    """ExportFunction may read keys and accounts for the API and its own job records, and
    write only job records: nothing else of AccountsTable (template.yaml's conditions)."""
    from insights.local.iam import AccessDenied

    def item(pk: str) -> dict:
        return {"TableName": "AccountsTable", "Key": {"pk": {"S": pk}}}

    for pk in ("key#abc", "acct#acc_1", "export#acc_1#exp_1"):
        check(stack, "ExportFunction", "GetItem", item(pk))
    check(
        stack,
        "ExportFunction",
        "PutItem",
        {"TableName": "AccountsTable", "Item": {"pk": {"S": "export#a#b"}}},
    )
    both = {"AccountsTable": {"Keys": [{"pk": {"S": "acct#a"}}, {"pk": {"S": "ident#a"}}]}}
    check(stack, "ExportFunction", "BatchGetItem", {"RequestItems": both})
    with pytest.raises(AccessDenied, match="GetItem"):
        check(stack, "ExportFunction", "GetItem", item("seg#acc_1"))
    one_more = {"AccountsTable": {"Keys": [{"pk": {"S": "acct#a"}}, {"pk": {"S": "seg#a"}}]}}
    with pytest.raises(AccessDenied, match="BatchGetItem"):
        check(stack, "ExportFunction", "BatchGetItem", {"RequestItems": one_more})
    with pytest.raises(AccessDenied, match="PutItem"):
        check(
            stack,
            "ExportFunction",
            "PutItem",
            {"TableName": "AccountsTable", "Item": {"pk": {"S": "acct#a"}}},
        )
    with pytest.raises(AccessDenied, match="PutItem"):
        check(stack, "ExportFunction", "PutItem", {"TableName": "AccountsTable"})  # key unknown
