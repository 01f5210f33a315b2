"""Key and account lookups: what a request reads, and how long a rotation or a change takes.

A write key's owner never changes, so its entry lasts the container's life;
the account and its identity settings are read together in one request every
CACHE_SECONDS; a secret key is looked up again every CACHE_SECONDS, so a
rotation done in another container revokes it within that time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from insights.services.core import auth
from insights.storage.core import accounts as account_store
from tests.conftest import MINUTE, Stack


@pytest.fixture
def account_reads() -> Iterator[Counter]:
    """DynamoDB calls on the accounts table, by operation."""
    import botocore.client

    calls: Counter = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):  # type: ignore[no-untyped-def]
        tables = set(api_params.get("RequestItems", {})) | {api_params.get("TableName")}
        if self.meta.service_model.service_name == "dynamodb" and "AccountsTable" in tables:
            calls[operation_name] += 1
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counting
    yield calls
    botocore.client.BaseClient._make_api_call = original


def test_a_warm_container_reads_the_account_once_per_cache_period(
    stack: Stack, account_reads: Counter
) -> None:
    acme = stack.account()
    auth._cache.clear()
    auth._accounts.clear()
    account_reads.clear()
    assert stack.send(acme, [{"uuid": "u"}]).status == 200
    # A new container: the key, then the account with its identity settings.
    assert account_reads == Counter({"GetItem": 1, "BatchGetItem": 1})
    account_reads.clear()
    for _ in range(3):  # past the cache each time: one read request, never the key again
        stack.advance(MINUTE)
        assert stack.send(acme, [{"uuid": "u"}]).status == 200
    assert account_reads == Counter({"BatchGetItem": 3})
    account_reads.clear()
    stack.advance(5)
    assert stack.send(acme, [{"uuid": "u"}]).status == 200
    assert account_reads == Counter()  # within the 30 s: nothing


def test_a_rotation_elsewhere_revokes_the_old_secret_key_within_the_cache_period(
    stack: Stack,
) -> None:
    acme = stack.account()
    old = {"Authorization": f"Bearer {acme.secret_key}"}
    assert stack.cloud.http("GET", "/v1/account", headers=old).status == 200
    # Another container rotates it: this one's cache does not hear of it.
    from insights.domain.core.accounts import new_key

    fresh = new_key("secret")
    assert account_store.replace_key(acme.account_id, acme.secret_key, fresh, "secret", 0)
    stack.advance(10)
    assert stack.cloud.http("GET", "/v1/account", headers=old).status == 200  # documented limit
    stack.advance(auth.CACHE_SECONDS)
    assert stack.cloud.http("GET", "/v1/account", headers=old).status == 401
    new = {"Authorization": f"Bearer {fresh}"}
    assert stack.cloud.http("GET", "/v1/account", headers=new).status == 200


def test_a_settings_change_elsewhere_reaches_the_container_within_the_cache_period(
    stack: Stack,
) -> None:
    acme = stack.account()
    assert stack.send(acme, [{"uuid": "u"}]).status == 200
    account = account_store.get_account(acme.account_id)
    assert account is not None
    changed = type(account.settings)(**{**vars_of(account.settings), "unique_user_ids": False})
    account_store.save_settings(account, changed)  # another container's PATCH
    assert stack.send(acme, [{"uuid": "v"}]).status == 200
    assert auth._accounts[acme.account_id][1].settings.unique_user_ids is True  # cached
    stack.advance(auth.CACHE_SECONDS + 1)
    assert stack.send(acme, [{"uuid": "w"}]).status == 200
    assert auth._accounts[acme.account_id][1].settings.unique_user_ids is False


def vars_of(settings: object) -> dict:
    from dataclasses import asdict

    return asdict(settings)  # type: ignore[call-overload]
