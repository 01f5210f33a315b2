"""Credentials in AWS Secrets Manager: one secret per account and use.

Names are scoped by stack, use and account (``<SECRETS_PREFIX>/salesforce/<account
id>`` for Salesforce's credentials, ``.../team/<account id>`` for the console
sign-in's client secret; the prefix is ``insights/<stack name>``), and each
function's policy allows its own use's names only. Values are read by the
functions that need them and are never returned by the API or logged.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from botocore.exceptions import ClientError


def prefix() -> str:
    return os.environ.get("SECRETS_PREFIX", "insights/local")


def name_for(integration: str, account_id: str) -> str:
    return f"{prefix()}/{integration}/{account_id}"


@cache
def _client() -> Any:
    from insights.storage import aws

    return aws.client("secretsmanager")


class SecretBusy(Exception):
    """A secret of this name was just deleted and AWS is still removing it."""


def put(name: str, value: dict[str, Any]) -> None:
    """Create the secret, or store a new version of it.

    Create first: the policy's name pattern covers a secret that does not
    exist yet for CreateSecret, and an existing one answers ResourceExists.
    """
    text = json.dumps(value, separators=(",", ":"))
    try:
        _client().create_secret(
            Name=name,
            SecretString=text,
            Description="Insights integration credentials (written by the Insights API)",
        )
        return
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "InvalidRequestException" and "deletion" in str(exc).lower():
            raise SecretBusy(name) from None
        if code != "ResourceExistsException":
            raise
    _client().put_secret_value(SecretId=name, SecretString=text)


def get(name: str) -> dict[str, Any] | None:
    try:
        text = _client().get_secret_value(SecretId=name)["SecretString"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def delete(name: str) -> None:
    """Gone at once (no recovery window): a disconnected account's credentials stay gone."""
    try:
        _client().delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
