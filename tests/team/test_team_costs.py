"""What the team costs in DynamoDB, counted with the benchmarks' meter (docs/console.md, "Cost").

Units follow AWS's rules from item sizes, so the counts hold on any machine.
"""

from __future__ import annotations

from typing import Any

from benchmarks.meter import Meter
from tests.team.helpers import Team


def metered(team: Team, action: Any) -> Meter:
    meter = Meter(team.stack.cloud)
    with meter.installed():
        action()
    return meter


def units(meter: Meter, function: str) -> tuple[float, float]:
    usage = meter.usage
    read = sum(n for (f, _t), n in usage.rru.items() if f == function)
    write = sum(n for (f, _t), n in usage.wru.items() if f == function)
    return read, write


def test_a_sign_in_is_four_reads_and_four_writes(team: Team) -> None:
    meter = metered(team, lambda: team.session("ed@acme.com"))
    assert dict(meter.usage.requests) == {
        # the start: the account, the provider; the flow
        # the callback: the flow taken, the provider, the member, the session, the audit entry
        ("TeamFunction", "AccountsTable", "GetItem"): 1,
        ("TeamFunction", "TeamTable", "GetItem"): 3,
        ("TeamFunction", "TeamTable", "PutItem"): 3,
        ("TeamFunction", "TeamTable", "DeleteItem"): 1,
    }
    assert units(meter, "TeamFunction") == (3.5, 4)
    assert dict(meter.usage.other_calls) == {
        ("TeamFunction", "secretsmanager", "GetSecretValue"): 1
    }


def test_a_session_costs_half_a_read_more_than_the_key_once_per_container(team: Team) -> None:
    from insights.services.core import auth
    from insights.services.team import sessions

    session = team.session("ed@acme.com")

    def cold() -> None:
        sessions._cache.clear()
        auth._cache.clear()
        auth._accounts.clear()

    cold()
    by_session = metered(team, lambda: team.call(session, "GET", "/v1/segments"))
    warm = metered(team, lambda: team.call(session, "GET", "/v1/segments"))
    key = team.stack.auth(team.account)
    cold()
    by_key = metered(team, lambda: team.stack.cloud.http("GET", "/v1/segments", headers=key))
    # The segments route reads the account itself (0.5) besides the caller's check;
    # the account and its identity settings are one BatchGetItem (1.0), shared by both.
    assert units(by_session, "SegmentsFunction") == (2.5, 0)  # + the session: 1 (consistent)
    assert units(by_key, "SegmentsFunction") == (2.0, 0)  # + the key: 0.5
    assert units(warm, "SegmentsFunction") == (0.5, 0)  # cached for 30 s: as with the key
    write = metered(team, lambda: team.call(session, "DELETE", "/v1/segments/seg_nope"))
    assert write.usage.requests[("SegmentsFunction", "TeamTable", "PutItem")] == 1  # the audit
    assert units(write, "SegmentsFunction")[1] == 1  # an entry is under 1 KB
    assert max(write.usage.item_bytes.get("TeamTable", [0])) < 1024
