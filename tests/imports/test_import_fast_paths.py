"""The import's fast paths give what the plain definitions give.

CSV rows are read by position (the plan's CsvLayout) rather than through a
column -> cell dict; a fresh profile is built once with its values; a
user's rows of one batch are merged before one write. Each is checked here
against the slower reference it replaces.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from insights import clock
from insights.domain.core.admission import parse_value
from insights.domain.core.attributes import Rejection, Row, apply_import
from insights.domain.core.profile import (
    CustomValue,
    Profile,
    live_base,
    merge_custom,
    merge_into_live,
    tombstone,
)
from insights.domain.core.sessions import Stamped
from insights.domain.core.timefmt import format_time
from insights.domain.imports.filerows import Record, is_blank
from insights.domain.imports.files import (
    Mapping,
    Plan,
    check_csv_row,
    check_row,
    plan_csv,
)
from insights.services.core import attributes as attribute_path

NOW = 1_800_000_000_000
HOUR = 3_600_000


# ---------------------------------------------------------- CSV by position
HEADER = [" plan ", "uuid", "", "seats", "Job Title", "when", "", "vip", "since"]
MAPPING = Mapping(
    rename={"Job Title": "role"},
    types={"seats": "number", "vip": "boolean", "since": "date"},
    timestamp="when",
)
RECORDS = [
    ["team", "u1", "", "3", "CTO", "2026-01-01T00:00:00Z", "", "yes", "2026-02-01"],
    ["", " U2 ", "x", "", "", "", "y", "", ""],  # blank cells, unnamed columns
    ["team", "u3"],  # missing trailing cells are empty
    ["team", "u4", "", "3", "CTO", "", "", "no", "", " ", ""],  # blank extra cells
    ["team", "u5", "", "3", "CTO", "", "", "no", "", "extra"],  # a real extra cell
    ["team", "", "", "3"],  # no uuid
    ["team", "u6", "", "3", "CTO", "soon"],  # bad timestamp
    ["team", "u7", "", "3", "CTO", str(NOW + 2 * HOUR)],  # future
    ["team", "u8", "", "three", "CTO", "", "", "maybe"],  # first bad cell named
    ["team", "u9", "", "1e3", "x" * 1025],  # too long
    ["team", "u10", "", " -7 ", "", "", "", "0", "2026-W48-1"],
    [],
]


def cells_of(header: list[str], fields: list[str]) -> dict[str, str]:
    """The dict the CSV path used to build per row (later blank names win, as a dict does)."""
    names = [h.strip() for h in header]
    return {name: fields[i] if i < len(fields) else "" for i, name in enumerate(names)}


@pytest.mark.parametrize(
    "mapping", [MAPPING, Mapping(columns=("seats", "vip"), types=MAPPING.types)]
)
@pytest.mark.parametrize("fields", RECORDS)
def test_a_csv_record_by_position_gets_the_verdict_of_its_cells(
    mapping: Mapping, fields: list[str]
) -> None:
    plan = plan_csv(HEADER, mapping)
    got = check_csv_row(2, fields, plan, import_ts=NOW, now_ms=NOW)
    width = len(HEADER)
    if any(f.strip() for f in fields[width:]):
        assert got == Rejection(2, "", f"the row has {len(fields)} fields; the header has {width}")
        return
    assert got == check_row(2, cells_of(HEADER, fields), plan, import_ts=NOW, now_ms=NOW)


def test_the_layout_survives_the_plan_stored_with_the_job() -> None:
    plan = plan_csv(HEADER, MAPPING)
    again = Plan.from_dict(plan.as_dict())
    assert again == plan and again.layout == plan.layout
    assert "layout" not in plan.as_dict()
    row = check_csv_row(2, RECORDS[0], again, import_ts=NOW, now_ms=NOW)
    assert isinstance(row, Row) and row.values["role"] == Stamped("CTO", 1767225600000)


@pytest.mark.parametrize(
    ("data", "blank"),
    [
        ([], True),
        ([""], True),
        ([" ", "\t", "\r\n"], True),
        (["", "x"], False),
        ({}, True),
        ({"a": ""}, False),
    ],
)
def test_blank_records(data: Any, blank: bool) -> None:
    assert is_blank(Record(2, data, 0)) is blank


def test_a_timestamp_of_digits_int_does_not_read_is_a_rejection_not_a_crash() -> None:
    plan = plan_csv(["uuid", "timestamp"], Mapping())
    got = check_csv_row(2, ["u", "\u00b2"], plan, import_ts=NOW, now_ms=NOW)
    assert got == Rejection(2, "timestamp", "not an ISO-8601 timestamp: '\u00b2'")
    assert check_row(
        3,
        {"uuid": "u", "timestamp": "\u00b2"},
        Plan.from_dict(plan.as_dict()),
        import_ts=NOW,
        now_ms=NOW,
    ) == Rejection(3, "timestamp", "not an ISO-8601 timestamp: '\u00b2'")
    assert check_csv_row(4, ["u", "\u0661" * 13], plan, import_ts=NOW, now_ms=NOW) == Row(
        4, "u", {}
    )


# ------------------------------------------------------------------ values
@pytest.mark.parametrize(
    "day",
    ["0001-01-01", "0999-12-31", "1969-12-31", "1970-01-01", "2024-02-29", "9999-12-31"],
)
def test_a_date_cell_is_the_midnight_format_time_gives(day: str) -> None:
    d = datetime.fromisoformat(day).replace(tzinfo=UTC)
    assert parse_value(day, "date") == format_time(int(d.timestamp()) * 1000)


def test_an_iso_week_date_is_a_date_too() -> None:
    assert parse_value("2026-W48-1", "date") == "2026-11-23T00:00:00.000Z"


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("+5", 5),
        ("-0", 0),
        ("5.", 5.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1E-2", 0.01),
        ("\u0661\u0662", 12),  # Arabic-Indic digits are digits to \d, int() and float()
    ],
)
def test_whole_numbers_are_ints_and_the_rest_floats(cell: str, value: float) -> None:
    got = parse_value(cell, "number")
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("cell", ["1_000", "1e999", "0x10", "1.2.3", "", "+", "."])
def test_what_is_not_a_number(cell: str) -> None:
    with pytest.raises(ValueError, match=r"not a|must be finite"):
        parse_value(cell, "number")


# ---------------------------------------------------------------- profiles
def _profiles() -> list[Profile | None]:
    old = CustomValue("free", NOW - 10 * HOUR, "event", NOW - 20 * HOUR)
    alive = Profile("a", "u", NOW - HOUR, last_seen=NOW - HOUR, total_sessions=2)
    return [
        None,
        Profile("a", "u", NOW - HOUR),  # hidden, never seen
        Profile("a", "u", NOW - HOUR, custom={"plan": old}),
        Profile("a", "u", 0, last_seen=1, total_sessions=3, custom={"plan": old}),  # expired
        tombstone("a", "u", NOW - 2 * HOUR),  # erased, still remembered
        Profile("a", "u", 0, erased_at=NOW - 2 * HOUR),  # expired, erasure carried over
        alive,
    ]


UPDATES = [
    {},
    {"plan": Stamped("free", NOW)},  # a resend for some
    {"plan": Stamped("VIP", NOW), "seats": Stamped(3, NOW - 3 * HOUR)},  # one before the erasure
    {"plan": Stamped("VIP", NOW - 30 * HOUR)},  # older than every stored value
]


@pytest.mark.parametrize("updates", UPDATES)
@pytest.mark.parametrize("profile", _profiles())
def test_merge_into_live_is_merge_custom_on_the_live_record(
    profile: Profile | None, updates: dict[str, Stamped]
) -> None:
    base = live_base(profile, "a", "u", NOW)
    reference = merge_custom(base, updates, "csv")
    got = merge_into_live(profile, updates, "csv", account_id="a", uuid="u", now_ms=NOW)
    assert got == (None if reference is base else reference)


# ----------------------------------------------------------- one batch
class _NoMetrics:
    def add_metric(self, **_: Any) -> None:
        pass


@pytest.fixture
def stubbed_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """apply_rows with profiles read from a dict and puts collected."""
    stored: dict[str, Any] = {}
    puts: list[Any] = []
    monkeypatch.setattr(
        attribute_path.store,
        "get_profiles",
        lambda pks, consistent=False: {pk: stored[pk] for pk in pks if pk in stored},
    )
    monkeypatch.setattr(attribute_path.store, "commit", puts.extend)
    monkeypatch.setattr(attribute_path, "metrics", _NoMetrics())
    clock.freeze(NOW)
    try:
        yield stored, puts
    finally:
        clock.reset()


class _Stored:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.version = 1


def test_a_users_rows_in_one_batch_are_one_write_as_if_applied_one_by_one(
    stubbed_store: tuple[dict[str, Any], list[Any]],
) -> None:
    stored, puts = stubbed_store
    known = Profile(
        "acct",
        "u2",
        NOW - HOUR,
        last_seen=NOW - HOUR,
        total_sessions=1,
        custom={"plan": CustomValue("team", NOW - 5 * HOUR, "event")},
    )
    stored["acct#u2"] = _Stored(known)
    t = NOW - 4 * HOUR
    rows = [
        Row(2, "u1", {"plan": Stamped("team", t + 3)}),
        Row(3, "u2", {"plan": Stamped("team", t + 2)}),  # a resend for u2
        Row(4, "u1", {"plan": Stamped("free", t + 1), "seats": Stamped(7, t + 1)}),  # older
        Row(5, "u1", {"plan": Stamped("business", t + 2), "seats": Stamped(5, t + 2)}),
        Row(6, "u2", {"seats": Stamped(9, t)}),
        Row(7, "u3", {"plan": Stamped("free", NOW - 6 * HOUR)}),
        Row(8, "u3", {"plan": Stamped("team", NOW - 7 * HOUR)}),  # older, after
    ]
    before = copy.deepcopy(rows)

    writes = attribute_path.apply_rows("acct", rows, "csv").writes

    one_by_one: dict[str, Profile | None] = {"u1": None, "u2": known, "u3": None}
    for row in rows:
        profile = one_by_one[row.uuid]
        updated = apply_import(
            profile, row.values, account_id="acct", uuid=row.uuid, source="csv", now_ms=NOW
        )
        one_by_one[row.uuid] = updated or profile
    assert writes == len(puts) == 3
    assert {put.profile.uuid: put.profile for put in puts} == one_by_one
    assert one_by_one["u2"].custom["plan"].changed_since == NOW - 5 * HOUR  # type: ignore[union-attr]
    assert {put.profile.uuid: put.expected_version for put in puts} == {
        "u1": None,
        "u2": 1,
        "u3": None,
    }
    assert rows == before  # the rows' own values are shared, never changed


def test_a_batch_that_changes_nothing_writes_nothing(
    stubbed_store: tuple[dict[str, Any], list[Any]],
) -> None:
    stored, puts = stubbed_store
    profile = apply_import(
        None, {"plan": Stamped("team", NOW)}, account_id="acct", uuid="u1", source="csv", now_ms=NOW
    )
    assert profile is not None
    stored["acct#u1"] = _Stored(profile)
    rows = [Row(2, "u1", {"plan": Stamped("team", NOW)}), Row(3, "u1", {"plan": Stamped("x", 1)})]
    assert attribute_path.apply_rows("acct", rows, "csv").writes == 0 and puts == []
