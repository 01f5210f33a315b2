"""The Salesforce integration's parts: config rules, SOQL, record typing, layer, IAM, imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from insights.domain.core.attributes import Rejection, Row
from insights.domain.core.sessions import Retraction, Stamped
from insights.domain.salesforce.connection import (
    ConfigError,
    Connection,
    check_filter,
    parse_connection,
    parse_login_host,
)
from insights.domain.salesforce.records import (
    Cursor,
    bulk_query,
    check_describe,
    count_query,
    incremental_query,
    plan_for,
    record_row,
)
from tests.conftest import T0_MS, Stack
from tests.deploy.test_cold_start import modules_after_import

ROOT = Path(__file__).resolve().parents[2]
DESCRIBE = {
    "name": "Contact",
    "queryable": True,
    "fields": [
        {"name": n, "type": t}
        for n, t in [
            ("Id", "id"),
            ("Email", "email"),
            ("Plan__c", "picklist"),
            ("Seats__c", "currency"),
            ("VIP__c", "boolean"),
            ("Since__c", "date"),
            ("Seen__c", "datetime"),
            ("Where__c", "address"),
            ("SystemModstamp", "datetime"),
        ]
    ],
}


def connection(**overrides: object) -> Connection:
    body = {
        "login_host": "https://acme.my.salesforce.com",
        "credentials": {"flow": "client_credentials", "consumer_key": "k", "consumer_secret": "s"},
        "object": "Contact",
        "uuid_field": "email",  # API names are case-insensitive
        "fields": ["Plan__c", "Seats__c", "VIP__c", "Since__c", "Seen__c"],
        "rename": {"Plan__c": "plan"},
        **overrides,
    }
    return parse_connection(body, flow=None)[0]


def test_login_hosts_and_the_jwt_audience() -> None:
    assert (parse_login_host("production").domain, parse_login_host("production").audience) == (
        "login",
        "login",
    )
    assert parse_login_host("sandbox").domain == "test"
    mine = parse_login_host("https://Acme.my.salesforce.com/")
    assert (mine.domain, mine.audience, mine.is_my_domain) == ("acme.my", "login", True)
    sandbox = parse_login_host("acme--dev.sandbox.my.salesforce.com")
    assert (sandbox.domain, sandbox.audience) == ("acme--dev.sandbox.my", "test")
    bad_hosts = ("https://acme.lightning.force.com", "login.salesforce.com.evil.io", "", None)
    for bad in (*bad_hosts, "https://[", "[::1"):  # urlparse's ValueError was a 500
        with pytest.raises(ConfigError, match="login_host"):
            parse_login_host(bad)
    # A port or user was dropped without a word; a path (a pasted Lightning page) is not
    # the host's business and still reads as the host.
    for bad in ("https://acme.my.salesforce.com:8443", "https://u@acme.my.salesforce.com"):
        with pytest.raises(ConfigError, match="without a port or user"):
            parse_login_host(bad)
    pasted = parse_login_host("https://acme.my.salesforce.com/lightning/page/home")
    assert pasted.domain == "acme.my"


def test_a_connection_without_credentials_keeps_the_stored_ones_but_not_a_first_time() -> None:
    body = {
        "login_host": "production",
        "object": "Lead",
        "uuid_field": "Email",
        "fields": ["Status"],
    }
    with pytest.raises(ConfigError, match="credentials: required"):
        parse_connection(body, flow=None)
    kept, credentials = parse_connection(body, flow="jwt_bearer")
    assert credentials is None and kept.flow == "jwt_bearer"
    with pytest.raises(ConfigError, match="My Domain"):
        parse_connection(body, flow="client_credentials")
    jwt = {"flow": "jwt_bearer", "consumer_key": "k", "username": "u", "private_key": "nope"}
    with pytest.raises(ConfigError, match=r"credentials\.private_key"):
        parse_connection({**body, "credentials": jwt}, flow=None)


def test_a_rename_that_is_not_an_object_is_refused_even_when_empty() -> None:
    """`or {}` read [], "", 0 and false as no renames: a wrong shape passed unnoticed."""
    assert connection(rename=None).rename == {}
    for bad in ([], [["Plan__c", "plan"]], "", 0, False):
        with pytest.raises(ConfigError, match="rename: must be an object"):
            connection(rename=bad)


def test_filters_cannot_escape_their_parentheses() -> None:
    assert check_filter(" Status = 'Open (new)' ") == "Status = 'Open (new)'"
    assert check_filter("Name = 'O\\'Brien' AND (A = 1 OR B = 2)")
    for bad in ("A = 1) OR (B = 2", "A = 'x", "(A = 1", "A = 1; DELETE"):
        with pytest.raises(ConfigError, match="filter"):
            check_filter(bad)


def test_queries_page_by_systemmodstamp_then_id() -> None:
    conn = connection(filter="Plan__c = 'VIP'")
    cursor = Cursor(T0_MS, "003000000000001AAA")
    assert incremental_query(conn, cursor) == (
        "SELECT Id, SystemModstamp, email, Plan__c, Seats__c, VIP__c, Since__c, Seen__c "
        "FROM Contact WHERE (Plan__c = 'VIP') AND (SystemModstamp > 2026-11-28T12:00:00.000Z "
        "OR (SystemModstamp = 2026-11-28T12:00:00.000Z AND Id > '003000000000001AAA')) "
        "ORDER BY SystemModstamp, Id"
    )
    assert incremental_query(connection(), None).endswith(
        "FROM Contact ORDER BY SystemModstamp, Id"
    )
    assert count_query(conn, None) == "SELECT COUNT() FROM Contact WHERE (Plan__c = 'VIP')"
    assert "ORDER BY" not in bulk_query(conn)
    with pytest.raises(ValueError):
        incremental_query(conn, Cursor(T0_MS, "x' OR Id != '"))


def test_describe_problems_are_named_per_field() -> None:
    conn = connection(fields=["Plan__c", "Gone__c", "Where__c"], rename={})
    problems = check_describe(conn, DESCRIBE)
    assert [(p.code, p.field) for p in problems] == [
        ("unknown_field", "Gone__c"),
        ("unsupported_field", "Where__c"),
    ]
    hidden = {**DESCRIBE, "queryable": False}
    assert check_describe(connection(), hidden)[0].code == "no_access"


def test_records_are_typed_by_describe_and_stamped_with_their_systemmodstamp() -> None:
    conn = connection()
    plan = plan_for(conn, DESCRIBE)
    record = {
        "attributes": {"type": "Contact"},
        "Id": "003000000000001AAA",
        "Email": "ada@example.com",
        "Plan__c": "VIP",
        "Seats__c": 12.5,
        "VIP__c": False,
        "Since__c": "2025-01-31",
        "Seen__c": "2026-11-20T08:30:00.000+0000",
        "SystemModstamp": "2026-11-27T10:00:00.000+0000",
    }
    row, cursor = record_row(7, record, plan, now_ms=T0_MS)
    assert isinstance(row, Row) and row.uuid == "ada@example.com" and row.number == 7
    stamp = 1_795_773_600_000  # 2026-11-27T10:00:00Z
    assert cursor == Cursor(stamp, "003000000000001AAA")
    assert {k: (v.value, v.ts) for k, v in row.values.items()} == {
        "plan": ("VIP", stamp),
        "Seats__c": (12.5, stamp),
        "VIP__c": (False, stamp),
        "Since__c": ("2025-01-31T00:00:00.000Z", stamp),
        "Seen__c": ("2026-11-20T08:30:00.000Z", stamp),
    }
    # The Bulk API's CSV: every value is text, and null is an empty cell. A null
    # field withdraws what Salesforce set (stamped when the record changed).
    csv_record = {**{k: str(v) for k, v in record.items()}, "VIP__c": "true", "Seats__c": ""}
    row, _ = record_row(8, csv_record, plan, now_ms=T0_MS)
    assert isinstance(row, Row) and row.values["VIP__c"].value is True
    assert row.values["Seats__c"] == Retraction(None, stamp)
    row, _ = record_row(8, {**record, "Plan__c": None}, plan, now_ms=T0_MS)
    assert isinstance(row, Row) and row.values["plan"] == Retraction(None, stamp)
    assert row.values["Seats__c"] == Stamped(12.5, stamp)
    # A field the record does not carry (not selected) is not a null.
    partial = {k: v for k, v in record.items() if k != "Since__c"}
    row, _ = record_row(8, partial, plan, now_ms=T0_MS)
    assert isinstance(row, Row) and "Since__c" not in row.values
    rejected, _ = record_row(9, {**record, "Email": None}, plan, now_ms=T0_MS)
    assert rejected == Rejection(9, "Email", "record 003000000000001AAA: empty uuid")
    bad, _ = record_row(10, {**record, "Seats__c": "lots"}, plan, now_ms=T0_MS)
    assert isinstance(bad, Rejection) and bad.column == "Seats__c" and "not a number" in bad.reason
    undated, cursor = record_row(11, {**record, "SystemModstamp": None}, plan, now_ms=T0_MS)
    assert isinstance(undated, Rejection) and cursor is None


def test_only_the_test_route_loads_the_salesforce_client() -> None:
    api = modules_after_import(ROOT / "functions" / "integrations_api" / "app.py")
    assert "insights.services.salesforce.connection" in api
    assert not api & {"simple_salesforce", "zeep", "lxml", "requests"}
    sync = modules_after_import(ROOT / "functions" / "salesforce_sync" / "app.py")
    assert "simple_salesforce" in sync


def test_secrets_are_granted_under_the_stacks_prefix_only(stack: Stack) -> None:
    from insights.local.iam import AccessDenied

    iam, arn_of = stack.cloud.iam, stack.cloud.arn_of
    own = {"SecretId": "insights/insights/salesforce/acc_1"}
    iam.check("SalesforceSyncFunction", "secretsmanager", "GetSecretValue", own, arn_of)
    create = {"Name": own["SecretId"]}
    iam.check("IntegrationsApiFunction", "secretsmanager", "CreateSecret", create, arn_of)
    with pytest.raises(AccessDenied, match="secretsmanager:GetSecretValue"):
        other = {"SecretId": "insights/other-stack/salesforce/acc_1"}
        iam.check("SalesforceSyncFunction", "secretsmanager", "GetSecretValue", other, arn_of)
    with pytest.raises(AccessDenied, match="secretsmanager:DeleteSecret"):
        iam.check("SalesforceSyncFunction", "secretsmanager", "DeleteSecret", own, arn_of)
    with pytest.raises(AccessDenied, match="secretsmanager:GetSecretValue"):
        iam.check("ImportFunction", "secretsmanager", "GetSecretValue", own, arn_of)
