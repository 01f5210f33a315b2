"""Segment's HTTP Tracking API on the tracking function: the key, then the usual pipeline.

A request is authenticated as Segment's libraries do it (HTTP Basic with the
write key as the user name and an empty password, or ``writeKey`` in the
body as analytics.js sends it), translated by ``domain.segment_api``, and
handed to the existing doors: events to ``services.ingest.ingest`` (so
sessions and costs are those of ``POST /v1/events``), identify traits to
``services.attributes.write_attributes`` with source ``identify``. The
answer is Segment's ``{"success": true}`` with Insights' per-message verdicts
beside it, so SDKs do not retry a batch that was taken.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections import Counter
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights import clock
from insights.domain.core.accounts import KEY_PREFIX
from insights.domain.core.admission import Protected
from insights.domain.core.attributes import Row
from insights.domain.core.events import Context, Rejection, RequestError
from insights.domain.core.identity import UNVERIFIED
from insights.domain.segment_api import (
    MAX_BATCH_BYTES,
    ROUTES,
    Envelope,
    Translation,
    alone,
    decode,
    translate,
)
from insights.services.core import identity
from insights.services.core.attributes import write_attributes
from insights.services.core.auth import AuthError, authenticate
from insights.services.core.ingest import ingest_many
from insights.storage.core.accounts import Account

metrics = Metrics()

ANY_KEY = frozenset({"write", "secret"})
KEY_WHERE = (
    "as HTTP Basic auth (the write key as the user name, an empty password) "
    "or as writeKey in the body"
)
NO_USER_RECORDS = (
    "unique_user_ids is off for this account: messages are accepted, no user records are kept"
)
# Segment messages carry no user hash (docs/identity-verification.md).
UNVERIFIED_MESSAGE = (
    f"{UNVERIFIED}: identity verification is on, and a Segment message carries no user "
    "hash to verify its userId by; send it from your server with the secret key"
)


def handle(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one request to a Segment route."""
    received_ms = clock.now_ms()
    http = (event.get("requestContext") or {}).get("http") or {}
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    message_type = ROUTES[event.get("rawPath") or http.get("path") or ""]
    try:
        header_key = _header_key(headers)
        account = None
        if header_key is not None:
            account = authenticate(header_key, allowed=ANY_KEY, where=KEY_WHERE)
        envelope = decode(_body(event, headers), message_type)
        if header_key is None:
            account = authenticate(envelope.write_key, allowed=ANY_KEY, where=KEY_WHERE)
        elif envelope.write_key is not None and envelope.write_key != header_key:
            raise AuthError(
                "conflicting_keys", "the Authorization header and writeKey name different keys"
            )
        assert account is not None
        # Secret-key senders are servers: exempt from identity verification.
        used = header_key if header_key is not None else envelope.write_key
        trusted = str(used).startswith(KEY_PREFIX["secret"])
        default_context = Context(ip=http.get("sourceIp"), user_agent=http.get("userAgent"))
        translation = translate(
            envelope,
            message_type,
            received_ms=received_ms,
            backfill_days=account.settings.backfill_days,
            kept_properties=frozenset(account.settings.event_properties_as_attributes),
            default_context=default_context,
        )
        return 200, _apply(account, envelope, translation, received_ms, trusted=trusted)
    except (RequestError, AuthError) as exc:
        # Segment's error shape: its libraries read "code" and "message".
        return exc.status, {"success": False, "code": exc.code, "message": exc.message}


def _unprotected(
    index: int,
    values: dict[str, Any],
    what: str,
    protected: Protected,
    envelope: Envelope,
    rejected: list[Rejection],
) -> dict[str, Any]:
    """A write key's `what` (traits, kept properties) without the names the account
    protects, each refused alone at its own path."""
    kept = {}
    for name, value in values.items():
        problem = protected.problem(name)
        if problem is None:
            kept[name] = value
        else:
            # A kept property's refusal says the event still counted, as any bad one does.
            reason = alone(problem, "event") if what == "properties" else problem
            rejected.append(Rejection(index, _field(envelope, index, f"{what}.{name}"), reason))
    return kept


def _header_key(headers: dict[str, str]) -> str | None:
    if headers.get("x-insights-key"):
        return headers["x-insights-key"]
    header = headers.get("authorization")
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        raise AuthError(
            "invalid_authorization",
            f"the Authorization header must be Basic; send the key {KEY_WHERE}",
        )
    try:
        user, _, _password = (
            base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError(
            "invalid_authorization", "the Basic credentials are not base64 of 'writeKey:'"
        ) from None
    if not user:
        raise AuthError("missing_key", f"the Basic credentials carry no key; send it {KEY_WHERE}")
    return user


def _body(event: dict[str, Any], headers: dict[str, str]) -> bytes:
    raw = event.get("body") or ""
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    encoding = (headers.get("content-encoding") or "").strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding != "gzip":
        raise RequestError(400, "unsupported_encoding", "Content-Encoding must be gzip or absent")
    # Inflate one byte past the limit: enough to refuse an oversize batch,
    # never the whole of a small file that inflates to gigabytes.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return inflater.decompress(data, MAX_BATCH_BYTES + 1)
    except zlib.error as exc:
        raise RequestError(400, "invalid_gzip", f"the gzip body cannot be read: {exc}") from None


def _apply(
    account: Account,
    envelope: Envelope,
    translation: Translation,
    received_ms: int,
    *,
    trusted: bool,
) -> dict[str, Any]:
    rejected = list(translation.rejected)
    refused = set(translation.refused)
    late = 0
    user_records = account.settings.unique_user_ids
    # One ingest request per request context (ingest enriches one); a browser's
    # or an app's batch has one, so this is the /v1/events request it replaces.
    # ingest_many reads the users of all of them at once. A batch holds at most
    # MAX_EVENTS messages (domain.segment_api.MAX_MESSAGES): one request each.
    chunks: list[list[tuple[int, dict[str, Any]]]] = []
    requests: list[tuple[str, Context]] = []
    protected = account.settings.protected
    if not trusted:
        for chunk in translation.events.values():
            for index, event in chunk:
                event["properties"] = _unprotected(
                    index, event["properties"], "properties", protected, envelope, rejected
                )
    for context, chunk in translation.events.items():
        payload: dict[str, Any] = {"events": [event for _, event in chunk]}
        given = {"ip": context.ip, "user_agent": context.user_agent}
        payload["context"] = {k: v for k, v in given.items() if v is not None}
        chunks.append(chunk)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        requests.append((body, Context(None, None)))
    if requests:
        results = ingest_many(account, requests, received_ms=received_ms, trusted=trusted)
        for chunk, result in zip(chunks, results, strict=True):
            late += result.late
            for bad in result.rejected:
                index = chunk[bad.index][0]
                refused.add(index)
                rejected.append(_renamed(bad, index, envelope))
    rows = translation.rows
    if rows and not trusted:
        kept = []
        for row in rows:
            values = _unprotected(row.number, row.values, "traits", protected, envelope, rejected)
            if values:
                kept.append(Row(row.number, row.uuid, values))
            elif row.values:
                refused.add(row.number)  # none of its traits may be set: not accepted
        rows = kept
    if rows and not trusted and identity.settings_of(account.account_id).verification:
        # Segment messages carry no user hash: with verification on, a write
        # key may not set traits for any uuid it names (docs/identity-verification.md).
        for row in rows:
            refused.add(row.number)
            where = _field(envelope, row.number, "userId")
            rejected.append(Rejection(row.number, where, UNVERIFIED_MESSAGE))
        rows = []
    if rows and user_records:
        # Each trait alone: a trait the user's caps cannot take is refused, the rest kept.
        written = write_attributes(account, rows, "identify", atomic=False)
        for line in written.refused:
            where = _field(envelope, line.row, f"traits.{line.column}")
            rejected.append(Rejection(line.row, where, alone(line.reason, "traits")))
        counts = Counter(line.row for line in written.refused)
        for row in rows:  # a message none of whose traits was taken is not accepted
            if row.values and counts[row.number] == len(row.values):
                refused.add(row.number)
    metrics.add_metric(
        name="EventsRejected", unit=MetricUnit.Count, value=len(translation.rejected)
    )
    metrics.add_metric(
        name="SegmentMessagesIgnored", unit=MetricUnit.Count, value=len(translation.ignored)
    )
    rejected.sort(key=lambda r: r.index)
    body: dict[str, Any] = {
        "success": True,
        "accepted": len(envelope.messages) - len(refused) - len(translation.ignored),
        "late": late,
        "rejected": [r.as_dict() for r in rejected],
        "ignored": [i.as_dict() for i in translation.ignored],
    }
    if not user_records:
        body["user_records"] = False
        body["note"] = NO_USER_RECORDS
    return body


def _field(envelope: Envelope, index: int, name: str) -> str:
    at = envelope.path(index)
    return f"{at}.{name}" if at else name


def _renamed(bad: Rejection, index: int, envelope: Envelope) -> Rejection:
    """An ingest verdict on events[k] named by the Segment message's own path and fields."""
    rest = bad.field.removeprefix(f"events[{bad.index}]").removeprefix(".")
    error = bad.error
    if rest == "user_hash":  # identity verification: the message's userId is what is unverified
        rest, error = "userId", UNVERIFIED_MESSAGE
    elif rest == "uuid":
        rest = "userId"
    at = envelope.path(index)
    return Rejection(index, ".".join(p for p in (at, rest) if p) or "body", error)
