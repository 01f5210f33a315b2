"""Pure import logic: mappings, header plans, typed values, streaming rows (no moto)."""

from __future__ import annotations

import gzip
import io

import pytest

from insights.domain.core.admission import parse_value
from insights.domain.core.attributes import Rejection, Row, apply_import
from insights.domain.core.profile import RETENTION_MS, CustomValue, Profile
from insights.domain.core.sessions import Stamped
from insights.domain.imports import filerows
from insights.domain.imports.filerows import decompressed, records
from insights.domain.imports.files import (
    FileError,
    Mapping,
    MappingError,
    Plan,
    check_csv_row,
    check_filename,
    check_row,
    parse_mapping,
    plan_csv,
    plan_jsonl,
)

NOW = 1_800_000_000_000


def rows_of(data: bytes, fmt: str = "csv", **kw):
    return list(records(io.BytesIO(data), fmt, **kw))


# ------------------------------------------------------------------ mapping
def test_mapping_defaults_and_fields() -> None:
    assert parse_mapping(None) == Mapping()
    mapping = parse_mapping(
        {
            "uuid": "User ID",
            "columns": ["Job Title", "age"],
            "rename": {"Job Title": "role"},
            "types": {"age": "number"},
            "timestamp": "updated",
        }
    )
    assert mapping.uuid == "User ID" and mapping.columns == ("Job Title", "age")
    assert parse_mapping(mapping.as_dict()) == mapping


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "mapping must be a JSON object"),
        ({"colums": ["a"]}, "unknown mapping field 'colums'"),
        ({"types": {"a": "integer"}}, "mapping.types['a'] must be one of"),
        ({"columns": []}, "mapping.columns must be a non-empty list"),
        ({"rename": {"a": ""}}, "mapping.rename['a'] must be an attribute name"),
        ({"uuid": "id", "timestamp": "id"}, "name the same column"),
    ],
)
def test_bad_mappings_are_named(raw: object, message: str) -> None:
    with pytest.raises(MappingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_mapping(raw)


@pytest.mark.parametrize("name", ["a.csv", "B.CSV.GZ", "x.jsonl", "x.jsonl.gz"])
def test_supported_file_names(name: str) -> None:
    assert check_filename(name) == name


@pytest.mark.parametrize("name", ["../x.csv", "a/b.csv", "x.txt", "", "a\\b.csv", "x\n.csv"])
def test_upload_names_are_plain_files_of_a_known_type(name: str) -> None:
    with pytest.raises(MappingError):
        check_filename(name)


@pytest.mark.parametrize("name", ["${filename}.csv", "crm-${filename}.jsonl.gz"])
def test_an_upload_name_with_s3s_filename_variable_is_refused(name: str) -> None:
    """S3's form upload replaces ${filename} in the key with the sent file's name: the
    object would land off the key the job waits for (left pending), or S3 refuse it."""
    with pytest.raises(MappingError, match=r"\$\{filename\}"):
        check_filename(name)


# --------------------------------------------------------------------- plan
def test_header_problems_fail_the_whole_file() -> None:
    with pytest.raises(FileError, match="no 'uuid' column"):
        plan_csv(["id", "role"], Mapping())
    with pytest.raises(FileError, match="duplicate column name in the header: 'role'"):
        plan_csv(["uuid", "role", "role"], Mapping())
    with pytest.raises(FileError, match="names column 'plan'"):
        plan_csv(["uuid", "role"], Mapping(columns=("plan",)))


def test_plan_skips_uuid_timestamp_and_unnamed_columns() -> None:
    plan = plan_csv(["uuid", " role ", "timestamp", ""], Mapping(types={"role": "string"}))
    assert plan.attributes == {"role": ("role", "string")}
    assert plan.timestamp == "timestamp"


# -------------------------------------------------------------------- types
@pytest.mark.parametrize(
    ("cell", "kind", "value"),
    [
        ("42", "number", 42),
        ("-1.5e3", "number", -1500.0),
        (" 7 ", "number", 7),
        ("YES", "boolean", True),
        ("0", "boolean", False),
        ("2026-11-28", "date", "2026-11-28T00:00:00.000Z"),
        ("2026-11-28T10:00:00+01:00", "date", "2026-11-28T09:00:00.000Z"),
        ('a, "b"', "string", 'a, "b"'),
        (3, None, 3),
        (True, None, True),
        (2.0, "string", "2"),
    ],
)
def test_values_parse_as_their_type(cell: object, kind: str | None, value: object) -> None:
    assert parse_value(cell, kind) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cell", "kind", "reason"),
    [
        ("12abc", "number", "not a number"),
        ("nan", "number", "not a number"),
        ("maybe", "boolean", "not a boolean"),
        ("28/11/2026", "date", "not a date"),
        ("2026-11-28T10:00:00", "date", "needs a UTC offset"),
        ("x" * 1025, "string", "longer than 1024 characters"),
        ({"a": 1}, None, "must be a string, number or boolean"),
    ],
)
def test_values_that_do_not_parse(cell: object, kind: str | None, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_value(cell, kind)  # type: ignore[arg-type]


def test_row_verdicts() -> None:
    plan = plan_csv(["uuid", "age", "timestamp"], Mapping(types={"age": "number"}))
    ok = check_csv_row(2, ["u1", "41", "2026-01-01T00:00:00Z"], plan, import_ts=NOW, now_ms=NOW)
    assert ok == Row(2, "u1", {"age": Stamped(41, 1767225600000)})
    empty_cell = check_csv_row(3, ["u1", "", ""], plan, import_ts=NOW, now_ms=NOW)
    assert empty_cell == Row(3, "u1", {})
    spaced = check_csv_row(3, [" U1 ", "", ""], plan, import_ts=NOW, now_ms=NOW)
    assert spaced == Row(3, " U1 ", {})  # opaque: kept as sent, like an event's uuid
    assert check_csv_row(4, [" ", "1"], plan, import_ts=NOW, now_ms=NOW) == Rejection(
        4, "uuid", "empty uuid"
    )
    assert check_csv_row(5, ["u", "1", "soon"], plan, import_ts=NOW, now_ms=NOW) == Rejection(
        5, "timestamp", "not an ISO-8601 timestamp: 'soon'"
    )
    assert check_csv_row(6, ["u", "1", "", "x"], plan, import_ts=NOW, now_ms=NOW) == Rejection(
        6, "", "the row has 4 fields; the header has 3"
    )
    future = str(NOW + 2 * 3600 * 1000)
    assert check_csv_row(7, ["u", "1", future], plan, import_ts=NOW, now_ms=NOW) == Rejection(
        7, "timestamp", "more than 1 hour in the future"
    )


# ------------------------------------------------------------ merge rules
def test_import_lands_hidden_on_new_and_expired_users_and_changes_nothing_twice() -> None:
    values = {"plan": Stamped("VIP", NOW)}
    new = apply_import(None, values, account_id="a", uuid="u", source="s3", now_ms=NOW)
    assert new is not None and new.total_sessions == 0 and not new.is_visible(NOW)
    assert apply_import(new, values, account_id="a", uuid="u", source="s3", now_ms=NOW) is None
    expired = Profile(
        "a",
        "u",
        created_at=0,
        first_seen=1,
        last_seen=2,
        total_sessions=3,
        custom={"old": CustomValue("x", 2, "event")},
    )
    assert not expired.is_alive(NOW) and NOW > RETENTION_MS
    fresh = apply_import(expired, values, account_id="a", uuid="u", source="s3", now_ms=NOW)
    assert fresh is not None
    assert fresh.total_sessions == 0 and fresh.created_at == NOW and set(fresh.custom) == {"plan"}


def test_a_whole_number_read_back_from_storage_equals_the_float_imported_again() -> None:
    """Storage keeps whole numbers whole: 3000.0 comes back as 3000. Importing
    "3000.00" again at the same time is the same value and must write nothing."""
    imported = apply_import(
        None, {"mrr": Stamped(3000.0, NOW)}, account_id="a", uuid="u", source="s3", now_ms=NOW
    )
    assert imported is not None
    stored = Profile(
        "a",
        "u",
        created_at=imported.created_at,
        custom={"mrr": CustomValue(3000, NOW, "s3")},  # as storage/core/records.py reads it back
    )
    again = {"mrr": Stamped(3000.0, NOW)}
    assert apply_import(stored, again, account_id="a", uuid="u", source="s3", now_ms=NOW) is None


# ------------------------------------------------------------ streaming rows
def test_real_world_csv_bom_crlf_quotes_and_trailing_lines() -> None:
    data = b'\xef\xbb\xbfrole,uuid\r\n"admin, ""chief""",u1\r\n"multi\r\nline",u2\r\n\r\n\r\n'
    got = rows_of(data)
    assert [r.data for r in got] == [
        ["role", "uuid"],
        ['admin, "chief"', "u1"],
        ["multi\r\nline", "u2"],
        [],
        [],
    ]
    assert got[-1].end == len(data)


def test_resuming_at_a_record_end_gives_the_rest() -> None:
    data = b'uuid,v\nu1,"a\nb"\nu2,c\nu3,d\n'
    whole = rows_of(data)
    cut = whole[1]
    rest = rows_of(data[cut.end :], offset=cut.end, row=cut.row)
    assert [(r.row, r.data, r.end) for r in rest] == [(r.row, r.data, r.end) for r in whole[2:]]
    gz = gzip.compress(data)
    again = list(records(decompressed(io.BytesIO(gz), skip=cut.end), "csv", offset=cut.end, row=2))
    assert [r.data for r in again] == [r.data for r in whole[2:]]


@pytest.mark.parametrize(
    ("data", "fmt", "reason"),
    [
        (b"uuid,v\nu1,\xff\n", "csv", "not valid UTF-8: byte 10"),
        (b'uuid,v\nu1,"a"b\n', "csv", "row 2 is not valid CSV"),
        # Lines ended by CR alone (old Mac exports): Python's own words named its
        # "universal-newline mode"; the reason says what to do with the file.
        (b"uuid,v\ru1,a\r", "csv", "row 1 .*carriage return.*CR alone.*LF or CRLF"),
        (b'{"uuid": "a"}\n[1]\n', "jsonl", "line 2 is not a JSON object"),
        (b'{"uuid": "a", "uuid": "b"}\n', "jsonl", "line 1 has the key 'uuid' twice"),
        (b"{oops\n", "jsonl", "line 1 is not valid JSON"),
    ],
)
def test_unreadable_files(data: bytes, fmt: str, reason: str) -> None:
    with pytest.raises(FileError, match=reason):
        rows_of(data, fmt)


def test_overlong_lines_fail_instead_of_filling_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filerows, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(filerows, "CHUNK_BYTES", 16)
    with pytest.raises(FileError, match="a line longer than 100 bytes starts at byte 7"):
        rows_of(b"uuid,v\n" + b"x" * 500)


def test_broken_gzip_is_a_file_error() -> None:
    broken = gzip.compress(b"uuid\nu1\n" * 100)[:-20]
    with pytest.raises(FileError, match="not a valid gzip file"):
        list(records(decompressed(io.BytesIO(broken)), "csv"))


def test_json_lines_rename_and_type_every_key_when_no_column_list() -> None:
    mapping = Mapping(rename={"Job Title": "role"}, types={"age": "number", "vip": "boolean"})
    plan = Plan.from_dict(plan_jsonl(mapping).as_dict())
    cells = {"uuid": "u1", "Job Title": "CTO", "age": "41", "vip": "yes", "n": 2.5}
    assert check_row(1, cells, plan, import_ts=NOW, now_ms=NOW) == Row(
        1,
        "u1",
        {
            "role": Stamped("CTO", NOW),
            "age": Stamped(41, NOW),
            "vip": Stamped(True, NOW),
            "n": Stamped(2.5, NOW),
        },
    )
    clash = {"uuid": "u1", "Job Title": "CTO", "role": "CEO"}
    assert check_row(2, clash, plan, import_ts=NOW, now_ms=NOW) == Rejection(
        2, "role", "keys 'Job Title' and 'role' both map to 'role'"
    )


def test_a_jsonl_number_too_small_for_a_double_is_refused_not_read_as_zero() -> None:
    """1e-400 read as 0.0 and was imported as 0, where 1e-200 is refused."""
    lines = rows_of(b'{"uuid": "u", "n": 1e-400, "z": 0.0e-999}\n', "jsonl")
    data = lines[0].data
    assert data["z"] == 0.0
    with pytest.raises(ValueError, match="too small"):
        parse_value(data["n"], None)
