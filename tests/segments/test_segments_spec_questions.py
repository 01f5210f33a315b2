"""The spec's four questions, asked of a population built from real sessions over 100 days.

Listing (paged), count, the per-user call and the preview must agree with
each other and with the answers the population was built to have, and the
planner must answer each question from an index, not a scan.
"""

from __future__ import annotations

from typing import Any

from insights import clock
from tests.conftest import Stack
from tests.segments.segments_helpers import count, create, listed, preview, segments_of

DAY = 86_400
MINUTE = 60

QUESTIONS: dict[str, Any] = {
    # Which users signed up last week?
    "signed_up_last_week": {"attribute": "first_seen", "op": "within_last", "value": "7d"},
    # Who signed up once but never came back?
    "once_never_back": {
        "all": [
            {"attribute": "total_sessions", "op": "equals", "value": 1},
            {"attribute": "last_seen", "op": "not_within_last", "value": "7d"},
        ]
    },
    # Which users recently upgraded to the VIP plan?
    "recently_vip": {
        "attribute": "custom.plan",
        "op": "changed_within",
        "value": "7d",
        "to": "VIP",
    },
    # Who was active until a month ago, then stopped?
    "stopped_a_month_ago": {
        "all": [
            {"attribute": "total_sessions", "op": "gte", "value": 2},
            {"attribute": "last_seen", "op": "not_within_last", "value": "30d"},
            {"attribute": "last_seen", "op": "within_last", "value": "60d"},
        ]
    },
}

# uuid -> (session days with the properties sent that day, the questions it answers)
POPULATION: dict[str, tuple[dict[int, dict[str, Any]], set[str]]] = {
    "oneoff": ({10: {}}, {"once_never_back"}),
    "oneoff-recent": ({95: {}}, {"signed_up_last_week"}),
    "churned": ({20: {}, 50: {}, 65: {}}, {"stopped_a_month_ago"}),
    "churned-long-ago": ({0: {}, 20: {}}, set()),
    "loyal": ({0: {}, 30: {}, 60: {}, 90: {}, 99: {}}, set()),
    "upgrader": ({0: {"plan": "free"}, 97: {"plan": "VIP"}}, {"recently_vip"}),
    # VIP for months; the app resends the plan with every event: not an upgrade
    "vip-for-months": ({5: {"plan": "VIP"}, 98: {"plan": "VIP"}}, set()),
    "newbie": ({96: {"plan": "free"}}, {"signed_up_last_week"}),
    "newbie-vip": ({99: {"plan": "VIP"}}, {"signed_up_last_week", "recently_vip"}),
    "erased": ({97: {"plan": "VIP"}}, set()),  # erased at the end
}
# Same uuids, other account: must never show up in Acme's answers.
RIVAL: dict[str, dict[int, dict[str, Any]]] = {
    "newbie": {96: {"plan": "VIP"}},
    "oneoff": {10: {}},
    "churned": {20: {}, 65: {}},
}


def build(stack: Stack) -> tuple[Any, Any]:
    acme, rival = stack.account("Acme"), stack.account("Rival")
    start = clock.now_ms()
    days = sorted({d for sessions, _ in POPULATION.values() for d in sessions} | {100})
    for day in days:
        stack.advance((start + day * DAY * 1000 - clock.now_ms()) / 1000)
        for account, people in ((acme, {u: s for u, (s, _) in POPULATION.items()}), (rival, RIVAL)):
            events = [
                {"uuid": uuid, "user_properties": sessions[day]}
                for uuid, sessions in people.items()
                if day in sessions
            ]
            if events:
                assert stack.send(account, events).status == 200
        stack.advance(31 * MINUTE)
        stack.sweep()
    response = stack.cloud.http("DELETE", "/v1/users/erased", headers=stack.auth(acme))
    assert response.status == 204
    stack.cloud.settle()
    return acme, rival


def test_the_four_questions_agree_everywhere_and_use_an_index(stack: Stack) -> None:
    acme, rival = build(stack)
    ids = {name: create(stack, acme, rules, name) for name, rules in QUESTIONS.items()}
    expected = {
        name: {uuid for uuid, (_, answers) in POPULATION.items() if name in answers}
        for name in QUESTIONS
    }
    assert all(expected.values())  # every question has someone in it
    for name, segment_id in ids.items():
        members = listed(stack, acme, segment_id, limit=1)  # a page per user: paging too
        assert sorted(members) == sorted(expected[name]), name
        counted = count(stack, acme, segment_id)
        assert counted["count"] == len(expected[name]), name
        previewed = preview(stack, acme, QUESTIONS[name])
        assert {u["uuid"] for u in previewed["users"]} == expected[name], name
        assert previewed["count"] == len(expected[name])
        for plan in (counted["plan"], previewed["plan"]):
            assert plan["path"] == "index", (name, plan)
            assert plan["items_read"] == plan["index_items_read"] + plan["profiles_read"]
    # the planner's choices, from `plan`
    assert count(stack, acme, ids["signed_up_last_week"])["plan"]["index"] == "first_seen"
    assert count(stack, acme, ids["once_never_back"])["plan"]["index"] == "last_seen"
    assert count(stack, acme, ids["recently_vip"])["plan"]["index"] == "custom.plan (value)"
    assert count(stack, acme, ids["stopped_a_month_ago"])["plan"]["index"] == "last_seen"
    # an index read touches the candidates, not the account
    assert count(stack, acme, ids["recently_vip"])["plan"]["index_items_read"] == 2
    # the per-user call, for every user of the population
    for uuid, (_, answers) in POPULATION.items():
        assert segments_of(stack, acme, uuid) == {ids[name] for name in answers}, uuid
    # the rival's same-named users are in none of Acme's segments, and Acme's
    # segments do not exist for the rival
    assert segments_of(stack, rival, "newbie") == set()
    other = stack.cloud.http(
        "GET", f"/v1/segments/{ids['recently_vip']}/users", headers=stack.auth(rival)
    )
    assert other.status == 404
    rival_vip = create(stack, rival, QUESTIONS["recently_vip"])
    assert listed(stack, rival, rival_vip) == ["newbie"]
    assert segments_of(stack, rival, "newbie") == {rival_vip}
    assert segments_of(stack, acme, "newbie") == {ids["signed_up_last_week"]}
