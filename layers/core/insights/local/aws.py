"""The AWS account the local stack plays: its region, account id, stack and ARNs."""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/insights/local"
PSEUDO_PARAMETERS = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackId": STACK_ID,
    "AWS::StackName": "insights",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}

# What every function sees besides the template's own variables.
BASE_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    # Lets the outbound fetcher reach loopback over plain http (a test IdP, the
    # Salesforce stand-in); the template never sets it, so deployed code refuses.
    "INSIGHTS_LOCAL_STACK": "1",
}


def arn_of(kind: str, name: str) -> str:
    if kind == "table":
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
    if kind == "bucket":
        return f"arn:aws:s3:::{name}"
    return f"arn:aws:{kind}:{REGION}:{ACCOUNT_ID}:{name}"


def client(service: str) -> Any:
    """The local cloud's own client of a service, one per process and endpoint.

    Creating a botocore client is half of a test stack's start; moto's mock
    intercepts an existing client's calls as well as a new one's.
    """
    return _client(service, os.environ.get("AWS_ENDPOINT_URL"))


@functools.cache
def _client(service: str, endpoint: str | None) -> Any:
    return boto3.client(service, region_name=REGION)
