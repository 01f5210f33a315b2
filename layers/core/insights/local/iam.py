"""Least privilege, checked: every AWS call a function makes locally must be
allowed by that function's policies in template.yaml, as IAM would demand.

moto does not enforce IAM for Lambda roles, so without this a missing
permission shows up only after deployment. The local cloud denies such calls
with AccessDeniedException, the way AWS would, so every test that runs a
handler also tests its policy.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# SAM policy templates this project uses: actions on one resource kind.
_TEMPLATES: dict[str, tuple[tuple[str, ...], str]] = {
    "SQSSendMessagePolicy": (("sqs:SendMessage*",), "queue"),
    "S3ReadPolicy": (
        (
            "s3:GetObject",
            "s3:ListBucket",
            "s3:GetBucketLocation",
            "s3:GetObjectVersion",
            "s3:GetLifecycleConfiguration",
        ),
        "bucket",
    ),
    "S3CrudPolicy": (
        (
            "s3:GetObject",
            "s3:ListBucket",
            "s3:GetBucketLocation",
            "s3:GetObjectVersion",
            "s3:PutObject",
            "s3:PutObjectAcl",
            "s3:GetLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
            "s3:DeleteObject",
        ),
        "bucket",
    ),
    "S3WritePolicy": (
        ("s3:PutObject", "s3:PutObjectAcl", "s3:PutLifecycleConfiguration"),
        "bucket",
    ),
    "DynamoDBReadPolicy": (
        (
            "dynamodb:GetItem",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
        ),
        "table",
    ),
    "DynamoDBCrudPolicy": (
        (
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:PutItem",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
            "dynamodb:ConditionCheckItem",
        ),
        "table",
    ),
}
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_S3_ACTIONS = {
    "HeadObject": "GetObject",
    "ListObjectsV2": "ListBucket",
    "ListObjects": "ListBucket",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
}


@dataclass(frozen=True)
class Grant:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    # A `dynamodb:LeadingKeys` condition: the partition keys the grant is for.
    leading_keys: tuple[str, ...] | None = None

    def allows(self, action: str, resource: str, keys: list[str] | None = None) -> bool:
        # As IAM's ForAllValues: every key the call touches must match; a call
        # whose keys are not known (a scan) matches no such grant.
        if self.leading_keys is not None and (
            not keys
            or not all(any(fnmatch.fnmatchcase(k, p) for p in self.leading_keys) for k in keys)
        ):
            return False
        return any(fnmatch.fnmatchcase(action, a) for a in self.actions) and any(
            fnmatch.fnmatchcase(resource, r) or resource == r for r in self.resources
        )


class AccessDenied(Exception):
    pass


class PolicyChecker:
    def __init__(
        self,
        policies: dict[str, list[Any]],
        arn_of: Callable[[str, str], str],
        resolve: Callable[[Any], Any],
    ) -> None:
        """policies: function -> its template Policies; arn_of(kind, name) builds ARNs."""
        self.grants = {
            fn: [g for p in items for g in self._grants(p, arn_of, resolve)]
            for fn, items in policies.items()
        }

    @staticmethod
    def _grants(
        policy: Any, arn_of: Callable[[str, str], str], resolve: Callable[[Any], Any]
    ) -> Iterable[Grant]:
        if not isinstance(policy, dict):
            raise ValueError(f"policy {policy!r}: only statements and templates are supported")
        if "Statement" in policy:
            for statement in policy["Statement"]:
                if statement.get("Effect", "Allow") != "Allow":
                    continue
                actions = statement["Action"]
                resources = resolve(statement["Resource"])
                yield Grant(
                    tuple(actions if isinstance(actions, list) else [actions]),
                    tuple(resources if isinstance(resources, list) else [resources]),
                    _leading_keys(statement.get("Condition")),
                )
            return
        for name, args in policy.items():
            if name not in _TEMPLATES:
                raise ValueError(f"SAM policy template {name} is not known to the local cloud")
            actions, kind = _TEMPLATES[name]
            args = resolve(args)
            target = next(iter(args.values()))
            base = arn_of(kind, target)
            extra = (f"{base}/*",) if kind in ("bucket", "table") else ()
            yield Grant(actions, (base, *extra))

    def check(
        self,
        function: str,
        service: str,
        operation: str,
        params: dict[str, Any],
        arn_of: Callable[[str, str], str],
    ) -> None:
        keys = _partition_keys(service, params)
        for action, resource in _requirements(service, operation, params, arn_of):
            if not any(g.allows(action, resource, keys) for g in self.grants.get(function, [])):
                raise AccessDenied(
                    f"{function} is not authorized to perform {action} on {resource}: "
                    "add it to the function's Policies in template.yaml"
                )


def _leading_keys(condition: dict[str, Any] | None) -> tuple[str, ...] | None:
    """The keys of a `ForAllValues:StringLike` `dynamodb:LeadingKeys` condition, if any."""
    keys = (condition or {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
    if keys is None:
        return None
    return tuple(keys if isinstance(keys, list) else [keys])


def _partition_keys(service: str, params: dict[str, Any]) -> list[str] | None:
    """The partition keys a DynamoDB item call touches (what LeadingKeys conditions test):
    one for GetItem, PutItem, ...; every key of a BatchGetItem."""
    if service != "dynamodb":
        return None
    items = [params.get("Key") or params.get("Item") or {}]
    for request in (params.get("RequestItems") or {}).values():
        if isinstance(request, dict):
            items = [*items, *request.get("Keys", [])]
    keys = [i["pk"]["S"] for i in items if isinstance(i.get("pk"), dict) and "S" in i["pk"]]
    return keys or None


def _requirements(
    service: str, operation: str, params: dict[str, Any], arn_of: Callable[[str, str], str]
) -> list[tuple[str, str]]:
    if service == "dynamodb":
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", arn_of("table", t)) for t in params["RequestItems"]]
        if operation in ("TransactWriteItems", "TransactGetItems"):
            needed = []
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                needed.append(
                    (f"dynamodb:{_TRANSACT_ACTIONS[kind]}", arn_of("table", body["TableName"]))
                )
            return needed
        if "TableName" in params:
            resource = arn_of("table", params["TableName"])
            if params.get("IndexName"):
                resource += f"/index/{params['IndexName']}"
            return [(f"dynamodb:{operation}", resource)]
        return [(f"dynamodb:{operation}", "*")]
    if service == "s3" and operation == "DeleteObjects":
        bucket = arn_of("bucket", params["Bucket"])
        return [("s3:DeleteObject", f"{bucket}/{o['Key']}") for o in params["Delete"]["Objects"]]
    if service == "s3":
        action = f"s3:{_S3_ACTIONS.get(operation, operation)}"
        bucket = arn_of("bucket", params.get("Bucket", "*"))
        if "Key" in params and action != "s3:ListBucket":
            return [(action, f"{bucket}/{params['Key']}")]
        return [(action, bucket)]
    if service == "sqs":
        return [
            (f"sqs:{operation}", arn_of("queue", params.get("QueueUrl", "*").rsplit("/", 1)[-1]))
        ]
    if service == "events" and operation == "PutEvents":
        buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries", [])}
        return [
            ("events:PutEvents", b if b.startswith("arn:") else arn_of("events", f"event-bus/{b}"))
            for b in sorted(buses)
        ]
    if service == "lambda" and operation == "Invoke":
        name = str(params["FunctionName"])
        return [
            (
                "lambda:InvokeFunction",
                name if name.startswith("arn:") else arn_of("lambda", f"function:{name}"),
            )
        ]
    if service == "secretsmanager":
        return [(f"secretsmanager:{operation}", _secret_arn(params, arn_of))]
    return [(f"{service}:{operation}", "*")]


def _secret_arn(params: dict[str, Any], arn_of: Callable[[str, str], str]) -> str:
    """A secret's ARN as IAM sees it: by name, with the random suffix AWS appends."""
    secret = str(params.get("SecretId") or params.get("Name") or "*")
    if secret.startswith("arn:"):
        return secret
    return arn_of("secretsmanager", f"secret:{secret}-AbCdEf")
