"""The Salesforce integration end to end: the real handlers and simple-salesforce
against a Salesforce stand-in (tests/salesforce/salesforce_fake.py), Secrets Manager on moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import MINUTE, Stack
from tests.salesforce.salesforce_fake import INSTANCE, App, FakeSalesforce

PATH = "/v1/integrations/salesforce"
DAY_MS = 86_400_000
FIELDS = ["Title", "Plan__c", "Seats__c", "Active__c", "Renewal__c", "Last_Login__c"]


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "login_host": f"https://{INSTANCE}",
        "credentials": {
            "flow": "client_credentials",
            "consumer_key": "key-acme",
            "consumer_secret": "secret-acme",
        },
        "object": "Contact",
        "uuid_field": "External_Id__c",
        "fields": FIELDS,
        "rename": {"Title": "role", "Plan__c": "plan"},
        "sync_interval_minutes": 60,
    }
    base.update(overrides)
    return base


def connect(stack: Stack, account: Any, **overrides: Any) -> dict[str, Any]:
    response = stack.cloud.http("PUT", PATH, headers=stack.auth(account), body=body(**overrides))
    assert response.status in (200, 201), response.body
    return response.json()


def sync_now(stack: Stack, account: Any, **payload: Any) -> dict[str, Any]:
    response = stack.cloud.http(
        "POST", PATH + "/sync", headers=stack.auth(account), body=payload or None
    )
    assert response.status == 202, response.body
    stack.cloud.settle()
    return imported(stack, account, response.json()["id"])


def imported(stack: Stack, account: Any, import_id: str) -> dict[str, Any]:
    response = stack.cloud.http("GET", f"/v1/imports/{import_id}", headers=stack.auth(account))
    assert response.status == 200, response.body
    return response.json()


def status(stack: Stack, account: Any) -> dict[str, Any]:
    response = stack.cloud.http("GET", PATH, headers=stack.auth(account))
    assert response.status == 200, response.body
    return response.json()


def seen(stack: Stack, account: Any, *uuids: str) -> None:
    """Users whose first session has closed: imported values are visible on them."""
    stack.send(account, [{"uuid": u, "type": "click"} for u in uuids])
    stack.advance(31 * MINUTE)
    stack.sweep()


def custom(stack: Stack, account: Any, uuid: str) -> dict[str, Any]:
    response = stack.user(account, uuid)
    assert response.status == 200, response.body
    return response.json()["custom"]


def report(result: dict[str, Any]) -> str:
    return requests.get(result["error_report"]["url"], timeout=10).text


# ------------------------------------------------------------------ syncing
def test_first_sync_types_values_by_describe_and_rejects_a_record_without_uuid(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1", "u-2")
    salesforce.add_record(
        "Contact",
        External_Id__c="u-1",
        Title="CTO",
        Plan__c="Enterprise",
        Seats__c=25.0,
        Active__c=True,
        Renewal__c="2027-01-31",
        Last_Login__c="2026-11-20T08:30:00.000+0000",
        Photo__c="aGVsbG8=",
    )
    salesforce.add_record("Contact", External_Id__c="u-2", Active__c=False, Seats__c=3.5)
    empty = salesforce.add_record("Contact", External_Id__c=None, Title="Nobody")
    view = connect(stack, account)
    assert "consumer_secret" not in str(view) and "secret-acme" not in str(view)
    assert view["credentials"] == {
        "flow": "client_credentials",
        "set": True,
        "last_worked_at": None,
    }

    result = sync_now(stack, account)

    assert result["source"] == "salesforce"
    assert result["filename"] == "Contact"
    assert result["status"] == "partially_succeeded"
    assert result["rows"] == {"total": 3, "read": 3, "imported": 2, "rejected": 1, "deleted": 0}
    lines = report(result).splitlines()
    assert lines[0] == "row,column,reason"
    assert lines[1] == f"3,External_Id__c,record {empty}: empty uuid"
    first = custom(stack, account, "u-1")
    assert {k: v["value"] for k, v in first.items()} == {
        "role": "CTO",
        "plan": "Enterprise",
        "Seats__c": 25.0,
        "Active__c": True,
        "Renewal__c": "2027-01-31T00:00:00.000Z",
        "Last_Login__c": "2026-11-20T08:30:00.000Z",
    }
    assert {v["source"] for v in first.values()} == {"salesforce"}
    # The record's SystemModstamp is the time the values were true.
    assert first["role"]["updated_at"] == "2026-11-27T12:00:01.000Z"
    second = custom(stack, account, "u-2")
    assert second["Active__c"]["value"] is False and second["Seats__c"]["value"] == 3.5
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(account)).json()
    assert [i["source"] for i in listed["imports"]] == ["salesforce"]
    state = status(stack, account)["status"]
    assert state["last_success_at"] is not None and state["last_error"] is None
    assert state["watermark"] == "2026-11-27T12:00:03.000Z"
    assert state["api_calls_last_sync"] >= 3  # token, describe, count, query
    assert state["api_usage"]["limit"] == 100_000
    assert status(stack, account)["credentials"]["last_worked_at"] is not None


def test_incremental_sync_reads_only_records_changed_since_the_watermark(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1", "u-2", "u-3")
    ids = [
        salesforce.add_record("Contact", External_Id__c=f"u-{n}", Plan__c="Free") for n in (1, 2, 3)
    ]
    connect(stack, account)
    assert sync_now(stack, account)["rows"]["read"] == 3

    salesforce.edit("Contact", ids[1], Plan__c="VIP")
    salesforce.edit("Contact", ids[2], Title="Buyer")
    result = sync_now(stack, account)

    assert result["status"] == "succeeded"
    assert result["rows"] == {"total": 2, "read": 2, "imported": 2, "rejected": 0, "deleted": 0}
    assert custom(stack, account, "u-2")["plan"]["value"] == "VIP"
    assert custom(stack, account, "u-3")["role"]["value"] == "Buyer"
    assert custom(stack, account, "u-1")["plan"]["value"] == "Free"
    # Nothing changed: the next sync reads nothing and the watermark stays.
    before = status(stack, account)["status"]["watermark"]
    assert sync_now(stack, account)["rows"]["read"] == 0
    assert status(stack, account)["status"]["watermark"] == before


def test_a_sync_out_of_time_resumes_from_its_checkpoint_without_loss_or_double_count(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = stack.account()
    uuids = [f"u-{n}" for n in range(1, 8)]
    seen(stack, account, *uuids)
    for uuid in uuids:
        salesforce.add_record("Contact", External_Id__c=uuid, Seats__c=1.0)
    salesforce.page_size = 3
    # Every slice finds its time short after one batch of two records.
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "2")
    monkeypatch.setenv("IMPORT_RESERVE_MS", str(10**9))
    connect(stack, account)
    calls = stack.cloud.invocations.get("SalesforceSyncFunction", 0)
    response = stack.cloud.http("POST", PATH + "/sync", headers=stack.auth(account))
    import_id = response.json()["id"]
    stack.cloud.pump_sqs()  # runs slice after slice until the queue is empty

    result = imported(stack, account, import_id)
    assert result["status"] == "succeeded"
    assert result["rows"] == {"total": 7, "read": 7, "imported": 7, "rejected": 0, "deleted": 0}
    assert result["invocations"] == 4  # 2 + 2 + 2 + 1 records
    assert stack.cloud.invocations["SalesforceSyncFunction"] - calls == 4
    for uuid in uuids:
        assert custom(stack, account, uuid)["Seats__c"]["value"] == 1.0
    assert status(stack, account)["status"]["watermark"] == "2026-11-27T12:00:07.000Z"


def test_a_slice_that_fails_mid_way_is_run_again_and_counts_each_record_once(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = stack.account()
    uuids = [f"u-{n}" for n in range(1, 6)]
    seen(stack, account, *uuids)
    for uuid in uuids:
        salesforce.add_record("Contact", External_Id__c=uuid, Plan__c="Pro")
    salesforce.page_size = 2
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "1")
    connect(stack, account)
    # Query calls: the count, the first page, then the second page fails once.
    unavailable = [{"errorCode": "SERVER_UNAVAILABLE", "message": "try again"}]
    salesforce.fail_at = {3: (503, unavailable)}
    calls = stack.cloud.invocations.get("SalesforceSyncFunction", 0)
    response = stack.cloud.http("POST", PATH + "/sync", headers=stack.auth(account))
    import_id = response.json()["id"]
    stack.cloud.settle()

    result = imported(stack, account, import_id)
    assert not salesforce.fail_at, "the second page failed once"
    assert result["status"] == "succeeded"
    assert result["rows"] == {"total": 5, "read": 5, "imported": 5, "rejected": 0, "deleted": 0}
    assert result["invocations"] == 1  # one checkpoint: the failed try moved nothing
    assert stack.cloud.invocations["SalesforceSyncFunction"] - calls == 2
    assert all(custom(stack, account, u)["plan"]["value"] == "Pro" for u in uuids)


def test_first_sync_of_a_large_object_uses_a_bulk_query_job_then_rest(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESFORCE_BULK_THRESHOLD", "3")
    monkeypatch.setenv("SALESFORCE_BULK_PAGE_RECORDS", "2")
    account = stack.account()
    uuids = [f"u-{n}" for n in range(1, 6)]
    seen(stack, account, *uuids)
    ids = [
        salesforce.add_record(
            "Contact", External_Id__c=u, Active__c=True, Seats__c=2.0, Renewal__c="2027-03-01"
        )
        for u in uuids
    ]
    salesforce.add_record("Contact", External_Id__c=None)
    salesforce.bulk_polls = 2  # InProgress twice before JobComplete
    connect(stack, account)

    result = sync_now(stack, account)

    assert len(salesforce.bulk_jobs) == 1
    assert result["status"] == "partially_succeeded"
    assert result["rows"] == {"total": 6, "read": 6, "imported": 5, "rejected": 1, "deleted": 0}
    values = custom(stack, account, "u-3")
    assert values["Active__c"]["value"] is True  # "true" in the Bulk API's CSV
    assert values["Seats__c"]["value"] == 2
    assert values["Renewal__c"]["value"] == "2027-03-01T00:00:00.000Z"
    assert status(stack, account)["status"]["watermark"] == "2026-11-27T12:00:06.000Z"

    salesforce.edit("Contact", ids[0], Active__c=False)
    again = sync_now(stack, account)
    assert len(salesforce.bulk_jobs) == 1  # incremental: the REST query API
    assert again["rows"]["read"] == 1
    assert custom(stack, account, "u-1")["Active__c"]["value"] is False

    full = sync_now(stack, account, full=True)
    assert len(salesforce.bulk_jobs) == 2
    assert full["rows"]["read"] == 6


# ------------------------------------------------------------------- errors
def test_bad_credentials_are_named_by_test_and_fail_the_sync(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    bad = {"flow": "client_credentials", "consumer_key": "key-acme", "consumer_secret": "wrong"}
    connect(stack, account, credentials=bad)

    answer = stack.cloud.http("POST", PATH + "/test", headers=stack.auth(account))
    assert answer.status == 422
    assert answer.json()["error"] == "bad_credentials"
    assert "invalid_client" in answer.json()["message"]

    result = sync_now(stack, account)
    assert result["status"] == "failed"
    assert "invalid_client" in result["error"]
    state = status(stack, account)["status"]
    assert "invalid_client" in state["last_error"] and state["last_success_at"] is None
    assert state["watermark"] is None

    good = {**bad, "consumer_secret": "secret-acme"}
    connect(stack, account, credentials=good)
    answer = stack.cloud.http("POST", PATH + "/test", headers=stack.auth(account))
    assert answer.status == 200 and answer.json()["ok"] is True


def test_a_login_host_that_never_answers_is_unavailable_within_the_timeout(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """simple-salesforce signs in with no timeout of its own; the outbound fetcher bounds
    every call, and says the same whatever kept the answer away."""
    import socket
    import time

    from insights.services.salesforce import client as salesforce_client

    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    monkeypatch.setenv("SALESFORCE_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setattr(salesforce_client, "CALL_TIMEOUT_SECONDS", 0.5)
    try:
        account = stack.account()
        connect(stack, account)
        started = time.monotonic()
        answer = stack.cloud.http("POST", PATH + "/test", headers=stack.auth(account))
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert answer.status == 422, answer.body
    assert answer.json()["error"] == "unavailable"
    assert answer.json()["message"] == salesforce_client.UNREACHABLE
    assert elapsed < 3


def test_a_mapped_field_that_was_deleted_is_named_and_stops_the_sync_changing_nothing(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1")
    record = salesforce.add_record("Contact", External_Id__c="u-1", Plan__c="Free", Title="Dev")
    connect(stack, account)
    assert sync_now(stack, account)["status"] == "succeeded"

    del salesforce.objects["Contact"].fields["Plan__c"]
    salesforce.edit("Contact", record, Title="Lead Dev")

    answer = stack.cloud.http("POST", PATH + "/test", headers=stack.auth(account))
    assert answer.status == 422
    problems = answer.json()["problems"]
    assert [(p["code"], p.get("field")) for p in problems] == [("unknown_field", "Plan__c")]
    assert "Contact has no field Plan__c" in problems[0]["message"]
    result = sync_now(stack, account)
    assert result["status"] == "failed" and "Plan__c" in result["error"]
    assert custom(stack, account, "u-1")["role"]["value"] == "Dev"  # nothing applied
    assert custom(stack, account, "u-1")["plan"]["value"] == "Free"  # earlier values stay


def test_test_names_unknown_objects_unsupported_types_and_no_access(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    connect(stack, account)
    trial = body(object="Subscription__c")
    answer = stack.cloud.http("POST", PATH + "/test", headers=stack.auth(account), body=trial)
    assert answer.status == 422 and answer.json()["error"] == "unknown_object"

    trial = body(fields=["Title", "Photo__c"], rename={})
    answer = stack.cloud.http("POST", PATH + "/test", headers=stack.auth(account), body=trial)
    assert answer.status == 422
    assert answer.json()["problems"][0]["code"] == "unsupported_field"
    assert "Photo__c is a base64 field" in answer.json()["message"]

    salesforce.objects["Contact"].queryable = False
    answer = stack.cloud.http("POST", PATH + "/test", headers=stack.auth(account))
    assert answer.status == 422 and answer.json()["error"] == "no_access"


def test_an_expired_session_is_renewed_once_and_the_call_retried(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1")
    salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO")
    connect(stack, account)
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    salesforce.fail_queries = [(401, expired)]

    result = sync_now(stack, account)

    assert result["status"] == "succeeded"
    assert len(salesforce.token_requests) == 2
    assert custom(stack, account, "u-1")["role"]["value"] == "CTO"


def test_the_api_limit_pauses_a_sync_and_it_resumes_after_the_backoff(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = stack.account()
    seen(stack, account, "u-1", "u-2")
    salesforce.add_record("Contact", External_Id__c="u-1", Title="A")
    salesforce.add_record("Contact", External_Id__c="u-2", Title="B")
    connect(stack, account)
    salesforce.api_limit = salesforce.api_used + 2  # describe and count, then the limit

    result = sync_now(stack, account)

    assert result["status"] == "running"
    assert "REQUEST_LIMIT_EXCEEDED" in result["error"]
    state = status(stack, account)["status"]
    assert state["paused_until"] is not None and state["syncing"] is True
    stack.cloud.run_schedules()  # before the backoff: nothing resumes
    stack.cloud.settle()
    assert imported(stack, account, result["id"])["status"] == "running"

    salesforce.api_limit = 100_000
    stack.advance(3601)
    stack.cloud.run_schedules()
    stack.cloud.settle()
    done = imported(stack, account, result["id"])
    assert done["status"] == "succeeded" and done["rows"]["imported"] == 2
    assert custom(stack, account, "u-2")["role"]["value"] == "B"


def test_an_account_with_unique_user_ids_off_is_refused(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    off = stack.account("Off", unique_user_ids=False)
    response = stack.cloud.http("PUT", PATH, headers=stack.auth(off), body=body())
    assert response.status == 409 and response.json()["error"] == "unique_user_ids_off"

    account = stack.account()
    connect(stack, account)
    assert stack.patch_account(account, {"unique_user_ids": False}).status == 200
    response = stack.cloud.http("POST", PATH + "/sync", headers=stack.auth(account))
    assert response.status == 409 and response.json()["error"] == "unique_user_ids_off"
    # A scheduled sync of such an account fails, saying why, and writes nothing.
    stack.cloud.run_schedules()
    stack.cloud.settle()
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(account)).json()
    assert [(i["status"], i["source"]) for i in listed["imports"]] == [("failed", "salesforce")]
    assert "unique_user_ids is off" in listed["imports"][0]["error"]


# ----------------------------------------------------- accounts and secrets
def _rsa() -> tuple[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


def test_two_accounts_sync_with_their_own_credentials_and_flows(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    pem, public = _rsa()
    salesforce.apps["key-jwt"] = App("key-jwt", public_key=public, username="sync@globex.example")
    first, second = stack.account("Acme"), stack.account("Globex")
    seen(stack, first, "u-1")
    seen(stack, second, "u-1")
    salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO")
    connect(stack, first)
    jwt_credentials = {
        "flow": "jwt_bearer",
        "consumer_key": "key-jwt",
        "private_key": pem,
        "username": "sync@globex.example",
    }
    connect(stack, second, login_host="production", credentials=jwt_credentials, rename={})

    assert sync_now(stack, first)["status"] == "succeeded"
    assert sync_now(stack, second)["status"] == "succeeded"

    assert custom(stack, first, "u-1")["role"]["value"] == "CTO"
    assert custom(stack, second, "u-1")["Title"]["value"] == "CTO"
    grants = [(r["host"], r["grant_type"]) for r in salesforce.token_requests]
    assert ("acme.my.salesforce.com", "client_credentials") in grants
    assert ("login.salesforce.com", "urn:ietf:params:oauth:grant-type:jwt-bearer") in grants
    names = sorted(s["Name"] for s in boto3.client("secretsmanager").list_secrets()["SecretList"])
    assert names == sorted(f"insights/insights/salesforce/{a.account_id}" for a in (first, second))

    # A JWT signed with another key is refused, naming Salesforce's reason.
    other_pem, _ = _rsa()
    trial = body(login_host="production", credentials={**jwt_credentials, "private_key": other_pem})
    answer = stack.cloud.http("POST", PATH + "/test", headers=stack.auth(second), body=trial)
    assert answer.status == 422 and "invalid_grant" in answer.json()["message"]

    # Disconnecting one deletes its secret only; its imported values stay.
    assert stack.cloud.http("DELETE", PATH, headers=stack.auth(first)).status == 204
    assert stack.cloud.http("GET", PATH, headers=stack.auth(first)).status == 404
    left = [s["Name"] for s in boto3.client("secretsmanager").list_secrets()["SecretList"]]
    assert left == [f"insights/insights/salesforce/{second.account_id}"]
    assert custom(stack, first, "u-1")["role"]["value"] == "CTO"
    assert status(stack, second)["status"]["last_success_at"] is not None
    # Connecting again stores a new secret under the same name.
    again = stack.cloud.http("PUT", PATH, headers=stack.auth(first), body=body())
    assert again.status == 201 and again.json()["status"]["last_success_at"] is None


def test_the_schedule_syncs_each_connection_when_it_is_due(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1")
    record = salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO")
    connect(stack, account, sync_interval_minutes=15)
    stack.cloud.run_schedules()  # a new connection is due at once
    stack.cloud.settle()
    assert custom(stack, account, "u-1")["role"]["value"] == "CTO"

    salesforce.edit("Contact", record, Title="CEO")
    stack.advance(10 * MINUTE)
    stack.cloud.run_schedules()
    stack.cloud.settle()
    assert custom(stack, account, "u-1")["role"]["value"] == "CTO"  # not due yet
    stack.advance(6 * MINUTE)
    stack.cloud.run_schedules()
    stack.cloud.settle()
    assert custom(stack, account, "u-1")["role"]["value"] == "CEO"
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(account)).json()
    assert len(listed["imports"]) == 2


def test_put_refuses_bad_connections_naming_the_field(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    cases = [
        ({"credentials": None}, "credentials"),
        ({"login_host": "https://evil.example.com"}, "login_host"),
        ({"login_host": "production"}, "login_host"),  # client credentials need My Domain
        ({"object": "Contact; DROP"}, "object"),
        ({"fields": ["Account.Name"]}, "fields[0]"),
        ({"fields": ["External_Id__c"], "rename": {}}, "fields"),
        ({"rename": {"Nope": "x"}}, "rename.Nope"),
        ({"filter": "Plan__c = 'x') OR (Id != null"}, "filter"),
        ({"sync_interval_minutes": 5}, "sync_interval_minutes"),
        ({"credentials": {"flow": "password"}}, "credentials.flow"),
    ]
    for change, field in cases:
        response = stack.cloud.http("PUT", PATH, headers=stack.auth(account), body=body(**change))
        assert response.status == 400, (change, response.body)
        assert response.json()["field"] == field, (change, response.body)
    assert stack.cloud.http("GET", PATH, headers=stack.auth(account)).status == 404
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []


def test_a_filter_limits_the_records_synced(stack: Stack, salesforce: FakeSalesforce) -> None:
    account = stack.account()
    seen(stack, account, "u-1", "u-2")
    salesforce.add_record("Contact", External_Id__c="u-1", Plan__c="VIP", Title="A")
    salesforce.add_record("Contact", External_Id__c="u-2", Plan__c="Free", Title="B")
    connect(stack, account, filter="Plan__c = 'VIP'")
    result = sync_now(stack, account)
    assert result["rows"]["read"] == 1
    assert "role" not in custom(stack, account, "u-2")


def test_cli_sets_tests_syncs_and_deletes_the_connection(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    from urllib.parse import urlsplit

    from insights.cli import imports as cli_imports
    from insights.cli import main as cli

    account = stack.account()
    seen(stack, account, "u-1")
    salesforce.add_record("Contact", External_Id__c="u-1", Plan__c="Team")

    def api_call(method: str, url: str, key: str, payload: Any = None, timeout: float = 30):
        parts = urlsplit(url)
        if parts.path.startswith("/v1/imports/"):
            stack.cloud.settle()  # what Lambda would have run while the CLI waited
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = stack.cloud.http(
            method, path, headers={"Authorization": f"Bearer {key}"}, body=payload
        )
        return response.status, response.json()

    monkeypatch.setattr(cli_imports, "api_call", api_call)
    config = body()
    config["credentials"] = {"flow": "client_credentials", "consumer_key": "key-acme"}
    (tmp_path / "sf.json").write_text(json.dumps(config))
    monkeypatch.setenv("SF_SECRET", "secret-acme")
    target = ["--api", "http://insights.test", "--secret-key", account.secret_key]
    salesforce_cli = ["integrations", "salesforce"]
    stack.cloud.settle()
    capsys.readouterr()

    assert cli.main([*salesforce_cli, "set", "--config", str(tmp_path / "sf.json"), *target,
                     "--consumer-secret-env", "SF_SECRET"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["object"] == "Contact"
    assert cli.main([*salesforce_cli, "test", *target]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert cli.main([*salesforce_cli, "sync", *target]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert custom(stack, account, "u-1")["plan"]["value"] == "Team"
    assert cli.main([*salesforce_cli, "get", *target]) == 0
    shown = capsys.readouterr().out
    assert "secret-acme" not in shown and '"last_success_at": "' in shown
    assert cli.main([*salesforce_cli, "delete", *target]) == 0
    assert cli.main([*salesforce_cli, "get", *target]) == 1
    assert "not connected" in capsys.readouterr().err


def test_a_changed_mapping_reads_every_record_again_at_the_next_sync(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1", "u-2")
    salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO", Plan__c="VIP")
    salesforce.add_record("Contact", External_Id__c="u-2", Title="Dev", Plan__c="Free")
    connect(stack, account, fields=["Plan__c"], rename={})
    first = sync_now(stack, account)
    assert first["rows"]["read"] == 2 and first["mapping"]["fields"] == ["Plan__c"]
    assert "role" not in custom(stack, account, "u-1")

    connect(stack, account, fields=["Plan__c", "Title"], rename={"Title": "role"}, credentials=None)
    assert status(stack, account)["status"]["watermark"] is None
    again = sync_now(stack, account)

    assert again["rows"]["read"] == 2 and again["mapping"]["fields"] == ["Plan__c", "Title"]
    assert custom(stack, account, "u-1")["role"]["value"] == "CTO"
    assert custom(stack, account, "u-2")["role"]["value"] == "Dev"
    # Changing only the interval keeps the watermark.
    connect(stack, account, fields=["Plan__c", "Title"], rename={"Title": "role"},
            credentials=None, sync_interval_minutes=30)  # fmt: skip
    assert status(stack, account)["status"]["watermark"] is not None
