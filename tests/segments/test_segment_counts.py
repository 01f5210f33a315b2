"""Counts of large segments: a number, not the members, in requests of bounded time.

The budget and the round size are patched small so that a few dozen users
take many requests; the counts resume from their signed cursors to the
exact total the evaluator gives.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from insights import clock
from insights.domain.core.profile import CustomValue, Profile
from insights.domain.core.timefmt import DAY_MS, HOUR_MS
from insights.domain.segments.evaluate import is_member
from insights.domain.segments.planner import plan
from insights.domain.segments.rules import parse_rules
from insights.services.segments import counts
from insights.services.segments.queries import MAX_ROUND_ITEMS, Walk
from insights.storage import segments as seg_store
from insights.storage.core import store
from insights.storage.core.store import PutProfile
from insights.storage.segments import SegmentSet
from tests.conftest import Stack
from tests.segments.segments_helpers import count, create, pages

NOW = 1_795_000_000_000
PEOPLE = 60
NEW = {"attribute": "first_seen", "op": "within_last", "value": "20d"}  # by_first_seen
ACTIVE = {"attribute": "last_seen", "op": "within_last", "value": "25d"}  # by_last_seen
VIP = {"attribute": "custom.plan", "op": "equals", "value": "vip"}  # an entry index


@pytest.fixture
def people(stack: Stack) -> tuple[Any, list[Profile]]:
    clock.freeze(NOW)
    acme = stack.account("Acme")
    found = []
    for i in range(PEOPLE):
        profile = Profile(
            account_id=acme.account.account_id,
            uuid=f"user-{i:03d}",
            created_at=NOW - 90 * DAY_MS,
            first_seen=NOW - (i % 40) * DAY_MS - HOUR_MS,
            last_seen=NOW - (i % 30) * DAY_MS,
            total_sessions=1 + i % 3,
            total_duration_ms=60_000,
            custom={"plan": CustomValue("vip" if i % 3 else "free", NOW - DAY_MS, "import")},
        )
        store.commit([PutProfile(profile, None)])
        found.append(profile)
    stack.cloud.settle()
    return acme, found


@pytest.fixture
def tiny_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request reads one round of one index item a stream, then answers."""
    monkeypatch.setattr(counts, "COUNT_BUDGET_S", 0.0)
    monkeypatch.setattr(counts, "COUNT_ROUND_ITEMS", 1)


def expected(people: list[Profile], rules: Any) -> int:
    node = parse_rules(rules)
    return sum(is_member(node, p, NOW) for p in people)


def get_count(stack: Stack, account: Any, segment_id: str, cursor: str | None) -> Any:
    path = f"/v1/segments/{segment_id}/count"
    if cursor is not None:
        path += f"?cursor={quote(cursor)}"
    return stack.cloud.http("GET", path, headers=stack.auth(account))


def count_to_the_end(stack: Stack, account: Any, segment_id: str) -> list[dict[str, Any]]:
    answers, cursor = [], None
    for _ in range(200):
        response = get_count(stack, account, segment_id, cursor)
        assert response.status == 200, response.body
        answers.append(response.json())
        cursor = answers[-1]["next_cursor"]
        if cursor is None:
            return answers
    raise AssertionError("the count never completed")


@pytest.mark.parametrize("rules", [NEW, ACTIVE, VIP], ids=["first_seen", "last_seen", "entries"])
def test_a_count_resumes_across_requests_to_the_exact_total(
    stack: Stack, people: tuple[Any, list[Profile]], tiny_budget: None, rules: Any
) -> None:
    acme, population = people
    segment = create(stack, acme, rules)
    want = expected(population, rules)
    assert want > 20
    answers = count_to_the_end(stack, acme, segment)
    assert len(answers) > 3  # many requests, each one round
    *partials, last = answers
    assert last == {**last, "count": want, "complete": True, "next_cursor": None}
    assert "count_so_far" not in last
    so_far = [a["count_so_far"] for a in partials]
    assert all(not a["complete"] and "count" not in a for a in partials)
    assert so_far == sorted(so_far) and so_far[-1] <= want
    assert all(0 <= a["streams_done"] <= a["plan"]["queries"] for a in partials)
    # each request read its one round: an index item a stream
    assert all(a["plan"]["index_items_read"] <= a["plan"]["queries"] for a in answers)


def test_small_counts_answer_at_once_as_before(
    stack: Stack, people: tuple[Any, list[Profile]]
) -> None:
    acme, population = people
    segment = create(stack, acme, ACTIVE)
    answer = count(stack, acme, segment)
    assert answer["count"] == expected(population, ACTIVE)
    assert answer["complete"] is True and answer["next_cursor"] is None


def test_a_preview_goes_on_counting_with_its_cursor(
    stack: Stack, people: tuple[Any, list[Profile]], tiny_budget: None
) -> None:
    acme, population = people  # no segment saved yet: the cursor key is stored on first use
    body: dict[str, Any] = {"rules": ACTIVE, "limit": 5}
    first = stack.cloud.http("POST", "/v1/segments/preview", headers=stack.auth(acme), body=body)
    assert first.status == 200, first.body
    answer = first.json()
    assert answer["complete"] is False and len(answer["users"]) == 5
    total = answer["count_so_far"]
    for _ in range(200):
        body["cursor"] = answer["next_cursor"]
        r = stack.cloud.http("POST", "/v1/segments/preview", headers=stack.auth(acme), body=body)
        assert r.status == 200, r.body
        answer = r.json()
        assert answer["users"] == []  # the first answer's users are the preview's
        if answer["complete"]:
            break
        assert answer["count_so_far"] >= total
        total = answer["count_so_far"]
    assert answer["count"] == expected(population, ACTIVE)
    # other rules cannot take this cursor
    body["rules"] = NEW
    r = stack.cloud.http("POST", "/v1/segments/preview", headers=stack.auth(acme), body=body)
    assert r.status == 400 and r.json()["field"] == "cursor", r.body
    for bad in (17, ["x"], "not.a.cursor"):
        body["cursor"] = bad
        r = stack.cloud.http("POST", "/v1/segments/preview", headers=stack.auth(acme), body=body)
        assert r.status == 400, r.body
        assert r.json() == {**r.json(), "error": "invalid_cursor", "field": "cursor"}


def test_a_preview_s_cursor_holds_before_its_new_key_reads_back_everywhere(
    stack: Stack,
    people: tuple[Any, list[Profile]],
    tiny_budget: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first answer of an account without segments stores the cursor key, and
    the client sends the cursor back at once: an eventually consistent read may
    not return that item yet (DynamoDB promises no more), and a key made up in
    its place would refuse the account's own cursor."""
    acme, _ = people  # no segment saved yet: the first answer stores the key
    body: dict[str, Any] = {"rules": ACTIVE, "limit": 5}
    first = stack.cloud.http("POST", "/v1/segments/preview", headers=stack.auth(acme), body=body)
    assert first.status == 200 and first.json()["complete"] is False, first.body
    real = seg_store.load_segments

    def not_yet_replicated(account_id: str, *, consistent: bool = True) -> SegmentSet:
        if consistent:
            return real(account_id)
        # What load_segments answers when the read does not find the item.
        return SegmentSet(account_id, (), secrets.token_bytes(32), None)

    monkeypatch.setattr(seg_store, "load_segments", not_yet_replicated)
    body["cursor"] = first.json()["next_cursor"]
    r = stack.cloud.http("POST", "/v1/segments/preview", headers=stack.auth(acme), body=body)
    assert r.status == 200, r.body
    assert r.json()["users"] == []


def test_bad_count_cursors_are_a_400_naming_the_cursor(
    stack: Stack, people: tuple[Any, list[Profile]], tiny_budget: None
) -> None:
    acme, _ = people
    rival = stack.account("Rival")
    segment = create(stack, acme, ACTIVE)
    other = create(stack, acme, NEW)
    rivals = create(stack, rival, ACTIVE)
    cursor = get_count(stack, acme, segment, None).json()["next_cursor"]
    assert cursor
    payload, mac = cursor.split(".")
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    listing = pages(stack, acme, segment, 5)[0]["next_cursor"]
    for account, target, bad in [
        (acme, segment, forged),
        (acme, segment, "garbage"),
        (acme, segment, cursor[:-3]),
        (acme, segment, "é.%00"),
        (acme, segment, listing),  # a listing's cursor is not a count's
        (acme, other, cursor),  # another segment's
        (rival, rivals, cursor),  # another account's key
    ]:
        r = get_count(stack, account, target, bad)
        assert r.status == 400, (bad, r.body)
        assert r.json() == {**r.json(), "error": "invalid_cursor", "field": "cursor"}
    # a count's cursor does not page a listing either
    r = stack.cloud.http(
        "GET", f"/v1/segments/{segment}/users?cursor={quote(cursor)}", headers=stack.auth(acme)
    )
    assert r.status == 400 and r.json()["field"] == "cursor", r.body
    # replacing the segment ends counts that began before
    body = {"name": "x", "rules": NEW}
    put = stack.cloud.http("PUT", f"/v1/segments/{segment}", headers=stack.auth(acme), body=body)
    assert put.status == 200
    r = get_count(stack, acme, segment, cursor)
    assert r.status == 409 and r.json()["error"] == "cursor_stale"


def test_a_count_holds_a_number_not_its_members(
    stack: Stack, people: tuple[Any, list[Profile]]
) -> None:
    acme, population = people
    account_id = acme.account.account_id
    create(stack, acme, VIP)  # builds the entry index the VIP count reads
    for rules, repeats in ((NEW, False), (ACTIVE, True), (VIP, True)):
        walk = counts.count_walk(parse_rules(rules), account_id, NOW)
        assert walk.done and walk.found == expected(population, rules) > 20
        assert walk.members == []  # nothing kept per member...
        # ...but the keys of the members counted, where the plan can yield a user twice
        assert walk.repeats is repeats
        assert len(walk.seen) == (walk.found if repeats else 0)


def test_rounds_are_sized_to_take_about_round_s(
    stack: Stack, people: tuple[Any, list[Profile]]
) -> None:
    """A count's rounds follow the rate of the round before: a path slower than
    its round time reads less a round, so its request ends near the budget."""
    acme, population = people
    account_id = acme.account.account_id
    node = parse_rules(ACTIVE)
    chosen = plan(node, account_id, NOW, None)

    def walked(round_s: float) -> Walk:
        state: list[Any] = [None] * len(chosen.queries)
        walk = Walk(chosen, node, NOW, state, keep=0, round_items=2, round_s=round_s)
        walk.run(None, None, time.monotonic() + 60)
        assert walk.done and walk.found == expected(population, ACTIVE)
        return walk

    assert walked(1e-9).round_items == 1  # no round is that quick: one item a stream
    assert walked(60.0).round_items == MAX_ROUND_ITEMS  # a minute would fit them all


def test_a_count_cursor_over_many_values_fits_a_request_line(
    stack: Stack, people: tuple[Any, list[Profile]], tiny_budget: None
) -> None:
    """An `in` rule reads one index range per value, and the cursor keeps each
    range's position: it is compressed, so ten values' positions stay far under
    API Gateway's 10,240 bytes for a request line and its headers."""
    acme, population = people
    plans = ["vip", "free"] + [f"plan-{n:02d}-{secrets.token_hex(4)}" for n in range(8)]
    for plan_name in plans[2:] * 5:  # every range has members to walk
        extra = Profile(
            account_id=acme.account.account_id,
            uuid=str(uuid.uuid4()),  # what SDKs make: 36 characters, random
            created_at=NOW - 90 * DAY_MS,
            first_seen=NOW - DAY_MS,
            last_seen=NOW - HOUR_MS,
            total_sessions=1,
            total_duration_ms=60_000,
            custom={"plan": CustomValue(plan_name, NOW - DAY_MS, "import")},
        )
        store.commit([PutProfile(extra, None)])
        population.append(extra)
    stack.cloud.settle()
    rules = {"attribute": "custom.plan", "op": "in", "value": plans}
    segment = create(stack, acme, rules)
    first = get_count(stack, acme, segment, None).json()
    cursor = first["next_cursor"]
    answers, sizes = [first], []
    while cursor:
        sizes.append(len(quote(cursor)))
        answers.append(get_count(stack, acme, segment, cursor).json())
        cursor = answers[-1]["next_cursor"]
    assert answers[-1]["count"] == expected(population, rules)
    assert max(sizes) < 1_200, sizes  # 2,485 before they were deflated
