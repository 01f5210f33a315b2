"""The console's aggregate items (AggregatesTable): daily stats and the attribute catalogue.

Two item families per account, each one partition key, so a page view is one
Query:

- pk "<account>#day": sk "YYYY-MM-DD" holds that UTC day's counters
  (`new_users`, `sessions`, the duration histogram `h_*`), and sk "users"
  (after every date in key order) the count of visible users now.
- pk "<account>#attr": sk "<attribute name>" holds `users`, `src_<source>`
  and `type_<type>` counts and `ex`, a string set of up to five examples.

Between a close and its aggregate items, one more family: pk
"<account>#pending", sk "<ms>#<stream sequence number>" holds a stream
batch's sums for the account (`d`, compact JSON) until a roll-up folds them
into the items above; pk "<account>#rolled" remembers up to which sort key
(`to`) that happened. Readers add the pending sums after the marker.
Pending items expire by TTL (`expires_at`) days after they are folded.

Counter names are data (one per histogram bucket, source or type), so the
writes are DynamoDB update expressions built here rather than pynamodb
model attributes; they go through pynamodb's connection (its botocore client).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from insights.config import load
from insights.storage import aws

USERS_SK = "users"
ROLLED_SK = "rolled"
NOTHING_ROLLED = "0"  # below every pending sort key (they start with 13 digits)
EXAMPLES = "ex"
# DynamoDB's limit of actions per transaction.
MAX_TRANSACTION_ITEMS = 100
MAX_ATTEMPTS = 8
_deserialize = TypeDeserializer().deserialize


def day_pk(account_id: str) -> str:
    return f"{account_id}#day"


def attribute_pk(account_id: str) -> str:
    return f"{account_id}#attr"


def pending_pk(account_id: str) -> str:
    return f"{account_id}#pending"


def rolled_pk(account_id: str) -> str:
    return f"{account_id}#rolled"


def pending_sk(created_ms: int, sequence: str) -> str:
    """Ordered by time first, so a roll-up takes a prefix: everything old enough."""
    return f"{created_ms:013d}#{sequence}"


def pending_time(sk: str) -> int:
    return int(sk.split("#", 1)[0])


@dataclass(frozen=True, slots=True)
class Update:
    """ADD these counters (and forget these examples) on one aggregate item."""

    pk: str
    sk: str
    counters: dict[str, int]
    forget_examples: frozenset[str] = frozenset()
    add_examples: frozenset[str] = frozenset()


# --------------------------------------------------------------------- reads
def _query(
    pk: str,
    since_sk: str | None = None,
    *,
    after_sk: str | None = None,
    per_request: int | None = None,
) -> Iterable[dict[str, Any]]:
    params: dict[str, Any] = {
        "TableName": load().aggregates_table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
    }
    if since_sk is not None:
        params["KeyConditionExpression"] += " AND sk >= :since"
        params["ExpressionAttributeValues"][":since"] = {"S": since_sk}
    if after_sk is not None:
        params["KeyConditionExpression"] += " AND sk > :after"
        params["ExpressionAttributeValues"][":after"] = {"S": after_sk}
    if per_request is not None:
        params["Limit"] = per_request  # a reader that stops early reads no more
    while True:
        page = _client().query(**params)
        for raw in page.get("Items", []):
            yield {name: _deserialize(value) for name, value in raw.items()}
        if "LastEvaluatedKey" not in page:
            return
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def read_days(account_id: str, first_day: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Day items from first_day on, and the visible users count: one Query."""
    days: dict[str, dict[str, Any]] = {}
    users = 0
    for item in _query(day_pk(account_id), first_day):
        if item["sk"] == USERS_SK:
            users = int(item.get("count", 0))
        else:
            days[item["sk"]] = item
    return days, users


def read_attributes(account_id: str) -> dict[str, dict[str, Any]]:
    """Every catalogue item of an account by attribute name: one Query (paged past 1 MB)."""
    return {item["sk"]: item for item in _query(attribute_pk(account_id))}


def attributes_after(
    account_id: str, after: str | None, per_request: int
) -> Iterator[dict[str, Any]]:
    """The catalogue items after the name `after`, by name, read `per_request` at a time."""
    return iter(_query(attribute_pk(account_id), after_sk=after, per_request=per_request))


def read_rolled(account_id: str) -> str:
    """The sort key up to which pending sums are folded (NOTHING_ROLLED at first)."""
    item = (
        _client()
        .get_item(
            TableName=load().aggregates_table,
            Key={"pk": {"S": rolled_pk(account_id)}, "sk": {"S": ROLLED_SK}},
        )
        .get("Item")
    )
    return str(item["to"]["S"]) if item else NOTHING_ROLLED


def read_pending(account_id: str, after: str, upto: str | None = None) -> list[tuple[str, str]]:
    """(sort key, sums) of the pending items after `after` (and up to `upto`), in order."""
    if upto is not None and upto < after:
        return []  # DynamoDB refuses a BETWEEN whose bounds are reversed
    values = {":pk": {"S": pending_pk(account_id)}, ":after": {"S": after}}
    condition = "pk = :pk AND sk > :after"
    if upto is not None:
        # The bound goes in the key condition so a busy account's roll-up does
        # not read (and pay for) the newer batches it leaves pending.
        condition = "pk = :pk AND sk BETWEEN :after AND :upto"
        values[":upto"] = {"S": upto}
    params: dict[str, Any] = {
        "TableName": load().aggregates_table,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
    }
    found: list[tuple[str, str]] = []
    while True:
        page = _client().query(**params)
        found.extend((raw["sk"]["S"], raw["d"]["S"]) for raw in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    # BETWEEN includes `after` itself: one item at most, the first.
    return found[1:] if found and found[0][0] == after else found


# -------------------------------------------------------------------- writes
def put_pending(account_id: str, sk: str, sums: str, expires_s: int) -> None:
    """A batch's sums, pending. A plain put: the same records give the same key and
    sums, and a retry that sums fewer of them from the same first record replaces it."""
    _client().put_item(
        TableName=load().aggregates_table,
        Item={
            "pk": {"S": pending_pk(account_id)},
            "sk": {"S": sk},
            "d": {"S": sums},
            "expires_at": {"N": str(expires_s)},
        },
    )


def roll_up(account_id: str, updates: list[Update], previous: str, upto: str) -> bool:
    """Apply the folded sums and move the marker from `previous` to `upto`, atomically
    and once: False when another roll-up moved the marker first (nothing applied)."""
    if len(updates) + 1 > MAX_TRANSACTION_ITEMS:
        raise ValueError(f"{len(updates)} aggregate items do not fit one transaction")
    marker: dict[str, Any] = {
        "TableName": load().aggregates_table,
        "Key": {"pk": {"S": rolled_pk(account_id)}, "sk": {"S": ROLLED_SK}},
        "UpdateExpression": "SET #to = :upto",
        "ExpressionAttributeNames": {"#to": "to"},
        "ExpressionAttributeValues": {":upto": {"S": upto}},
    }
    if previous == NOTHING_ROLLED:
        marker["ConditionExpression"] = "attribute_not_exists(#to)"
    else:
        marker["ConditionExpression"] = "#to = :previous"
        marker["ExpressionAttributeValues"][":previous"] = {"S": previous}
    request = {
        "TransactItems": [{"Update": _update_action(u)} for u in updates] + [{"Update": marker}],
        "ClientRequestToken": hashlib.sha256(
            f"{account_id}/{previous}/{upto}".encode()
        ).hexdigest()[:36],
    }
    for attempt in range(MAX_ATTEMPTS):
        try:
            _client().transact_write_items(**request)
            return True
        except ClientError as exc:
            if _code(exc) == "IdempotentParameterMismatchException" or _condition_failed(exc):
                return False
            if not _conflict(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.02 * 2**attempt))
    return False


def _condition_failed(exc: ClientError) -> bool:
    reasons = exc.response.get("CancellationReasons") or []
    return _code(exc) == "TransactionCanceledException" and any(
        r.get("Code") == "ConditionalCheckFailed" for r in reasons
    )


def _update_action(update: Update) -> dict[str, Any]:
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    adds = []
    for i, (counter, n) in enumerate(sorted(update.counters.items())):
        names[f"#c{i}"] = counter
        values[f":c{i}"] = {"N": str(n)}
        adds.append(f"#c{i} :c{i}")
    if update.add_examples:
        names["#ex"] = EXAMPLES
        values[":new"] = {"SS": sorted(update.add_examples)}
        adds.append("#ex :new")
    parts = []
    if adds:
        parts.append("ADD " + ", ".join(adds))
    if update.forget_examples:
        names["#ex"] = EXAMPLES
        values[":gone"] = {"SS": sorted(update.forget_examples)}
        parts.append("DELETE #ex :gone")
    return {
        "TableName": load().aggregates_table,
        "Key": {"pk": {"S": update.pk}, "sk": {"S": update.sk}},
        "UpdateExpression": " ".join(parts),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def apply(updates: list[Update], token: str) -> None:
    """All updates atomically, once: a retry with the same token within 10 minutes
    (a Lambda retry of the same records) is not applied again (ClientRequestToken).

    More than 100 items make several transactions, each idempotent on its own.
    """
    for part, chunk in enumerate(_chunks(updates, MAX_TRANSACTION_ITEMS)):
        if not chunk:
            continue
        request = {
            "TransactItems": [{"Update": _update_action(u)} for u in chunk],
            "ClientRequestToken": hashlib.sha256(f"{token}/{part}".encode()).hexdigest()[:36],
        }
        for attempt in range(MAX_ATTEMPTS):
            try:
                _client().transact_write_items(**request)
                break
            except ClientError as exc:
                if _code(exc) == "IdempotentParameterMismatchException":
                    # Same records, other examples (they are chosen from a
                    # read): this token's transaction was applied already.
                    break
                # Another batch's transaction on the same counter item at the
                # same moment: wait a little and apply again (nothing was applied).
                if not _conflict(exc) or attempt == MAX_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.02 * 2**attempt))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _conflict(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    if error.get("Code") == "TransactionConflictException":
        return True
    reasons = exc.response.get("CancellationReasons") or []
    return error.get("Code") == "TransactionCanceledException" and any(
        r.get("Code") == "TransactionConflict" for r in reasons
    )


def _chunks(items: list[Update], size: int) -> Iterable[list[Update]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _client() -> Any:
    return aws.dynamodb()  # the container's one (storage/aws.py)
