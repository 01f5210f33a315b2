"""The SDK's server side on the local stack: the served script, identity
verification (secret, setting, per-event check) and targeting segments."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from insights.domain.core.identity import ROTATION_GRACE_MS
from insights.sdk.routes import SCRIPT
from tests.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
SIZE_LIMIT = 8 * 1024  # gzipped bytes (docs/sdk.md)


def sign(secret: str, uuid: str) -> str:
    return hmac.new(secret.encode(), uuid.encode(), hashlib.sha256).hexdigest()


def rotate(stack: Stack, account: Any) -> dict[str, Any]:
    response = stack.cloud.http("POST", "/v1/account/identity/secret", headers=stack.auth(account))
    assert response.status == 201, response.body
    return response.json()


def verification(stack: Stack, account: Any, on: Any) -> Any:
    return stack.cloud.http(
        "PATCH", "/v1/account/identity", headers=stack.auth(account), body={"verification": on}
    )


def sdk_segments(stack: Stack, key: str, uuid: str, user_hash: str | None) -> Any:
    query = {"key": key, "uuid": uuid} | ({"user_hash": user_hash} if user_hash else {})
    return stack.cloud.function_url("TrackFunction", "GET", f"/v1/sdk/segments?{urlencode(query)}")


# ------------------------------------------------------------------ script
def test_the_script_is_small_enough_gzipped() -> None:
    source = SCRIPT.read_bytes()
    size = len(gzip.compress(source, compresslevel=9))
    print(f"insights.js: {len(source)} bytes, {size} bytes gzipped (limit {SIZE_LIMIT})")
    assert size <= SIZE_LIMIT


@pytest.mark.parametrize("via", ["function_url", "api"])
def test_the_stack_serves_the_script_cacheable_and_versioned(stack: Stack, via: str) -> None:
    def get(headers: dict[str, str] | None = None) -> Any:
        if via == "api":
            return stack.cloud.http("GET", "/v1/sdk/insights.js", headers=headers)
        return stack.cloud.function_url(
            "TrackFunction", "GET", "/v1/sdk/insights.js", headers=headers
        )

    response = get()
    assert response.status == 200
    assert response.body == SCRIPT.read_text()
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "max-age=300" in response.headers["cache-control"]
    assert response.headers["x-insights-sdk-version"] == "1.1.0"
    etag = response.headers["etag"]
    again = get({"If-None-Match": etag})
    assert (again.status, again.body) == (304, "")


@pytest.mark.parametrize("via", ["function_url", "api"])
def test_the_script_honours_weak_and_listed_tags_and_answers_head(stack: Stack, via: str) -> None:
    def send(method: str, headers: dict[str, str] | None = None) -> Any:
        if via == "api":
            return stack.cloud.http(method, "/v1/sdk/insights.js", headers=headers)
        return stack.cloud.function_url(
            "TrackFunction", method, "/v1/sdk/insights.js", headers=headers
        )

    full = send("GET")
    etag = full.headers["etag"]
    # A CDN that compresses the script marks its tag weak; browsers send back a
    # list when they hold several copies. If-None-Match compares weakly.
    for held in (f"W/{etag}", f'"old", {etag}', f'W/"old",W/{etag}', "*"):
        answer = send("GET", {"If-None-Match": held})
        assert (answer.status, answer.body, answer.headers["etag"]) == (304, "", etag), held
    for other in ('"old"', f'W/{etag[:-2]}"', etag.strip('"')):
        assert send("GET", {"If-None-Match": other}).status == 200, other
    head = send("HEAD")
    assert (head.status, head.body) == (200, "")
    assert {k: head.headers[k] for k in ("content-type", "etag", "cache-control")} == {
        k: full.headers[k] for k in ("content-type", "etag", "cache-control")
    }
    assert head.headers["x-insights-sdk-version"] == "1.1.0"
    assert send("HEAD", {"If-None-Match": f"W/{etag}"}).status == 304


# Every header Segment's libraries send (read from analytics-next 1.84,
# analytics-node 3.1 and analytics-python 2.4): a retry adds X-Retry-Count,
# analytics-python's gzip adds Content-Encoding.
SEGMENT_HEADERS = (
    "authorization",
    "content-type",
    "content-encoding",
    "user-agent",
    "x-retry-count",
)


@pytest.mark.parametrize("via", ["function_url", "api"])
def test_cors_preflights_allow_every_header_a_segment_library_sends(stack: Stack, via: str) -> None:
    asked = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ",".join((*SEGMENT_HEADERS, "x-insights-key")),
    }
    if via == "api":
        answer = stack.cloud.http("OPTIONS", "/v1/t", headers=asked)
    else:
        answer = stack.cloud.function_url("TrackFunction", "OPTIONS", "/v1/t", headers=asked)
    assert answer.status == 204
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert set(SEGMENT_HEADERS) | {"x-insights-key"} <= allowed
    assert "POST" in answer.headers["access-control-allow-methods"]


def test_other_methods_and_paths_still_reach_the_events_route(stack: Stack) -> None:
    account = stack.account()
    wrong = stack.cloud.function_url("TrackFunction", "POST", "/v1/sdk/insights.js")
    assert wrong.status == 401  # a POST anywhere is the events route, as before
    body = {"events": [{"uuid": "u1"}]}
    sent = stack.cloud.function_url(
        "TrackFunction", "POST", f"/v1/events?key={account.write_key}", body=body
    )
    assert sent.json()["accepted"] == 1


# ----------------------------------------------------- identity verification
def test_secret_is_shown_once_and_verification_needs_one(stack: Stack) -> None:
    account = stack.account()
    shown = stack.cloud.http("GET", "/v1/account/identity", headers=stack.auth(account))
    assert shown.json() == {
        "verification": False,
        "secret_created_at": None,
        "previous_secret_valid_until": None,
    }
    refused = verification(stack, account, True)
    assert (refused.status, refused.json()["error"]) == (409, "no_identity_secret")
    assert verification(stack, account, "yes").json()["error"] == "invalid_setting"
    created = rotate(stack, account)
    assert created["identity_secret"].startswith("is_")
    assert verification(stack, account, True).json()["verification"] is True
    shown = stack.cloud.http("GET", "/v1/account/identity", headers=stack.auth(account))
    assert created["identity_secret"] not in shown.body
    assert shown.json()["verification"] is True and shown.json()["secret_created_at"]
    write_key = {"Authorization": f"Bearer {account.write_key}"}
    as_write_key = stack.cloud.http("POST", "/v1/account/identity/secret", headers=write_key)
    assert as_write_key.status == 403


def test_unverified_events_are_rejected_one_by_one(stack: Stack, caplog: Any, capsys: Any) -> None:
    # The functions' own logs (Powertools logs JSON to stdout) never carry the secret.
    caplog.set_level(logging.DEBUG, logger="insights")
    account = stack.account()
    secret = rotate(stack, account)["identity_secret"]
    good = {"uuid": "ada", "user_hash": sign(secret, "ada"), "user_properties": {"role": "admin"}}
    events = [
        good,
        {"uuid": "victim", "user_properties": {"role": "admin"}},  # no hash
        {"uuid": "victim", "user_hash": sign(secret, "ada")},  # someone else's hash
        {"uuid": "ada", "user_hash": "xyz"},  # not a hash at all
    ]
    before = stack.send(account, events).json()  # verification off: hashes are not needed
    assert before["accepted"] == 3 and before["rejected"][0]["field"] == "events[3].user_hash"
    assert verification(stack, account, True).status == 200
    after = stack.send(account, events).json()
    assert after["accepted"] == 1
    assert [(r["index"], r["error"]) for r in after["rejected"]] == [
        (1, "unverified_user"),
        (2, "unverified_user"),
        (3, after["rejected"][2]["error"]),
    ]
    assert "64 hexadecimal" in after["rejected"][2]["error"]
    # The secret key marks a server-side sender: trusted without hashes.
    trusted = stack.cloud.http(
        "POST",
        "/v1/events",
        headers={"X-Insights-Key": account.secret_key},
        body={"events": [{"uuid": "victim", "user_properties": {"role": "viewer"}}]},
    )
    assert trusted.json() == {"accepted": 1, "late": 0, "rejected": []}
    assert secret not in caplog.text + capsys.readouterr().out


def test_a_rotated_secret_keeps_the_old_one_valid_for_a_day(stack: Stack) -> None:
    account = stack.account()
    old = rotate(stack, account)["identity_secret"]
    verification(stack, account, True)
    new = rotate(stack, account)
    assert new["previous_secret_valid_until"] is not None
    from insights.services.core import identity

    identity._cache.clear()
    events = [{"uuid": "u", "user_hash": sign(old, "u")}]
    events.append({"uuid": "u", "user_hash": sign(new["identity_secret"], "u")})
    assert stack.send(account, events).json()["accepted"] == 2
    stack.advance(ROTATION_GRACE_MS / 1000 + 1)
    identity._cache.clear()
    answer = stack.send(account, events).json()
    assert answer["accepted"] == 1 and answer["rejected"][0]["index"] == 0


def test_cli_rotates_the_secret_and_switches_verification(stack: Stack, capsys: Any) -> None:
    from insights.cli.main import main

    account = stack.account()
    assert main(["identity", "verification", "on", "--account", account.account_id]) == 2
    assert "identity secret first" in capsys.readouterr().err
    assert main(["identity", "rotate", "--account", account.account_id, "--json"]) == 0
    secret = json.loads(capsys.readouterr().out)["identity_secret"]
    assert main(["identity", "verification", "on", "--account", account.account_id]) == 0
    capsys.readouterr()
    from insights.services.core import identity

    identity._cache.clear()
    answer = stack.send(account, [{"uuid": "c", "user_hash": sign(secret, "c")}, {"uuid": "d"}])
    assert answer.json()["accepted"] == 1


# -------------------------------------------------------- targeting segments
def _segment(stack: Stack, account: Any, name: str, role: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "rules": {"attribute": "custom.role", "op": "equals", "value": role}}
    response = stack.cloud.http(
        "POST", "/v1/segments", headers=stack.auth(account), body=body | extra
    )
    assert response.status == 201, response.body
    return response.json()


def test_targeting_flag_defaults_to_false_and_is_validated(stack: Stack) -> None:
    account = stack.account()
    plain = _segment(stack, account, "plain", "admin")
    assert plain["targeting"] is False
    shown = _segment(stack, account, "shown", "admin", targeting=True)
    assert shown["targeting"] is True
    bad = stack.cloud.http(
        "POST",
        "/v1/segments",
        headers=stack.auth(account),
        body={"name": "x", "rules": {"attribute": "city", "op": "is_set"}, "targeting": "yes"},
    )
    assert (bad.status, bad.json()["path"]) == (400, "targeting")
    listed = stack.cloud.http("GET", f"/v1/segments/{shown['id']}", headers=stack.auth(account))
    assert listed.json()["targeting"] is True


def test_browser_segments_only_for_a_verified_user_and_only_targeting(stack: Stack) -> None:
    account = stack.account()
    secret = rotate(stack, account)["identity_secret"]
    wanted = _segment(stack, account, "admins", "admin", targeting=True)["id"]
    _segment(stack, account, "admins, internal", "admin")
    _segment(stack, account, "viewers", "viewer", targeting=True)
    stack.send(account, [{"uuid": "ada", "user_properties": {"role": "admin"}}])
    stack.advance(31 * 60)
    stack.sweep()
    stack.cloud.settle()
    answer = sdk_segments(stack, account.write_key, "ada", sign(secret, "ada"))
    assert answer.status == 200, answer.body
    assert answer.json() == {"uuid": "ada", "segments": [wanted]}
    assert answer.headers["cache-control"] == "private, max-age=10"
    for forged in (None, sign(secret, "bob"), "0" * 64):
        refused = sdk_segments(stack, account.write_key, "ada", forged)
        assert (refused.status, refused.json()["error"]) == (403, "unverified_user")
        assert refused.headers["cache-control"] == "no-store"
    missing = sdk_segments(stack, account.write_key, "", None)
    assert missing.status == 400
    unknown = sdk_segments(stack, "wk_nope", "ada", sign(secret, "ada"))
    assert unknown.status == 401
    via_api = stack.cloud.http(
        "GET",
        "/v1/sdk/segments",
        query={"key": account.write_key, "uuid": "ada", "user_hash": sign(secret, "ada")},
    )
    assert via_api.json()["segments"] == [wanted]


def test_browser_segments_refuse_a_secret_key_in_the_url_and_a_bad_uuid(stack: Stack) -> None:
    """Only the write key travels in a URL; a server sends the secret key in the header."""
    account = stack.account()
    _segment(stack, account, "admins", "admin", targeting=True)
    in_url = sdk_segments(stack, account.secret_key, "ada", None)
    assert (in_url.status, in_url.json()["error"]) == (403, "secret_key_in_url")
    assert account.secret_key not in in_url.body
    in_header = stack.cloud.function_url(
        "TrackFunction",
        "GET",
        "/v1/sdk/segments?uuid=ada",
        headers={"X-Insights-Key": account.secret_key},
    )
    assert (in_header.status, in_header.json()) == (200, {"uuid": "ada", "segments": []})
    # A uuid no user can have is a 400 before any read, as on /v1/users/{uuid}
    # (DynamoDB refuses a key over 2 KB; moto does not, so this asserts the 400).
    too_long = stack.cloud.function_url(
        "TrackFunction",
        "GET",
        "/v1/sdk/segments?uuid=" + "x" * 3000,
        headers={"X-Insights-Key": account.secret_key},
    )
    assert (too_long.status, too_long.json()["error"]) == (400, "invalid_uuid")


# ---------------------------------------------------------- JS unit tests
def test_sdk_unit_tests_pass_under_node() -> None:
    node = shutil.which("node")
    assert node, "node (20+) is needed for the SDK's unit tests: apt-get install nodejs"
    done = subprocess.run(
        [node, "--test", *map(str, sorted((ROOT / "tests" / "js").glob("*.test.mjs")))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
