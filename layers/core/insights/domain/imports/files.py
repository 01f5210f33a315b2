"""File imports, the pure part: mappings, column plans, typed values, row verdicts.

A file's rows become custom attributes. The mapping says which column holds
the uuid, which columns are imported, under which names and as which types.
Problems with the file as a whole (FileError) stop the import before any
change; problems with one row (a Rejection) reject that row only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from insights.domain.core.admission import (
    FROM_TEXT,
    VALUE_TYPES,
    Scalar,
    ValueType,
    name_problem,
    number_text,
    parse_value,
    printable,
    uuid_problem,
)
from insights.domain.core.attributes import Rejection, Row
from insights.domain.core.events import MAX_FUTURE_MS
from insights.domain.core.limits import (
    MAX_PROPERTY_NAME_CHARS,
    BigNumber,
    Usage,
    custom_overflow,
    lone_surrogate,
    surely_fits,
    values_bytes,
)
from insights.domain.core.sessions import Stamped
from insights.domain.core.timefmt import MAX_EPOCH_MS, TimeFormatError, parse_time

Format = Literal["csv", "jsonl"]
MAX_COLUMNS = 1000
MAX_FILENAME_CHARS = 200
# The mapping is kept on the job item (DynamoDB's 400 KB) and answered in every listing
# of up to 100 jobs (a Lambda answer stops at 6 MB): measured as the JSON the API
# answers, where a non-ASCII character takes up to 12 bytes (\ud83d\ude00).
MAX_MAPPING_CHARS = 32_000
MAPPING_FIELDS = frozenset({"uuid", "columns", "rename", "types", "timestamp"})
DEFAULT_TIMESTAMP_COLUMN = "timestamp"


class MappingError(ValueError):
    """The mapping itself is wrong (refused by the API, fails an S3 drop's import)."""


class FileError(ValueError):
    """The file as a whole cannot be imported: nothing is changed."""


@dataclass(frozen=True, slots=True)
class Mapping:
    uuid: str = "uuid"
    columns: tuple[str, ...] | None = None  # None: every column
    rename: dict[str, str] = field(default_factory=dict)
    types: dict[str, ValueType] = field(default_factory=dict)
    timestamp: str | None = None  # None: the column "timestamp" if there is one

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"uuid": self.uuid}
        if self.columns is not None:
            body["columns"] = list(self.columns)
        if self.rename:
            body["rename"] = dict(self.rename)
        if self.types:
            body["types"] = dict(self.types)
        if self.timestamp is not None:
            body["timestamp"] = self.timestamp
        return body


def _column_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{where} must be a non-empty column name")
    return value.strip()


def parse_mapping(raw: Any) -> Mapping:
    """A mapping from its JSON form; every problem is named."""
    if raw is None:
        return Mapping()
    if not isinstance(raw, dict):
        raise MappingError("mapping must be a JSON object")
    unknown = sorted(set(raw) - MAPPING_FIELDS)
    if unknown:
        raise MappingError(
            f"unknown mapping field {unknown[0]!r}; known: {', '.join(sorted(MAPPING_FIELDS))}"
        )
    uuid = _column_name(raw.get("uuid", "uuid"), "mapping.uuid")
    columns = None
    if raw.get("columns") is not None:
        if not isinstance(raw["columns"], list) or not raw["columns"]:
            raise MappingError("mapping.columns must be a non-empty list of column names")
        columns = tuple(_column_name(c, "each of mapping.columns") for c in raw["columns"])
        if len(set(columns)) != len(columns):
            raise MappingError("mapping.columns names a column twice")
    rename: dict[str, str] = {}
    if raw.get("rename") is not None:
        if not isinstance(raw["rename"], dict):
            raise MappingError("mapping.rename must be an object of column -> attribute name")
        for source, target in raw["rename"].items():
            source = _column_name(source, "mapping.rename keys")
            if not isinstance(target, str) or not 1 <= len(target) <= MAX_PROPERTY_NAME_CHARS:
                raise MappingError(
                    f"mapping.rename[{source!r}] must be an attribute name of "
                    f"1-{MAX_PROPERTY_NAME_CHARS} characters"
                )
            rename[source] = target
    types: dict[str, ValueType] = {}
    if raw.get("types") is not None:
        if not isinstance(raw["types"], dict):
            raise MappingError("mapping.types must be an object of column -> type")
        for column, kind in raw["types"].items():
            column = _column_name(column, "mapping.types keys")
            if kind not in VALUE_TYPES:
                raise MappingError(
                    f"mapping.types[{column!r}] must be one of {', '.join(VALUE_TYPES)}"
                )
            types[column] = kind
    timestamp = None
    if raw.get("timestamp") is not None:
        timestamp = _column_name(raw["timestamp"], "mapping.timestamp")
    if timestamp is not None and timestamp == uuid:
        raise MappingError("mapping.timestamp and mapping.uuid name the same column")
    mapping = Mapping(uuid=uuid, columns=columns, rename=rename, types=types, timestamp=timestamp)
    size = len(json.dumps(mapping.as_dict()))
    if size > MAX_MAPPING_CHARS:
        raise MappingError(
            f"the mapping is {size // 1000} KB as JSON; at most {MAX_MAPPING_CHARS // 1000} KB "
            "(it is kept with each import): leave out columns to import them all"
        )
    return mapping


def file_format(name: str) -> tuple[Format, bool]:
    """(format, gzipped-by-name) from a file name; FileError for anything else."""
    lower = name.lower()
    gz = lower.endswith(".gz")
    base = lower[:-3] if gz else lower
    if base.endswith(".csv"):
        return "csv", gz
    if base.endswith(".jsonl"):
        return "jsonl", gz
    raise FileError(
        "unsupported file type: the name must end in .csv, .csv.gz, .jsonl or .jsonl.gz"
    )


def check_filename(name: Any) -> str:
    """An upload's file name: a plain name, never a path (MappingError if not)."""
    if not isinstance(name, str) or not name or len(name) > MAX_FILENAME_CHARS:
        raise MappingError(f"filename must be 1-{MAX_FILENAME_CHARS} characters")
    if any(c in name for c in "/\\") or name in (".", "..") or not name.isprintable():
        raise MappingError("filename must be a plain file name, without '/', '\\' or controls")
    if "${filename}" in name:
        # S3's form upload puts the sent file's name there: not the key the job waits for.
        raise MappingError("filename must not hold ${filename} (S3 replaces it in the key)")
    try:
        file_format(name)
    except FileError as exc:
        raise MappingError(str(exc)) from None
    return name


# ------------------------------------------------------------------- plan
@dataclass(frozen=True, slots=True)
class Plan:
    """How one file's columns turn into attributes."""

    uuid: str
    timestamp: str | None
    # source column -> (attribute name, declared type or None for the cell's own)
    attributes: dict[str, tuple[str, ValueType | None]]
    header: tuple[str, ...] | None = None  # CSV only: the columns in file order
    # JSON Lines without a column list: every key of a line, renamed and typed so.
    every_key: bool = False
    rename: dict[str, str] = field(default_factory=dict)
    types: dict[str, ValueType] = field(default_factory=dict)
    # CSV only: where the cells are in a record, worked out once from the header.
    layout: CsvLayout | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.header is not None:
            object.__setattr__(self, "layout", CsvLayout.of(self))

    def as_dict(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "timestamp": self.timestamp,
            "attributes": {k: list(v) for k, v in self.attributes.items()},
            "header": list(self.header) if self.header is not None else None,
            "every_key": self.every_key,
            "rename": self.rename,
            "types": self.types,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        return cls(
            uuid=raw["uuid"],
            timestamp=raw["timestamp"],
            attributes={k: (v[0], v[1]) for k, v in raw["attributes"].items()},
            header=tuple(raw["header"]) if raw.get("header") is not None else None,
            every_key=bool(raw.get("every_key")),
            rename=dict(raw.get("rename") or {}),
            types=dict(raw.get("types") or {}),
        )


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """A CSV plan by position: rows are read from the record, not through a dict per row."""

    width: int  # the header's columns
    uuid: int | None  # None: not in the header (every row then lacks a uuid)
    timestamp: int | None
    # (position, column, attribute name, how its text becomes the value), in plan order
    attributes: tuple[tuple[int, str, str, Callable[[str], Scalar]], ...]

    @classmethod
    def of(cls, plan: Plan) -> CsvLayout:
        assert plan.header is not None
        # Names are unique but for blank ones, which nothing refers to.
        position = {name: i for i, name in enumerate(plan.header)}
        return cls(
            width=len(plan.header),
            uuid=position.get(plan.uuid),
            timestamp=None if plan.timestamp is None else position.get(plan.timestamp),
            attributes=tuple(
                (position[column], column, target, FROM_TEXT[kind or "string"])
                for column, (target, kind) in plan.attributes.items()
                if column in position  # a column the file lacks is empty on every row
            ),
        )


def plan_csv(header: list[str], mapping: Mapping) -> Plan:
    """Check a CSV header against the mapping (FileError when the file cannot be used)."""
    names = [h.strip() for h in header]
    if len(names) > MAX_COLUMNS:
        raise FileError(f"the header has {len(names)} columns; at most {MAX_COLUMNS}")
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise FileError(f"duplicate column name in the header: {name!r}")
        seen.add(name)
    if mapping.uuid not in seen:
        raise FileError(f"no {mapping.uuid!r} column in the header: it identifies the users")
    timestamp = mapping.timestamp
    if timestamp is not None and timestamp not in seen:
        raise FileError(f"the mapping's timestamp column {timestamp!r} is not in the header")
    if timestamp is None and DEFAULT_TIMESTAMP_COLUMN in seen:
        timestamp = DEFAULT_TIMESTAMP_COLUMN
    named = list(mapping.columns or []) + list(mapping.rename) + list(mapping.types)
    for column in named:
        if column not in seen:
            raise FileError(f"the mapping names column {column!r}, which is not in the header")
    chosen = list(mapping.columns) if mapping.columns is not None else [n for n in names if n]
    attributes = _attributes(chosen, mapping, timestamp)
    return Plan(mapping.uuid, timestamp, attributes, tuple(names))


def plan_jsonl(mapping: Mapping) -> Plan:
    """JSON Lines have no header: columns are each line's keys."""
    timestamp = mapping.timestamp or DEFAULT_TIMESTAMP_COLUMN
    if mapping.columns is None:
        return Plan(
            mapping.uuid,
            timestamp,
            {},
            every_key=True,
            rename=dict(mapping.rename),
            types=dict(mapping.types),
        )
    return Plan(mapping.uuid, timestamp, _attributes(list(mapping.columns), mapping, timestamp))


def _attributes(
    chosen: list[str], mapping: Mapping, timestamp: str | None
) -> dict[str, tuple[str, ValueType | None]]:
    attributes: dict[str, tuple[str, ValueType | None]] = {}
    targets: dict[str, str] = {}
    for column in chosen:
        if column in (mapping.uuid, timestamp):
            continue
        target = mapping.rename.get(column, column)
        if len(target) > MAX_PROPERTY_NAME_CHARS:
            raise FileError(
                f"column {column[:40]!r} would be an attribute name longer than "
                f"{MAX_PROPERTY_NAME_CHARS} characters: rename it in the mapping"
            )
        if target in targets:
            raise FileError(f"columns {targets[target]!r} and {column!r} both map to {target!r}")
        targets[target] = column
        attributes[column] = (target, mapping.types.get(column))
    return attributes


# ------------------------------------------------------------------- values
class _Bad(Exception):
    def __init__(self, column: str, reason: str) -> None:
        self.column = column
        self.reason = reason


def is_empty(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def parse_timestamp(cell: Any) -> int:
    """The row's time: ISO-8601 with an offset, a date, or epoch milliseconds."""
    if isinstance(cell, str):
        text = cell.strip()
        if text.isdecimal():  # not isdigit: int() refuses digits like "²"
            if len(text) > len(str(MAX_EPOCH_MS)):
                # Past any epoch time; int() of over 4,300 digits raises ValueError.
                raise TimeFormatError("epoch milliseconds out of range")
            return parse_time(int(text))
        if len(text) == 10:
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise TimeFormatError(f"not a timestamp: {text[:40]!r}") from None
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000
    return parse_time(cell)  # an int is epoch milliseconds; parse_time refuses the rest


# --------------------------------------------------------------------- rows
def check_row(
    number: int, cells: dict[str, Any], plan: Plan, *, import_ts: int, now_ms: int
) -> Row | Rejection:
    """One row's verdict. Empty cells leave attributes unchanged."""
    try:
        return _check_row(number, cells, plan, import_ts=import_ts, now_ms=now_ms)
    except _Bad as bad:
        return Rejection(number, bad.column, bad.reason)


def check_csv_row(
    number: int, fields: list[str], plan: Plan, *, import_ts: int, now_ms: int
) -> Row | Rejection:
    """A CSV record's verdict, as check_row on its cells (missing trailing cells are empty)."""
    try:
        return _check_csv_row(number, fields, plan, import_ts=import_ts, now_ms=now_ms)
    except _Bad as bad:
        return Rejection(number, bad.column, bad.reason)


def _check_csv_row(
    number: int, fields: list[str], plan: Plan, *, import_ts: int, now_ms: int
) -> Row:
    layout = plan.layout
    assert layout is not None
    count = len(fields)
    if count > layout.width and any(f.strip() for f in fields[layout.width :]):
        raise _Bad("", f"the row has {count} fields; the header has {layout.width}")
    uuid = _uuid(_field(fields, layout.uuid), plan.uuid)
    ts = import_ts
    if plan.timestamp is not None:
        ts = _row_time(_field(fields, layout.timestamp), plan.timestamp, import_ts, now_ms)
    values: dict[str, Stamped] = {}
    for index, column, target, from_text in layout.attributes:
        cell = fields[index] if index < count else ""
        if not cell.strip():
            continue
        try:
            values[target] = Stamped(from_text(cell), ts)
        except ValueError as exc:
            raise _Bad(column, str(exc)) from None
    return Row(number, uuid, _within_caps(values))


def _field(fields: list[str], index: int | None) -> str:
    return fields[index] if index is not None and index < len(fields) else ""


def _check_row(
    number: int, cells: dict[str, Any], plan: Plan, *, import_ts: int, now_ms: int
) -> Row:
    uuid = _uuid(cells.get(plan.uuid), plan.uuid)
    ts = import_ts
    if plan.timestamp is not None:
        ts = _row_time(cells.get(plan.timestamp), plan.timestamp, import_ts, now_ms)
    if plan.every_key:
        # JSON Lines with every key imported: the keys of this line.
        attributes = {
            key: (plan.rename.get(key, key), plan.types.get(key))
            for key in cells
            if key not in (plan.uuid, plan.timestamp)
        }
        targets: dict[str, str] = {}
        for key, (target, _) in attributes.items():
            if lone_surrogate(key):
                raise _Bad(printable(key), "a key holds a lone UTF-16 surrogate")
            problem = name_problem(target)
            if problem is not None:
                raise _Bad(key[:40], problem)
            if target in targets:
                raise _Bad(key, f"keys {targets[target]!r} and {key!r} both map to {target!r}")
            targets[target] = key
    else:
        attributes = plan.attributes
    values: dict[str, Stamped] = {}
    for column, (target, kind) in attributes.items():
        cell = cells.get(column)
        if is_empty(cell):
            continue
        try:
            values[target] = Stamped(parse_value(cell, kind), ts)
        except ValueError as exc:
            raise _Bad(printable(column), str(exc)) from None
    return Row(number, uuid, _within_caps(values))


def _within_caps(values: dict[str, Stamped]) -> dict[str, Stamped]:
    """A row that alone sets more than a user may hold is refused (domain.limits)."""
    if surely_fits(len(values)):
        return values
    size = values_bytes((name, stamped.value) for name, stamped in values.items())
    problem = custom_overflow(Usage(len(values), size))
    if problem is not None:
        raise _Bad("", problem.replace("the user would hold", "the row sets"))
    return values


def _uuid(cell: Any, column: str) -> str:
    uuid = cell
    if isinstance(uuid, BigNumber):
        uuid = uuid.text
    elif isinstance(uuid, int | float) and not isinstance(uuid, bool):
        uuid = number_text(uuid)
    if not isinstance(uuid, str) or not uuid.strip():
        raise _Bad(column, "empty uuid")
    # Verbatim, as events take it: a uuid is opaque, case and spaces included.
    problem = uuid_problem(uuid)
    if problem is not None:
        raise _Bad(column, problem.replace("uuid is longer", "uuid longer"))
    return uuid


def _row_time(cell: Any, column: str, import_ts: int, now_ms: int) -> int:
    """The row's own time if it has one, else the import's."""
    if is_empty(cell):
        return import_ts
    try:
        ts = parse_timestamp(cell)
    except TimeFormatError as exc:
        raise _Bad(column, str(exc)) from None
    if ts > now_ms + MAX_FUTURE_MS:
        raise _Bad(column, "more than 1 hour in the future")
    return ts


def status_of(rows_imported: int, rows_rejected: int) -> str:
    if rows_rejected == 0:
        return "succeeded"
    return "partially_succeeded" if rows_imported else "failed"
