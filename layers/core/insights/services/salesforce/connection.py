"""The Salesforce connection: connect, read, test, disconnect, and start a sync.

The connection lives in IntegrationsTable and its credentials in Secrets
Manager (``storage.secrets``); the API never returns them. A sync is an
import job (``source: salesforce``) in ImportsTable, so ``GET /v1/imports``
shows it with the same counters and error report as a file; it runs in
slices on SalesforceSyncFunction (``services.salesforce_sync``). Only
``test`` talks to Salesforce here, and it imports the client lazily: reading
or saving a connection does not load simple-salesforce.
"""

from __future__ import annotations

import json
import os
from typing import Any

from insights import clock
from insights.domain.core.timefmt import format_time
from insights.domain.salesforce.connection import (
    ConfigError,
    Connection,
    Credentials,
    parse_connection,
)
from insights.domain.salesforce.records import Problem, check_describe, count_query
from insights.services.core.attributes import NO_USER_RECORDS
from insights.services.imports import jobs as import_jobs
from insights.storage.core import secrets
from insights.storage.core.accounts import Account
from insights.storage.imports import jobs, objects
from insights.storage.imports.jobs import Job
from insights.storage.salesforce import connections as integrations
from insights.storage.salesforce.connections import Integration

SOURCE = "salesforce"


class Refused(Exception):
    """The request cannot be done as asked: (status, code, message, details)."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _require_user_records(account: Account) -> None:
    if not account.settings.unique_user_ids:
        raise Refused(409, "unique_user_ids_off", NO_USER_RECORDS)


def _connected(account: Account) -> Integration:
    found = integrations.get(account.account_id)
    if found is None:
        raise Refused(404, "not_connected", "Salesforce is not connected for this account")
    return found


# ------------------------------------------------------------------ connect
def connect(account: Account, body: Any) -> tuple[dict[str, Any], bool]:
    """PUT: save the connection (and new credentials); (view, whether it is new)."""
    _require_user_records(account)
    existing = integrations.get(account.account_id)
    stored_flow = existing.connection["flow"] if existing else None
    connection, credentials = parse_connection(body, flow=stored_flow)
    check_private_key(credentials)
    name = secrets.name_for(SOURCE, account.account_id)
    if credentials is not None:
        try:
            secrets.put(name, {"flow": credentials.flow, **credentials.values})
        except secrets.SecretBusy:
            raise Refused(
                409,
                "secret_being_deleted",
                "the credentials of the last connection are still being deleted: "
                "try again in a minute",
            ) from None
    # A changed mapping reads every record again at the next sync (new
    # fields and names must reach records that did not change since).
    reset = existing is None or any(
        existing.connection.get(key) != connection.as_dict()[key]
        for key in ("login_host", "object", "uuid_field", "fields", "rename", "filter")
    )
    integrations.save_connection(
        account.account_id, connection.as_dict(), name, clock.now_ms(), reset=reset
    )
    saved = integrations.get(account.account_id)
    assert saved is not None
    return public(saved), existing is None


def public(found: Integration) -> dict[str, Any]:
    """The connection as the API shows it: never the credentials themselves."""
    usage = None
    if found.api_used is not None and found.api_limit is not None:
        usage = {"used": found.api_used, "limit": found.api_limit}
    watermark = found.watermark
    return {
        **found.connection,
        "credentials": {
            "flow": found.connection["flow"],
            "set": True,
            "last_worked_at": format_time(found.credentials_worked_at),
        },
        "status": {
            "syncing": found.running is not None,
            "current_import_id": found.running,
            "last_import_id": found.last_import_id,
            "last_success_at": format_time(found.last_success_at),
            "last_error": found.last_error,
            "last_error_at": format_time(found.last_error_at),
            "next_sync_at": format_time(found.next_due_at),
            "paused_until": format_time(found.resume_at),
            "watermark": format_time(int(watermark[0])) if watermark else None,
            "api_calls_last_sync": found.api_calls,
            "api_usage": usage,
        },
        "created_at": format_time(found.created_at),
        "updated_at": format_time(found.updated_at),
    }


def read(account: Account) -> dict[str, Any]:
    return public(_connected(account))


def status(account: Account) -> dict[str, Any]:
    """Whether the account is connected, and the connection when it is."""
    found = integrations.get(account.account_id)
    return (
        {"configured": False}
        if found is None
        else {"configured": True, "connection": public(found)}
    )


def disconnect(account: Account) -> None:
    """Forget the connection and delete its secret; imported values stay."""
    found = _connected(account)
    secrets.delete(found.secret_name)
    integrations.delete(account.account_id)


def check_private_key(credentials: Credentials | None) -> None:
    """The JWT flow's key must be one Salesforce can verify: an RSA private key, unencrypted.

    Checked when it is given (a 400 naming the field) rather than at the
    first sign-in, where it failed every sync. cryptography comes with
    SalesforceLayer; it is imported only when a key is sent.
    """
    if credentials is None or credentials.flow != "jwt_bearer":
        return
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    where = "credentials.private_key"
    try:
        key = load_pem_private_key(credentials.values["private_key"].encode(), password=None)
    except TypeError:
        raise ConfigError(where, "is encrypted: give the key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            where,
            "cannot be read as a PEM private key (-----BEGIN PRIVATE KEY----- or "
            "-----BEGIN RSA PRIVATE KEY-----, with the base64 body as openssl wrote it)",
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(where, "must be an RSA key: the JWT bearer flow signs with RS256")


# --------------------------------------------------------------------- test
def stored_credentials(found: Integration) -> Credentials:
    value = secrets.get(found.secret_name)
    if not value or value.get("flow") != found.connection["flow"]:
        raise Refused(
            409, "credentials_missing", "no credentials are stored: PUT them with the connection"
        )
    flow = value.pop("flow")
    return Credentials(flow, {k: str(v) for k, v in value.items()})


def test(account: Account, body: Any) -> dict[str, Any]:
    """Sign in and check the mapping against the object's describe; nothing is imported.

    Without a body the saved connection is tested; with one (a PUT body),
    that connection is, with its credentials or the saved ones.
    """
    existing = integrations.get(account.account_id)
    if body:
        connection, credentials = parse_connection(
            body, flow=existing.connection["flow"] if existing else None
        )
        check_private_key(credentials)
        if credentials is None:
            assert existing is not None
            credentials = stored_credentials(existing)
    else:
        if existing is None:
            raise Refused(404, "not_connected", "Salesforce is not connected for this account")
        connection = Connection.from_dict(existing.connection)
        credentials = stored_credentials(existing)
    from insights.services.salesforce.client import Client, SalesforceProblem

    client = Client(connection.login_host, credentials)
    problems: list[Problem] = []
    describe: dict[str, Any] = {}
    matching = None
    try:
        client.login()
        if existing is not None and not body:
            integrations.record_worked(account.account_id, clock.now_ms())
        describe = client.describe(connection.object)
        problems = check_describe(connection, describe)
        if not problems:
            matching = client.count(count_query(connection, None))
    except SalesforceProblem as exc:
        problems.append(Problem(exc.code, exc.message))
    answer: dict[str, Any] = {
        "ok": not problems,
        "problems": [
            {"code": p.code, "message": p.message, **({"field": p.field} if p.field else {})}
            for p in problems
        ],
        "object": connection.object,
        "records_matching": matching,
        "api_calls": client.calls,
        "api_usage": {"used": client.usage[0], "limit": client.usage[1]} if client.usage else None,
    }
    if describe and not problems:
        types = {f["name"].lower(): f.get("type") for f in describe.get("fields") or []}
        answer["fields"] = {
            f: {"attribute": connection.attribute(f), "salesforce_type": types[f.lower()]}
            for f in connection.fields
        }
    return answer


# --------------------------------------------------------------------- sync
def request_sync(account: Account, *, full: bool) -> dict[str, Any]:
    """POST .../sync: start a sync now (a full re-read with `full`)."""
    _require_user_records(account)
    found = _connected(account)
    if found.running is not None:
        raise Refused(
            409,
            "sync_running",
            "a sync is running; follow it in GET /v1/imports/{id}",
            import_id=found.running,
        )
    if full:
        integrations.request_now(account.account_id, clock.now_ms(), full=True)
        found.full_sync = True
    job = start(found, clock.now_ms())
    if job is None:
        raise Refused(409, "sync_running", "a sync has just started", import_id=None)
    return import_jobs.public(job)


def start(found: Integration, now: int) -> Job | None:
    """Claim the connection for a new sync, register its job and queue its first slice."""
    connection = found.connection
    import_id = import_jobs.new_import_id(now)
    interval_ms = int(connection["sync_interval_minutes"]) * 60_000
    if not integrations.claim(found.account_id, import_id, now + interval_ms):
        return None
    # The job keeps the connection it started with: a PUT during the sync
    # applies from the next one.
    summary = {**connection, "full": found.full_sync or not found.watermark}
    job = Job(
        account_id=found.account_id,
        import_id=import_id,
        status="pending",
        source=SOURCE,
        filename=str(connection["object"]),
        bucket=objects.bucket_name(),
        object_key=f"salesforce/{connection['object']}",
        mapping=summary,
        created_at=now,
        expires_at=(now + import_jobs.retention_days() * 86_400_000) // 1000,
        phase="sync",
        checkpoint={"at": now},
    )
    jobs.create_job(job)
    queue(job)
    return job


def queue(job: Job, *, delay_seconds: int = 0) -> None:
    """One message per slice, like file imports: it names the checkpoint it continues."""
    from insights.storage import aws

    aws.client("sqs").send_message(
        QueueUrl=os.environ["SALESFORCE_QUEUE_URL"],
        MessageBody=json.dumps(
            {"account_id": job.account_id, "import_id": job.import_id, "offset": job.offset},
            separators=(",", ":"),
        ),
        DelaySeconds=max(0, min(900, delay_seconds)),
    )
