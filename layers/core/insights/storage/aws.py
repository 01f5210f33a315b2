"""One botocore session and one DynamoDB client per Lambda container, shared.

pynamodb gives every model class a Connection of its own, and every
Connection its own botocore session and client, made on the class's first
request: 70-200 ms of CPU each on a new container, paid again for every model
a function touches (issue 26; benchmarks/first_call.py measures it). pynamodb
has no option to share one (its issues #876, #1245); it reads the client from
its Connection's ``client`` property, so ``share()`` hands each model class a
Connection whose client is this module's. boto3 clients (SQS, S3, Secrets
Manager) come from the same botocore session, so credentials, endpoints and
the service models' loader are resolved once.

On Lambda (AWS_LAMBDA_FUNCTION_NAME is set) the session and the DynamoDB
client are made at import, inside INIT; elsewhere (tests, the local stack,
the CLI) on first use, when the environment (moto, credentials) is set up.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import botocore.client
import botocore.session
from pynamodb.connection import Connection
from pynamodb.models import Model
from pynamodb.settings import get_settings_value

from insights.config import load

_lock = threading.Lock()
_session: botocore.session.Session | None = None
_dynamodb: Any = None
_clients: dict[tuple[str, str], Any] = {}
_boto3: Any = None  # the boto3 Session over _session

ON_LAMBDA = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
# What the models' Meta asks of a connection (storage/core/models.py): fewer
# retries and, on Lambda, short timeouts, so the stream's or the client's own
# retry takes over. Elsewhere (the CLI, the local stack on a busy laptop) a
# slow answer is waited for: a timed-out write retried is a second write.
MAX_RETRY_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 2 if ON_LAMBDA else 10
READ_TIMEOUT_SECONDS = 5 if ON_LAMBDA else 60
# Connections kept open to DynamoDB: the sweeper's scan segments and its closes
# in flight (services/core/sweep.py) are 16 requests at once. pynamodb's
# default (10) would open and drop a connection, a TLS handshake, per extra
# request; an idle slot costs nothing.
MAX_POOL_CONNECTIONS = 16


def session() -> botocore.session.Session:
    with _lock:
        return _session_unlocked()


def _session_unlocked() -> botocore.session.Session:
    global _session
    if _session is None:
        _session = botocore.session.get_session()
    return _session


def dynamodb() -> Any:
    """The container's DynamoDB client, configured as pynamodb configures its own."""
    global _dynamodb
    client = _dynamodb
    # botocore caches empty credentials in a client (pynamodb's Connection.client
    # says why): a client made without any is made again.
    if client is None or (client._request_signer and not client._request_signer._credentials):
        config = botocore.client.Config(
            parameter_validation=False,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            max_pool_connections=max(
                MAX_POOL_CONNECTIONS, get_settings_value("max_pool_connections")
            ),
            retries={"total_max_attempts": 1 + MAX_RETRY_ATTEMPTS, "mode": "standard"},
        )
        made = session().create_client("dynamodb", load().region, config=config)
        with _lock:
            if _dynamodb is client:
                _dynamodb = made
            client = _dynamodb
    return client


def client(service: str, **config: Any) -> Any:
    """A boto3 client of the shared session, one per service and configuration."""
    global _boto3
    key = (service, repr(sorted(config.items())))
    found = _clients.get(key)
    if found is None:
        import boto3  # only where a boto3 client is needed (benchmarks, part 2)
        from botocore.config import Config

        with _lock:
            # One boto3 session: each new one registers boto3's handlers on the
            # botocore session again (a second S3 client then fails to build).
            if _boto3 is None:
                _boto3 = boto3.Session(botocore_session=_session_unlocked())
            boto = _boto3
        made = boto.client(service, config=Config(**config) if config else None)
        with _lock:
            found = _clients.setdefault(key, made)
    return found


class SharedConnection(Connection):
    """A pynamodb Connection whose botocore client is the container's one."""

    def __init__(self, region: str | None = None) -> None:
        super().__init__(
            region=region or load().region,
            connect_timeout_seconds=CONNECT_TIMEOUT_SECONDS,
            read_timeout_seconds=READ_TIMEOUT_SECONDS,
            max_retry_attempts=MAX_RETRY_ATTEMPTS,
        )

    @property
    def client(self) -> Any:
        return dynamodb()


def share(*models: type[Model]) -> None:
    """Point each model class at a SharedConnection (schema and table name kept)."""
    for model in models:
        table = model._get_connection()
        if isinstance(table.connection, SharedConnection):
            continue
        shared = SharedConnection(model.Meta.region)
        shared.add_meta_table(table.connection.get_meta_table(table.table_name))
        table.connection = shared


if ON_LAMBDA:
    dynamodb()  # in INIT, with the handler's import
