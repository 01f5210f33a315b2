"""Users end to end: attributes, order, late events, retention, erasure, isolation, cost."""

from __future__ import annotations

import random
import threading
from collections import Counter

import boto3
import pytest

from insights import clock
from insights.storage.core import store
from tests.conftest import CHROME, LONDON_IP, MINUTE, T0_MS, Stack, iso

DAY = 24 * 3600
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


def at(minutes: float) -> str:
    return iso(T0_MS + int(minutes * 60_000))


def test_standard_and_custom_attributes_after_two_sessions(stack: Stack) -> None:
    acme = stack.account()
    stack.send(
        acme,
        [
            {"uuid": "u", "timestamp": at(0), "user_properties": {"role": "admin"}},
            {"uuid": "u", "timestamp": at(4), "user_properties": {"plan": "free"}},
        ],
    )
    stack.advance(60 * MINUTE)
    stack.send(
        acme,
        [
            {"uuid": "u", "timestamp": at(60), "user_properties": {"plan": "vip"}},
            {"uuid": "u", "timestamp": at(66)},
        ],
        ip="89.160.20.112",
        user_agent=SAFARI_IPHONE,
    )
    stack.advance(40 * MINUTE)
    stack.sweep()
    body = stack.user(acme, "u").json()
    assert body["uuid"] == "u"
    assert body["standard"] == {
        "first_seen": at(0),
        "last_seen": at(66),
        "total_sessions": 2,
        "total_session_duration": 600.0,
        "avg_session_duration": 300.0,
        "avg_time_between_sessions": 56 * 60.0,
        "country": "Sweden",
        "region": "Östergötland County",
        "city": "Linköping",
        "browser_name": "Mobile Safari",
        "browser_version": "17.1",
    }
    assert body["custom"] == {
        "plan": {"value": "vip", "updated_at": at(60), "source": "event"},
        "role": {"value": "admin", "updated_at": at(0), "source": "event"},
    }


def run_traffic(stack: Stack, account, requests: list[list[dict]]) -> dict:
    for events in requests:
        assert stack.send(account, events).status == 200
    stack.advance(3 * 60 * MINUTE)
    stack.sweep()
    return stack.user(account, "u").json()


def test_reordered_and_duplicated_events_give_the_same_user(stack: Stack) -> None:
    events = [
        {"uuid": "u", "timestamp": at(m), "user_properties": {"status": f"s{m}"}}
        for m in (0, 3, 7, 12, 50, 55, 58)
    ]
    in_order = run_traffic(stack, stack.account("A"), [[e] for e in events])
    shuffled = events * 2
    random.Random(7).shuffle(shuffled)
    # The second session's events arrive before its first: the gap is seen
    # within one request, so the result equals the in-order one.
    chaos = run_traffic(stack, stack.account("B"), [shuffled[:7], shuffled[7:]])
    assert chaos == in_order
    assert in_order["standard"]["total_sessions"] == 2
    assert in_order["custom"]["status"]["value"] == "s58"


def test_late_event_is_counted_and_only_its_properties_apply(stack: Stack) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "u", "timestamp": at(0)}, {"uuid": "u", "timestamp": at(5)}])
    stack.advance(40 * MINUTE)
    stack.sweep()
    before = stack.standard(acme, "u")
    response = stack.send(
        acme, [{"uuid": "u", "timestamp": at(2), "user_properties": {"tier": "gold"}}]
    )
    assert response.json() == {"accepted": 1, "late": 1, "rejected": []}
    stack.advance(40 * MINUTE)
    stack.sweep()
    body = stack.user(acme, "u").json()
    assert body["standard"] == before
    assert body["custom"]["tier"] == {"value": "gold", "updated_at": at(2), "source": "event"}


def test_two_concurrent_requests_straddling_a_gap(stack: Stack, monkeypatch) -> None:
    """Both requests read the same open session, then race to write."""
    acme = stack.account()
    stack.send(acme, [{"uuid": "u", "timestamp": at(0)}])
    stack.advance(45 * MINUTE)
    real_commit = store.commit
    both_read = threading.Barrier(2, timeout=10)
    one_writer = threading.Lock()
    first_round = threading.local()

    def racing_commit(writes):
        if not getattr(first_round, "done", False):
            first_round.done = True
            both_read.wait()  # neither writes before both have read
        with one_writer:  # DynamoDB applies conditional writes one at a time
            return real_commit(writes)

    monkeypatch.setattr(store, "commit", racing_commit)
    from insights.domain.core.events import Context
    from insights.services.core.ingest import ingest
    from insights.storage.core.accounts import get_account

    account = get_account(acme.account_id)
    results = []

    def send(minute: float) -> None:
        body = f'{{"events": [{{"uuid": "u", "timestamp": "{at(minute)}"}}]}}'
        results.append(
            ingest(
                account,
                body,
                received_ms=clock.now_ms(),
                default_context=Context(LONDON_IP, CHROME),
            )
        )

    threads = [threading.Thread(target=send, args=(m,)) for m in (44, 45)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.accepted for r in results] == [1, 1]
    monkeypatch.setattr(store, "commit", real_commit)
    stack.advance(40 * MINUTE)
    stack.sweep()
    std = stack.standard(acme, "u")
    assert std["total_sessions"] == 2
    assert std["first_seen"] == at(0) and std["last_seen"] == at(45)
    assert std["total_session_duration"] == 60.0


def test_user_returning_after_181_days_starts_a_fresh_record(stack: Stack) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "u", "user_properties": {"role": "admin"}}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    assert stack.standard(acme, "u")["total_sessions"] == 1
    stack.advance(181 * DAY)
    gone = stack.user(acme, "u")
    assert gone.status == 404 and "180 days" in gone.json()["message"]
    stack.send(acme, [{"uuid": "u"}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    body = stack.user(acme, "u").json()
    assert body["standard"]["total_sessions"] == 1
    assert body["standard"]["first_seen"] == iso(T0_MS + (31 * MINUTE + 181 * DAY) * 1000)
    assert body["custom"] == {}


def test_expired_profile_is_removed_with_its_items_by_ttl_and_the_cascade(stack: Stack) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "u"}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    users = boto3.client("dynamodb", region_name="us-east-1")
    pk = f"{acme.account_id}#u"
    users.put_item(TableName="UsersTable", Item={"pk": {"S": pk}, "sk": {"S": "idx#role"}})
    stack.advance(181 * DAY)
    assert stack.ttl() >= 1
    assert stack.cloud.invocations.get("UserRetentionFunction") == 1
    assert [i for i in stack.cloud.items("UsersTable") if i["pk"] == pk] == []


def test_deleted_user_is_erased_and_can_start_again(stack: Stack) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "u", "user_properties": {"email": "x@example.com"}}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.send(acme, [{"uuid": "u"}])  # an open session too
    response = stack.cloud.http("DELETE", "/v1/users/u", headers=stack.auth(acme))
    assert response.status == 204
    assert stack.user(acme, "u").status == 404
    assert stack.cloud.items("SessionsTable") == []
    # A delayed event from before the erasure brings nothing back.
    stack.send(acme, [{"uuid": "u", "timestamp": iso(T0_MS), "user_properties": {"email": "old"}}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    assert stack.user(acme, "u").status == 404
    stack.send(acme, [{"uuid": "u", "user_properties": {"role": "new"}}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    body = stack.user(acme, "u").json()
    assert body["standard"]["total_sessions"] == 1
    assert set(body["custom"]) == {"role"}


def test_account_without_unique_user_ids_keeps_no_user_records(stack: Stack) -> None:
    anon = stack.account(unique_user_ids=False)
    response = stack.send(anon, [{"uuid": "u"}])
    assert response.status == 200
    assert response.json()["user_records"] is False and "unique_user_ids" in response.json()["note"]
    stack.advance(31 * MINUTE)
    stack.sweep()
    assert stack.cloud.items("SessionsTable") == [] and stack.cloud.items("UsersTable") == []


def test_same_uuid_in_two_accounts_never_leaks(stack: Stack) -> None:
    a, b = stack.account("A"), stack.account("B")
    stack.send(a, [{"uuid": "same", "user_properties": {"role": "a-admin"}}])
    stack.send(
        b, [{"uuid": "same", "user_properties": {"role": "b-viewer"}}], user_agent=SAFARI_IPHONE
    )
    stack.advance(31 * MINUTE)
    stack.sweep()
    assert stack.user(a, "same").json()["custom"]["role"]["value"] == "a-admin"
    assert stack.user(b, "same").json()["custom"]["role"]["value"] == "b-viewer"
    only_a = stack.send(a, [{"uuid": "only-a"}])
    assert only_a.status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()
    assert stack.user(b, "only-a").status == 404
    # B's secret key cannot delete A's user either: it addresses B's namespace.
    stack.cloud.http("DELETE", "/v1/users/only-a", headers=stack.auth(b))
    assert stack.user(a, "only-a").status == 200


def test_address_not_in_the_geo_database_leaves_location_empty(stack: Stack) -> None:
    acme = stack.account()
    response = stack.send(acme, [{"uuid": "u"}], ip="10.1.2.3")
    assert response.json()["accepted"] == 1
    stack.advance(31 * MINUTE)
    stack.sweep()
    std = stack.standard(acme, "u")
    assert (std["country"], std["region"], std["city"]) == (None, None, None)
    assert std["browser_name"] == "Chrome"


def test_garbage_user_agent_leaves_browser_empty(stack: Stack) -> None:
    acme = stack.account()
    response = stack.send(acme, [{"uuid": "u"}], user_agent="\x00}{garbage;;;" * 20)
    assert response.json()["accepted"] == 1
    stack.advance(31 * MINUTE)
    stack.sweep()
    std = stack.standard(acme, "u")
    assert (std["browser_name"], std["browser_version"]) == (None, None)
    assert std["country"] == "United Kingdom"


def test_raw_ip_is_never_stored(stack: Stack) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "u"}], ip="81.2.69.142")
    stored = repr(stack.cloud.items("SessionsTable"))
    stack.advance(31 * MINUTE)
    stack.sweep()
    stored += repr(stack.cloud.items("UsersTable")) + repr(stack.cloud.items("AccountsTable"))
    assert "81.2.69.142" not in stored
    assert acme.secret_key not in stored and acme.write_key not in stored


@pytest.fixture
def dynamodb_calls() -> Counter:
    """DynamoDB API calls by operation (pynamodb and boto3 both go through botocore)."""
    import botocore.client

    calls: Counter = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        if self.meta.service_model.service_name == "dynamodb":
            calls[operation_name] += 1
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counting
    yield calls
    botocore.client.BaseClient._make_api_call = original


def test_common_ingest_path_costs_one_read_and_one_write_per_user(
    stack: Stack, dynamodb_calls: Counter
) -> None:
    acme = stack.account()
    stack.send(acme, [{"uuid": "u", "user_properties": {"role": "admin"}}])  # warms the key cache
    # Requests 5 s apart: within the key and identity caches' 30 s (on the stack's clock).
    stack.advance(5)
    dynamodb_calls.clear()
    for _ in range(5):
        events = [{"uuid": "u", "type": "click"}] * 10
        assert stack.send(acme, events).status == 200
        stack.advance(5)
    assert dynamodb_calls == Counter({"BatchGetItem": 5, "PutItem": 5})
    (item,) = stack.cloud.items("SessionsTable")
    assert len(repr(item)) < 1024


def test_a_pure_duplicate_request_writes_nothing(stack: Stack, dynamodb_calls: Counter) -> None:
    acme = stack.account()
    events = [{"uuid": "u", "timestamp": at(0), "user_properties": {"role": "admin"}}]
    stack.send(acme, events)
    dynamodb_calls.clear()
    stack.send(acme, events)
    assert dynamodb_calls == Counter({"BatchGetItem": 1})


def test_property_value_types_survive_storage(stack: Stack) -> None:
    acme = stack.account()
    values = {
        "score": 1.5,
        "seats": 3,
        "big": 12345678901234,
        "trial": True,
        "note": None,
        "name": "Zoë ✓",
    }
    stack.send(acme, [{"uuid": "u", "user_properties": values}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    custom = stack.user(acme, "u").json()["custom"]
    assert {k: v["value"] for k, v in custom.items()} == values
    assert type(custom["seats"]["value"]) is int and type(custom["score"]["value"]) is float
