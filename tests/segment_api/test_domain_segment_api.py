"""The pure Segment translation: envelopes, verdicts, times, traits, client hints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from insights.domain.core.events import Context, RequestError
from insights.domain.core.sessions import Stamped
from insights.domain.core.timefmt import DAY_MS, format_time
from insights.domain.segment_api import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    SKEW_TOLERANCE_MS,
    Translation,
    decode,
    translate,
)

NOW = 1_795_867_200_000
DEFAULT = Context(ip="192.0.2.1", user_agent="curl/8")


def iso(ms: int) -> str:
    text = format_time(ms)
    assert text is not None
    return text


def run(body: Any, route: str | None = None, **options: Any) -> Translation:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    envelope = decode(raw, route)
    return translate(
        envelope,
        route,
        received_ms=NOW,
        backfill_days=options.get("backfill_days", 7),
        kept_properties=frozenset(options.get("properties", ())),
        default_context=DEFAULT,
    )


def events(t: Translation) -> list[dict[str, Any]]:
    return [event for items in t.events.values() for _, event in items]


def test_size_limits_are_segments() -> None:
    with pytest.raises(RequestError) as single:
        decode(b" " * (MAX_MESSAGE_BYTES + 1), "track")
    with pytest.raises(RequestError) as batch:
        decode(b" " * (MAX_BATCH_BYTES + 1), None)
    assert single.value.status == batch.value.status == 400
    decode(b'{"batch": [{}]}' + b" " * (MAX_BATCH_BYTES - 20), None)


def test_a_single_route_takes_its_own_type_only() -> None:
    t = run({"type": "page", "userId": "u"}, "track")
    assert [(r.field, r.index) for r in t.rejected] == [("type", 0)]
    assert events(run({"userId": "u", "event": "E"}, "track"))[0]["type"] == "track"


def test_a_type_that_is_not_a_string_is_refused_alone() -> None:
    """An object or list as the type was a TypeError (unhashable): a 500 for the whole batch."""
    batch = [{"type": {}, "userId": "u"}, {"type": ["track"], "userId": "u"}]
    t = run({"batch": [*batch, {"type": "page", "userId": "u"}]})
    assert [(r.index, r.field) for r in t.rejected] == [(0, "batch[0].type"), (1, "batch[1].type")]
    assert [e["type"] for e in events(t)] == ["page"]
    single = run({"type": {"x": 1}, "userId": "u", "event": "E"}, "track")
    assert [(r.index, r.field) for r in single.rejected] == [(0, "type")]


def test_skew_is_corrected_beyond_the_tolerance_only() -> None:
    def time_with(skew_ms: int) -> int:
        message = {"type": "page", "userId": "u", "timestamp": iso(NOW - 5000 + skew_ms)}
        return events(run({"batch": [message], "sentAt": iso(NOW + skew_ms)}))[0]["timestamp"]

    assert time_with(SKEW_TOLERANCE_MS) == NOW - 5000 + SKEW_TOLERANCE_MS  # trusted as sent
    assert time_with(SKEW_TOLERANCE_MS + 1) == NOW - 5000  # corrected
    assert time_with(-3 * 3_600_000) == NOW - 5000


def test_no_time_is_the_receive_time_and_old_times_are_refused_by_the_backfill_window() -> None:
    assert events(run({"batch": [{"type": "page", "userId": "u"}]}))[0]["timestamp"] == NOW
    old = {"type": "identify", "userId": "u", "timestamp": iso(NOW - 8 * DAY_MS)}
    assert run({"batch": [old]}).rejected[0].field == "batch[0].timestamp"
    assert run({"batch": [old]}, backfill_days=30).rows[0].values == {}


def test_traits_flatten_type_and_refuse_alone() -> None:
    traits = {
        "n": 1.5,
        "s": "x",
        "none": None,
        "a": {"b": {"c": {"d": 1, "e": {"too": "deep"}}}},
        "list": [1],
        "long": "y" * 1025,
        "k" * 129: 1,
    }
    t = run({"userId": "u", "traits": traits, "timestamp": iso(NOW)}, "identify")
    [row] = t.rows
    assert row.values == {
        "n": Stamped(1.5, NOW),
        "s": Stamped("x", NOW),
        "none": Stamped(None, NOW),
        "a.b.c.d": Stamped(1, NOW),
    }
    refused = {r.field for r in t.rejected}
    assert refused == {"traits.a.b.c.e", "traits.list", "traits.long", "traits." + "k" * 40}
    assert all("other traits were applied" in r.error for r in t.rejected)
    assert t.refused == set()
    too_many = {f"t{i}": i for i in range(101)}
    crowded = run({"userId": "u", "traits": too_many}, "identify")
    assert crowded.refused == {0} and crowded.rows == []


def test_a_trait_named_twice_by_flattening_is_refused_not_dropped() -> None:
    """`{"address.city": ..}` and `{"address": {"city": ..}}` flatten to one name:
    the first in the message is applied, the later one refused with its path."""
    traits = {"address.city": "Paris", "address": {"city": "Lyon", "zip": "69001"}}
    t = run({"userId": "u", "traits": traits, "timestamp": iso(NOW)}, "identify")
    [row] = t.rows
    assert row.values == {
        "address.city": Stamped("Paris", NOW),
        "address.zip": Stamped("69001", NOW),
    }
    [refused] = t.rejected
    assert refused.field == "traits.address.city"
    assert "twice" in refused.error and "other traits were applied" in refused.error
    assert t.refused == set()


def test_an_identify_none_of_whose_traits_is_taken_is_not_accepted() -> None:
    """docs/segment-api.md: `accepted` does not count an identify none of whose traits
    was taken; one whose every trait the translation refused was counted."""
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"tags": ["a"], "deep": [{"x": 1}]}},
        {"type": "identify", "userId": "u2", "traits": {"tags": ["a"], "plan": "x"}},
        {"type": "identify", "userId": "u3", "traits": {}},
    ]
    t = run({"batch": batch})
    assert t.refused == {0}
    assert [r.field for r in t.rejected] == [
        "batch[0].traits.tags",
        "batch[0].traits.deep",
        "batch[1].traits.tags",
    ]
    assert [(row.number, sorted(row.values)) for row in t.rows] == [(1, ["plan"]), (2, [])]


def test_events_carry_only_opted_in_properties_and_group_by_context() -> None:
    batch = [
        {"type": "track", "userId": "u", "event": "E", "properties": {"plan": "a", "x": 1}},
        {"type": "page", "userId": "v", "context": {"ip": "81.2.69.160", "userAgent": "UA"}},
        {"type": "screen", "userId": "w", "context": {"ip": "81.2.69.160", "userAgent": "UA"}},
    ]
    t = run({"batch": batch}, properties=["plan"])
    assert t.events[DEFAULT] == [
        (0, {"uuid": "u", "type": "track", "timestamp": NOW, "properties": {"plan": "a"}})
    ]
    assert [i for i, _ in t.events[Context("81.2.69.160", "UA")]] == [1, 2]


def test_client_hints_name_the_browser_when_no_user_agent_came() -> None:
    hints = {
        "brands": [{"brand": "Chromium", "version": "121"}, {"brand": "Opera", "version": "107"}]
    }
    t = run({"batch": [{"type": "page", "userId": "u", "context": {"userAgentData": hints}}]})
    [context] = t.events
    assert context.ip == DEFAULT.ip
    assert context.user_agent is not None and "OPR/107.0.0.0" in context.user_agent
    no_hints = run({"batch": [{"type": "page", "userId": "u", "context": {"ip": "::1"}}]})
    assert list(no_hints.events) == [Context("::1", DEFAULT.user_agent)]
