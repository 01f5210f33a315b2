"""How a Salesforce connection reads its object, the pure part: describe, SOQL, rows.

Describe's field types map onto admission's value types: a record becomes a
``Row`` as a file row does (``check_row``), stamped with the record's
``SystemModstamp``, which also orders the incremental reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from insights.domain.core.admission import ValueType
from insights.domain.core.attributes import Rejection, Row
from insights.domain.core.sessions import Retraction
from insights.domain.core.timefmt import TimeFormatError, format_time, parse_time
from insights.domain.imports.files import Plan, check_row, is_empty
from insights.domain.salesforce.connection import Connection

MODSTAMP = "SystemModstamp"
DELETED = "IsDeleted"
_SOQL_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")

# describe's field types -> import types; anything else cannot be imported.
FIELD_TYPES: dict[str, ValueType] = {
    **dict.fromkeys(
        (
            "string",
            "picklist",
            "multipicklist",
            "combobox",
            "textarea",
            "email",
            "url",
            "phone",
            "id",
            "reference",
            "encryptedstring",
        ),
        "string",
    ),
    **dict.fromkeys(("double", "int", "long", "currency", "percent"), "number"),
    "boolean": "boolean",
    "date": "date",
    "datetime": "date",
}


# ----------------------------------------------------------------- describe
@dataclass(frozen=True, slots=True)
class Problem:
    """Why a connection cannot sync: `code` is machine-readable, `message` says what to fix."""

    code: str  # unknown_object | no_access | unknown_field | unsupported_field | ...
    message: str
    field: str | None = None


def check_describe(connection: Connection, describe: dict[str, Any]) -> list[Problem]:
    """The mapping against the object's describe: every problem, named."""
    problems: list[Problem] = []
    name = connection.object
    if not describe.get("queryable", True):
        problems.append(
            Problem("no_access", f"the integration user cannot query {name} (not queryable)")
        )
    by_name = {f["name"].lower(): f for f in describe.get("fields") or []}
    if MODSTAMP.lower() not in by_name:
        problems.append(
            Problem("unsupported_object", f"{name} has no {MODSTAMP}: it cannot sync incrementally")
        )
    for wanted in (connection.uuid_field, *connection.fields):
        found = by_name.get(wanted.lower())
        if found is None:
            problems.append(
                Problem(
                    "unknown_field",
                    f"{name} has no field {wanted}, or the integration user cannot see it "
                    "(deleted, misspelled, or hidden by field-level security)",
                    wanted,
                )
            )
        elif wanted != connection.uuid_field and found.get("type") not in FIELD_TYPES:
            problems.append(
                Problem(
                    "unsupported_field",
                    f"{name}.{wanted} is a {found.get('type')} field; importable types are "
                    "text, picklist, number, currency, percent, checkbox, date and datetime",
                    wanted,
                )
            )
    return problems


def plan_for(connection: Connection, describe: dict[str, Any]) -> Plan:
    """The import plan of a record: uuid field, and each field as its describe type.

    API names are case-insensitive, so the plan reads records by lower-cased
    name (``record_row`` lower-cases them too); attribute names stay as given.
    """
    types = {f["name"].lower(): f.get("type") for f in describe.get("fields") or []}
    attributes: dict[str, tuple[str, ValueType | None]] = {
        f.lower(): (connection.attribute(f), FIELD_TYPES[types[f.lower()]])
        for f in connection.fields
    }
    return Plan(connection.uuid_field.lower(), None, attributes)


# ------------------------------------------------------------------- SOQL
@dataclass(frozen=True, slots=True)
class Cursor:
    """The last record applied, in (SystemModstamp, Id) order."""

    modstamp_ms: int
    record_id: str

    def as_list(self) -> list[Any]:
        return [self.modstamp_ms, self.record_id]

    @classmethod
    def from_list(cls, raw: Any) -> Cursor | None:
        return None if not raw else cls(int(raw[0]), str(raw[1]))

    def after(self, other: Cursor | None) -> bool:
        return other is None or (self.modstamp_ms, self.record_id) > (
            other.modstamp_ms,
            other.record_id,
        )


def _select(connection: Connection, *, deleted: bool = False) -> str:
    names = ["Id", MODSTAMP, *([DELETED] if deleted else []), connection.uuid_field]
    names += connection.fields
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return f"SELECT {', '.join(seen.values())} FROM {connection.object}"


def soql_time(ms: int) -> str:
    return format_time(ms) or ""


def incremental_query(
    connection: Connection, cursor: Cursor | None, *, deleted: bool = False
) -> str:
    """Records after the cursor, oldest first: (SystemModstamp, Id) pages without overlap.

    `deleted`: select IsDeleted too, for the queryAll endpoint, which also
    returns the records in the recycle bin (their SystemModstamp is the
    time of the deletion, so they come in the same order).
    """
    conditions = []
    if connection.filter:
        conditions.append(f"({connection.filter})")
    if cursor is not None:
        if not _SOQL_ID.match(cursor.record_id):
            raise ValueError("a cursor's record id is a Salesforce id")
        at = soql_time(cursor.modstamp_ms)
        conditions.append(
            f"({MODSTAMP} > {at} OR ({MODSTAMP} = {at} AND Id > '{cursor.record_id}'))"
        )
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"{_select(connection, deleted=deleted)}{where} ORDER BY {MODSTAMP}, Id"


def bulk_query(connection: Connection, *, deleted: bool = False) -> str:
    """The whole object for a Bulk API 2.0 job (unordered: the cursor is the maximum seen)."""
    where = f" WHERE ({connection.filter})" if connection.filter else ""
    return f"{_select(connection, deleted=deleted)}{where}"


def follows_deletions(describe: dict[str, Any]) -> bool:
    """Whether the object has IsDeleted (nearly all do): then syncs read with queryAll."""
    return any(
        str(f.get("name", "")).lower() == DELETED.lower() for f in describe.get("fields") or []
    )


def count_query(connection: Connection, cursor: Cursor | None) -> str:
    """How many records a sync from `cursor` would read (one call, no records)."""
    text = incremental_query(connection, cursor)
    rest = text.partition(" FROM ")[2]
    return f"SELECT COUNT() FROM {rest.rsplit(' ORDER BY ', 1)[0]}"


# ------------------------------------------------------------------ records
def record_row(
    number: int, record: dict[str, Any], plan: Plan, *, now_ms: int
) -> tuple[Row | Rejection, Cursor | None]:
    """One record's verdict and its place in (SystemModstamp, Id) order.

    Values are typed as in a file import; the record's SystemModstamp is
    the time they were true. A mapped field that is null (an empty cell in
    a Bulk API CSV: Salesforce stores no empty strings) withdraws the value
    Salesforce set, as a deleted record does: unlike a file, a record always
    carries every field the sync selects, so null means cleared. A record
    without a readable SystemModstamp or uuid is rejected and names its Id.
    """
    cells = {str(k).lower(): v for k, v in record.items()}
    record_id = str(cells.get("id") or "")
    try:
        modstamp = parse_time(cells.get(MODSTAMP.lower()) or "")
    except TimeFormatError:
        return Rejection(number, MODSTAMP, f"record {record_id}: no readable {MODSTAMP}"), None
    cursor = Cursor(modstamp, record_id) if record_id else None
    verdict = check_row(number, cells, plan, import_ts=modstamp, now_ms=now_ms)
    if isinstance(verdict, Rejection):
        column = _field_name(verdict.column, record)
        return Rejection(number, column, f"record {record_id}: {verdict.reason}"), cursor
    cleared = {
        name: Retraction(None, modstamp)
        for column, (name, _kind) in plan.attributes.items()
        if column in cells and is_empty(cells[column])
    }
    if cleared:
        verdict = Row(number, verdict.uuid, {**cleared, **verdict.values})
    return verdict, cursor


def is_deleted(record: dict[str, Any]) -> bool:
    """IsDeleted of a queryAll record (JSON true, or "true" in a Bulk API CSV)."""
    value = next((v for k, v in record.items() if str(k).lower() == "isdeleted"), None)
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def deletion_row(
    number: int, record: dict[str, Any], plan: Plan, *, now_ms: int
) -> tuple[Row | None, Cursor | None]:
    """A deleted record: it withdraws every attribute it maps (a ``Retraction`` each).

    Stamped with the deletion's SystemModstamp, a retraction clears only a
    value Salesforce set and nothing newer (as SCIM deprovisioning makes
    its attributes null). A deleted record without a uuid set nothing:
    no row. A record without a readable SystemModstamp cannot be placed.
    """
    cells = {str(k).lower(): v for k, v in record.items()}
    record_id = str(cells.get("id") or "")
    try:
        modstamp = parse_time(cells.get(MODSTAMP.lower()) or "")
    except TimeFormatError:
        return None, None
    cursor = Cursor(modstamp, record_id) if record_id else None
    uuid_only = Plan(plan.uuid, None, {})
    verdict = check_row(
        number, {plan.uuid: cells.get(plan.uuid)}, uuid_only, import_ts=modstamp, now_ms=now_ms
    )
    if isinstance(verdict, Rejection):
        return None, cursor
    values = {name: Retraction(None, modstamp) for name, _kind in plan.attributes.values()}
    return Row(number, verdict.uuid, values), cursor


def _field_name(lowered: str, record: dict[str, Any]) -> str:
    return next((k for k in record if str(k).lower() == lowered), lowered)
