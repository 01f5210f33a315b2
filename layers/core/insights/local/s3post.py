"""S3's checks on a browser-based (presigned POST) upload, which moto skips.

S3 accepts a form upload only if the policy is signed with the credentials
named in the form, has not expired, and every condition holds; every form
field (except the file, the policy, the signature and x-ignore-* fields)
must be covered by a condition. See "Creating a POST policy" in the S3 API
reference.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

EXEMPT = frozenset({"file", "policy", "x-amz-signature", "signature", "awsaccesskeyid"})


def _denied(message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
    )


def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signature_ok(fields: dict[str, str], policy_b64: str, secret: str) -> bool:
    if "x-amz-signature" in fields:
        credential = fields.get("x-amz-credential", "").split("/")
        if len(credential) != 5:
            return False
        _, day, region, service, _ = credential
        expected = hmac.new(
            _signing_key(secret, day, region, service), policy_b64.encode(), hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, fields["x-amz-signature"])
    if "signature" in fields:
        expected = base64.b64encode(
            hmac.new(secret.encode(), policy_b64.encode(), hashlib.sha1).digest()
        ).decode()
        return hmac.compare_digest(expected, fields["signature"])
    return False


def check(fields: dict[str, str], *, size: int, bucket: str, secret_key: str) -> str | None:
    """None when S3 would accept the upload, else S3's AccessDenied error document."""
    fields = {k.lower() if k.lower() in EXEMPT else k: v for k, v in fields.items()}
    policy_b64 = fields.get("policy")
    if not policy_b64:
        return _denied("Invalid according to Policy: no policy")
    if not _signature_ok(fields, policy_b64, secret_key):
        return _denied(
            "The request signature we calculated does not match the signature you provided."
        )
    policy: dict[str, Any] = json.loads(base64.b64decode(policy_b64))
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if expiration < datetime.now(UTC):
        return _denied("Invalid according to Policy: Policy expired.")
    values = {**{k: v for k, v in fields.items() if k not in EXEMPT}, "bucket": bucket}
    covered = {"bucket"}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            ((name, expected),) = condition.items()
            op, name = "eq", name
        else:
            op, name, expected = condition[0].lower(), condition[1], condition[2]
        if op == "content-length-range":
            low, high = int(name), int(expected)
            if not low <= size <= high:
                return _denied(
                    "Your proposed upload exceeds the maximum allowed size"
                    if size > high
                    else "Your proposed upload is smaller than the minimum allowed size"
                )
            continue
        name = name.lstrip("$")
        covered.add(name)
        actual = values.get(name, "")
        ok = actual == expected if op == "eq" else actual.startswith(str(expected))
        if not ok:
            return _denied(
                f'Invalid according to Policy: Policy Condition failed: ["{op}", "${name}", '
                f'"{expected}"]'
            )
    for name in values:
        if name not in covered and not name.lower().startswith("x-ignore-"):
            return _denied(f"Invalid according to Policy: Extra input fields: {name}")
    return None
