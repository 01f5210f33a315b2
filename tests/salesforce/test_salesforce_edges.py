"""What a real Salesforce does that the first integration missed (issues 24.5, 24.7, 25.1-5).

Against the stand-in (tests/salesforce/salesforce_fake.py), which answers as
Salesforce's public API does: a busy token endpoint, the words of its OAuth
errors, queryAll and the recycle bin.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from insights import clock, outbound
from insights.domain.core.sessions import Stamped
from insights.domain.imports.files import Row
from insights.services.core.attributes import write_attributes
from insights.services.salesforce import client as salesforce_client
from insights.storage.core.accounts import get_account
from tests.conftest import Stack
from tests.salesforce.salesforce_fake import BUSY, UNAVAILABLE_PAGE, App, FakeSalesforce
from tests.salesforce.test_salesforce import (
    PATH,
    _rsa,
    body,
    connect,
    custom,
    imported,
    seen,
    status,
    sync_now,
)


def try_test(stack: Stack, account: Any, **payload: Any) -> Any:
    """POST .../test (with a PUT body, or none for the saved connection)."""
    return stack.cloud.http("POST", PATH + "/test", headers=stack.auth(account), body=payload)


# ------------------------------------------------------ 25.1: a busy sign-in
def test_a_busy_token_endpoint_is_unavailable_and_retried_never_bad_credentials(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1")
    salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO")
    connect(stack, account)

    # POST .../test: one 500 "retry your request" is tried again at once.
    salesforce.token_failures = [BUSY]
    answer = try_test(stack, account)
    assert answer.status == 200 and answer.json()["ok"] is True, answer.body
    # Busy on every try: unavailable, in Salesforce's words, never bad_credentials.
    salesforce.token_failures = [BUSY, UNAVAILABLE_PAGE, BUSY]
    answer = try_test(stack, account)
    assert answer.status == 422, answer.body
    assert answer.json()["error"] == "unavailable"
    assert "unknown_error: retry your request" in answer.json()["message"]
    assert "refused the credentials" not in answer.json()["message"]

    # A scheduled sync: the slice is delivered again and then succeeds.
    before = len(salesforce.token_requests)
    salesforce.token_failures = [BUSY, UNAVAILABLE_PAGE, BUSY, UNAVAILABLE_PAGE]
    stack.cloud.run_schedules()
    stack.cloud.settle()
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(account)).json()
    assert [i["status"] for i in listed["imports"]] == ["succeeded"], listed
    assert len(salesforce.token_requests) - before == 5  # 3 tries, then 2 on the redelivery
    assert custom(stack, account, "u-1")["role"]["value"] == "CTO"
    assert status(stack, account)["status"]["last_error"] is None


# -------------------------------------------- 25.2: Salesforce's own words
@pytest.mark.filterwarnings("ignore::UserWarning")  # simple-salesforce's self-authorize hint
def test_sign_in_errors_carry_salesforces_error_description(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    wrong = {"flow": "client_credentials", "consumer_key": "key-acme", "consumer_secret": "no"}
    connect(stack, account, credentials=wrong)
    answer = try_test(stack, account)
    assert answer.status == 422 and answer.json()["error"] == "bad_credentials"
    message = answer.json()["message"]
    assert message == (
        "Salesforce refused the credentials: invalid_client: invalid client credentials"
    )
    result = sync_now(stack, account)
    assert result["status"] == "failed" and "{content}" not in result["error"]
    assert result["error"].endswith("invalid_client: invalid client credentials")

    # The JWT flow's invalid_grant causes are told apart by these words.
    pem, public = _rsa()
    salesforce.apps["key-jwt"] = App("key-jwt", public_key=public, username="sync@acme.example")
    trial = body(
        login_host="production",
        credentials={
            "flow": "jwt_bearer",
            "consumer_key": "key-jwt",
            "private_key": pem,
            "username": "someone-else@acme.example",
        },
    )
    answer = try_test(stack, account, **trial)
    assert answer.status == 422
    assert answer.json()["message"].endswith("invalid_grant: user hasn't approved this consumer")


# ------------------------------------------------ 24.7: the JWT private key
def test_an_unreadable_private_key_is_refused_at_put_naming_the_field(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    pem, _ = _rsa()
    garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"
    cut = pem[: len(pem) // 2] + "\n-----END PRIVATE KEY-----\n"
    for bad in (garbage, cut):
        credentials = {
            "flow": "jwt_bearer",
            "consumer_key": "key-jwt",
            "private_key": bad,
            "username": "sync@acme.example",
        }
        sent = body(login_host="production", credentials=credentials)
        response = stack.cloud.http("PUT", PATH, headers=stack.auth(account), body=sent)
        assert response.status == 400, response.body
        assert response.json()["field"] == "credentials.private_key"
        assert "PEM private key" in response.json()["message"]
        trial = try_test(stack, account, **sent)
        assert trial.status == 400 and trial.json()["field"] == "credentials.private_key"
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []


def test_a_stored_unreadable_key_is_bad_credentials_not_a_crash(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    """A key stored before the check (older deployments) fails sign-in with a reason."""
    from insights.storage.core import secrets

    pem, public = _rsa()
    salesforce.apps["key-jwt"] = App("key-jwt", public_key=public, username="sync@acme.example")
    credentials = {
        "flow": "jwt_bearer",
        "consumer_key": "key-jwt",
        "private_key": pem,
        "username": "sync@acme.example",
    }
    account = stack.account()
    connect(stack, account, login_host="production", credentials=credentials)
    name = secrets.name_for("salesforce", account.account_id)
    garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----"
    secrets.put(name, {**credentials, "private_key": garbage})

    answer = try_test(stack, account)
    assert answer.status == 422, answer.body
    assert answer.json()["error"] == "bad_credentials"
    assert "private key" in answer.json()["message"]
    result = sync_now(stack, account)
    assert result["status"] == "failed" and "private key" in result["error"]
    assert result["invocations"] == 1  # failed at once, not after 5 crashed attempts


# ------------------------------------------------ 25.3: when a sync finished
def test_finished_at_is_when_a_one_slice_sync_really_finished(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1")
    salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO")
    connect(stack, account)
    queries: list[int] = []

    def slow() -> None:  # the count answers at once, the records take 167 s
        queries.append(1)
        if len(queries) == 2:
            clock.advance(167)

    salesforce.on_query = slow

    result = sync_now(stack, account)

    assert result["status"] == "succeeded" and result["invocations"] == 1
    assert len(queries) == 2
    assert result["duration_seconds"] == 167.0


# ------------------------------------ 25.4: released with the final record
def test_no_reader_sees_a_finished_sync_whose_connection_is_still_claimed(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After every DynamoDB write of the sync, a reader of the job and the connection
    (POST .../sync reads the connection) never finds the job finished and the
    connection still naming it: that was a 409 sync_running for a finished job."""
    import os

    from pynamodb.connection.base import Connection

    account = stack.account()
    seen(stack, account, "u-1")
    salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO")
    connect(stack, account)
    raw = stack.cloud.dynamodb  # the local cloud's own client: no function's policy applies
    seen_states: list[tuple[str, str | None]] = []
    real = Connection.dispatch

    def dispatch(self: Connection, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        answer = real(self, operation, kwargs)
        if operation in ("UpdateItem", "TransactWriteItems", "PutItem"):
            link = raw.get_item(
                TableName=os.environ["INTEGRATIONS_TABLE"],
                Key={"pk": {"S": account.account_id}, "sk": {"S": "salesforce"}},
                ConsistentRead=True,
            ).get("Item", {})
            running = link.get("running", {}).get("S")
            jobs = raw.query(
                TableName=os.environ["IMPORTS_TABLE"],
                KeyConditionExpression="pk = :a",
                ExpressionAttributeValues={":a": {"S": account.account_id}},
                ConsistentRead=True,
            )["Items"]
            for job in jobs:
                if job.get("phase", {}).get("S") == "done":
                    seen_states.append((job["sk"]["S"].removeprefix("job#"), running))
        return answer

    monkeypatch.setattr(Connection, "dispatch", dispatch)
    first = sync_now(stack, account)
    monkeypatch.setattr(Connection, "dispatch", real)

    assert first["status"] == "succeeded"
    assert seen_states, "the job's final record was observed"
    assert all(running != job_id for job_id, running in seen_states), seen_states
    again = stack.cloud.http("POST", PATH + "/sync", headers=stack.auth(account))
    assert again.status == 202, again.body


# ------------------------------------------------------ 25.5: deletions
def test_a_record_deleted_in_salesforce_clears_the_values_it_set(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1", "u-2", "u-3")
    gone = salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO", Plan__c="VIP")
    salesforce.add_record("Contact", External_Id__c="u-2", Title="Dev", Plan__c="Free")
    shared = salesforce.add_record("Contact", External_Id__c="u-3", Title="Ops", Plan__c="Pro")
    connect(stack, account)
    assert sync_now(stack, account)["rows"]["deleted"] == 0

    # Another source sets u-3's plan after Salesforce did: it is not Salesforce's to clear.
    later = Row(0, "u-3", {"plan": Stamped("Enterprise", clock.now_ms() + 1)})
    write_attributes(get_account(account.account_id), [later], "import")
    salesforce.delete("Contact", gone)
    salesforce.delete("Contact", shared)
    salesforce.add_record("Contact", External_Id__c=None, Title="Nobody")  # no uuid: rejected
    result = sync_now(stack, account)

    assert result["status"] == "partially_succeeded", result["error"]
    assert result["rows"] == {"total": 3, "read": 3, "imported": 0, "rejected": 1, "deleted": 2}
    assert salesforce.query_paths[-1] == "queryAll"
    cleared = custom(stack, account, "u-1")
    assert cleared["role"]["value"] is None and cleared["plan"]["value"] is None
    assert cleared["role"]["source"] == "salesforce"
    assert cleared["role"]["updated_at"] == "2026-11-27T12:00:04.000Z"  # the deletion's stamp
    assert custom(stack, account, "u-2")["role"]["value"] == "Dev"  # untouched
    third = custom(stack, account, "u-3")
    assert third["role"]["value"] is None
    assert (third["plan"]["value"], third["plan"]["source"]) == ("Enterprise", "import")
    # A sync that reads nothing new changes nothing.
    assert sync_now(stack, account)["rows"]["read"] == 0


@pytest.mark.parametrize("bulk", [False, True], ids=["rest", "bulk"])
def test_a_field_cleared_in_salesforce_clears_the_value_it_set(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    if bulk:  # the Bulk API's CSV says null with an empty cell
        monkeypatch.setenv("SALESFORCE_BULK_THRESHOLD", "1")
    account = stack.account()
    seen(stack, account, "u-1", "u-2")
    ada = salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO", Plan__c="VIP")
    bob = salesforce.add_record("Contact", External_Id__c="u-2", Title="Dev", Plan__c="Pro")
    connect(stack, account)
    assert sync_now(stack, account)["rows"]["imported"] == 2
    # Another source sets u-2's role after Salesforce did: not Salesforce's to clear.
    later = Row(0, "u-2", {"role": Stamped("Lead", clock.now_ms() + 1)})
    write_attributes(get_account(account.account_id), [later], "import")
    salesforce.edit("Contact", ada, Plan__c=None)
    salesforce.edit("Contact", bob, Title=None, Plan__c=None)

    result = sync_now(stack, account, full=bulk)

    assert result["status"] == "succeeded", result["error"]
    assert result["rows"] == {"total": 2, "read": 2, "imported": 2, "rejected": 0, "deleted": 0}
    ada_now = custom(stack, account, "u-1")
    assert (ada_now["plan"]["value"], ada_now["plan"]["source"]) == (None, "salesforce")
    assert ada_now["role"]["value"] == "CTO"  # still set in Salesforce
    bob_now = custom(stack, account, "u-2")
    assert bob_now["plan"]["value"] is None
    assert (bob_now["role"]["value"], bob_now["role"]["source"]) == ("Lead", "import")
    # Cleared values match the spec's "is not set" in a segment, like any null.
    rules = {"attribute": "custom.plan", "op": "is_set"}
    response = stack.cloud.http(
        "POST", "/v1/segments/preview", headers=stack.auth(account), body={"rules": rules}
    )
    assert response.status == 200, response.body
    assert response.json()["count"] == 0


def test_a_full_bulk_sync_reads_the_recycle_bin_with_a_query_all_job(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESFORCE_BULK_THRESHOLD", "1")
    account = stack.account()
    seen(stack, account, "u-1", "u-2")
    first = salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO")
    salesforce.add_record("Contact", External_Id__c="u-2", Title="Dev")
    salesforce.add_record("Contact", External_Id__c="u-3", Title="Ops")
    connect(stack, account)
    assert sync_now(stack, account)["rows"]["imported"] == 3
    salesforce.delete("Contact", first)

    result = sync_now(stack, account, full=True)

    assert [job.operation for job in salesforce.bulk_jobs.values()] == ["queryAll", "queryAll"]
    assert result["rows"] == {"total": 3, "read": 3, "imported": 2, "rejected": 0, "deleted": 1}
    assert custom(stack, account, "u-1")["role"]["value"] is None
    assert custom(stack, account, "u-2")["role"]["value"] == "Dev"


def test_an_object_without_is_deleted_is_read_with_query(
    stack: Stack, salesforce: FakeSalesforce
) -> None:
    account = stack.account()
    seen(stack, account, "u-1")
    del salesforce.objects["Contact"].fields["IsDeleted"]
    salesforce.add_record("Contact", External_Id__c="u-1", Title="CTO")
    connect(stack, account)
    result = sync_now(stack, account)
    assert result["status"] == "succeeded" and result["rows"]["imported"] == 1
    assert "queryAll" not in salesforce.query_paths


# ------------------------------------------------- 24.5: the outbound rules
def test_salesforce_calls_go_through_the_outbound_fetcher(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployed, the stand-in's plain-http loopback address is refused like any other
    inner address: nothing reaches it, and the answer is the one 'unavailable' text."""
    account = stack.account()
    connect(stack, account)
    monkeypatch.delenv(outbound.LOCAL_STACK_ENV, raising=False)

    answer = try_test(stack, account)

    assert answer.status == 422, answer.body
    assert answer.json()["error"] == "unavailable"
    assert answer.json()["message"] == salesforce_client.UNREACHABLE
    assert salesforce.calls == []


def test_a_salesforce_answer_over_the_size_cap_is_refused(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = stack.account()
    uuids = [f"u-{n}" for n in range(30)]
    seen(stack, account, *uuids)
    for uuid in uuids:  # a page of about 12 KB
        salesforce.add_record("Contact", External_Id__c=uuid, Title="T" * 200)
    connect(stack, account)
    monkeypatch.setattr(salesforce_client, "MAX_ANSWER_BYTES", 4000, raising=False)
    answer = try_test(stack, account)
    assert answer.status == 200  # token, describe and count are small
    result = sync_now(stack, account)
    # The page of records is over the cap on every try: unavailable, retried, then given up.
    assert result["status"] == "failed" and "failed attempts" in result["error"]
    assert imported(stack, account, result["id"])["rows"]["imported"] == 0
    assert "role" not in custom(stack, account, "u-1")
