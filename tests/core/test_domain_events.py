"""Validation of tracking requests: whole-request errors and per-event verdicts."""

from __future__ import annotations

import json

import pytest

from insights.domain.core.events import (
    MAX_BODY_BYTES,
    Context,
    RequestError,
    parse_batch,
    user_values,
)
from insights.domain.core.timefmt import DAY_MS, HOUR_MS, format_time, parse_time

NOW = parse_time("2026-11-28T12:00:00Z")
NO_CONTEXT = Context(None, None)


def parse(body: object, backfill_days: int = 7):
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return parse_batch(
        raw, received_ms=NOW, backfill_days=backfill_days, default_context=NO_CONTEXT
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "invalid_json"),
        ("", 400, "empty_body"),
        ("[1, 2]", 400, "invalid_body"),
        ({"events": []}, 400, "no_events"),
        ({"nothing": 1}, 400, "unknown_field"),
        ({"events": [{"uuid": "a"}], "contxt": {}}, 400, "unknown_field"),
        ({"events": "x"}, 400, "no_events"),
        ('{"events": [{"uuid": "a", "properties": {"n": NaN}}]}', 400, "invalid_json"),
        ({"events": [{"uuid": "a"}] * 501}, 413, "too_many_events"),
        ({"events": [{"uuid": "a"}], "sent_at": "yesterday"}, 400, "invalid_sent_at"),
        ({"events": [{"uuid": "a"}], "context": {"ip": "999.1.1.1"}}, 400, "invalid_context"),
        ({"events": [{"uuid": "a"}], "context": "x"}, 400, "invalid_context"),
    ],
)
def test_whole_request_errors(body: object, status: int, code: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse(body)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.message


def test_body_over_512_kb_is_413() -> None:
    body = json.dumps({"events": [{"uuid": "a", "properties": {"p": "x" * MAX_BODY_BYTES}}]})
    with pytest.raises(RequestError) as caught:
        parse(body)
    assert caught.value.status == 413
    assert "524288" in caught.value.message


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        ({}, "events[1].uuid", "required"),
        ({"uuid": ""}, "events[1].uuid", "non-empty"),
        ({"uuid": 7}, "events[1].uuid", "string"),
        ({"uuid": " \t"}, "events[1].uuid", "blank"),
        ({"uuid": "u" * 257}, "events[1].uuid", "256"),
        ({"uuid": "a", "timestamp": "soon"}, "events[1].timestamp", "ISO-8601"),
        ({"uuid": "a", "timestamp": "2026-11-28T12:00:00"}, "events[1].timestamp", "offset"),
        ({"uuid": "a", "timestamp": "2026-11-28T13:00:01Z"}, "events[1].timestamp", "future"),
        ({"uuid": "a", "timestamp": "2026-11-20T11:59:59Z"}, "events[1].timestamp", "backfill"),
        ({"uuid": "a", "interactive": "yes"}, "events[1].interactive", "true or false"),
        ({"uuid": "a", "properties": []}, "events[1].properties", "object"),
        ({"uuid": "a", "properties": {"x": [1]}}, "events[1].properties.x", "string, number"),
        ({"uuid": "a", "properties": {"x": {"a": 1}}}, "events[1].properties.x", "string, number"),
        ({"uuid": "a", "properties": {"x": "v" * 1025}}, "events[1].properties.x", "1024"),
        ({"uuid": "a", "properties": {"": 1}}, "events[1].properties", "1-128"),
        ({"uuid": "a", "properties": {"p" * 129: 1}}, "events[1].properties", "1-128"),
        (
            {"uuid": "a", "properties": {f"p{i}": i for i in range(101)}},
            "events[1].properties",
            "100",
        ),
        ({"uuid": "a", "propertys": {}}, "events[1].propertys", "unknown field"),
        ({"uuid": "a", "type": 5}, "events[1].type", "type"),
        ("not an object", "events[1]", "object"),
    ],
)
def test_bad_event_is_rejected_alone(event: object, field: str, words: str) -> None:
    batch = parse({"events": [{"uuid": "good-1"}, event, {"uuid": "good-2"}]})
    assert [e.uuid for e in batch.events] == ["good-1", "good-2"]
    assert len(batch.rejected) == 1
    rejection = batch.rejected[0]
    assert (rejection.index, rejection.field) == (1, field)
    assert words in rejection.error


def test_event_over_32_kb_is_rejected() -> None:
    big = {"uuid": "a", "properties": {f"p{i}": "x" * 1000 for i in range(40)}}
    batch = parse({"events": [big, {"uuid": "b"}]})
    assert [r.field for r in batch.rejected] == ["events[0]"]
    assert "32768" in batch.rejected[0].error
    assert [e.uuid for e in batch.events] == ["b"]


def test_defaults_and_value_types() -> None:
    values = {"s": "x", "n": 1.5, "b": False, "z": None}
    batch = parse({"events": [{"uuid": "a", "user_properties": values}]})
    event = batch.events[0]
    assert event.ts == NOW and event.interactive is True
    assert event.properties == values


def test_an_event_sets_its_user_properties_and_only_the_kept_event_properties() -> None:
    body = json.dumps(
        {
            "events": [
                {"uuid": "a", "properties": {"format": "pdf", "plan": "pro"}},
                {"uuid": "a", "properties": {"plan": "free"}, "user_properties": {"plan": "VIP"}},
                {"uuid": "a", "user_properties": {"role": "admin"}},
            ]
        }
    )

    def values(kept: frozenset[str]) -> list[dict[str, object]]:
        batch = parse_batch(
            body,
            received_ms=NOW,
            backfill_days=7,
            default_context=NO_CONTEXT,
            kept_properties=kept,
        )
        return [event.properties for event in batch.events]

    assert values(frozenset()) == [{}, {"plan": "VIP"}, {"role": "admin"}]
    assert values(frozenset({"plan"})) == [{"plan": "pro"}, {"plan": "VIP"}, {"role": "admin"}]
    assert user_values({"format": "pdf"}, {}, frozenset({"plan"})) == {}


def test_clock_skew_is_corrected_with_sent_at() -> None:
    # The device clock runs 2 hours fast: its timestamps are shifted back.
    device_now = NOW + 2 * HOUR_MS
    batch = parse(
        {
            "sent_at": format_time(device_now),
            "events": [{"uuid": "a", "timestamp": format_time(device_now - 5000)}],
        }
    )
    assert batch.events[0].ts == NOW - 5000


def test_backfill_window_follows_the_account_setting() -> None:
    old = format_time(NOW - 20 * DAY_MS)
    assert parse({"events": [{"uuid": "a", "timestamp": old}]}, backfill_days=30).events
    assert parse({"events": [{"uuid": "a", "timestamp": old}]}, backfill_days=7).rejected


def test_epoch_milliseconds_are_accepted() -> None:
    assert parse({"events": [{"uuid": "a", "timestamp": NOW - 1000}]}).events[0].ts == NOW - 1000


def test_context_defaults_to_the_caller() -> None:
    caller = Context("81.2.69.160", "UA")
    batch = parse_batch(
        json.dumps({"events": [{"uuid": "a"}]}),
        received_ms=NOW,
        backfill_days=7,
        default_context=caller,
    )
    assert batch.context == caller
    batch = parse_batch(
        json.dumps({"events": [{"uuid": "a"}], "context": {"user_agent": "Other"}}),
        received_ms=NOW,
        backfill_days=7,
        default_context=caller,
    )
    assert batch.context == Context("81.2.69.160", "Other")
