"""SCIM 2.0 provisioning: tokens, the account's mapping, and the User operations.

Every write stores the SCIM resource (so GET, filters and PATCH work on what
the IdP sent) and then writes the kept attributes through the one attribute
path, ``write_attributes(account, rows, "idp")``, stamped with the time the
request was received: SCIM's ``meta.lastModified`` is set by the service
provider, not the IdP (RFC 7643 section 3.1), so the receive time is the
only time the IdP's assertion has, and it is what lastModified says too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from insights import clock
from insights.domain.core.accounts import hash_key
from insights.domain.core.admission import uuid_problem
from insights.domain.core.attributes import Row
from insights.domain.core.sessions import Retraction, Stamped
from insights.domain.core.timefmt import format_time
from insights.domain.idp.scim import ScimError
from insights.domain.idp.scim.filter import equality_lookup, matches, parse_filter
from insights.domain.idp.scim.mapping import (
    ACTIVE,
    ScimMapping,
    kept_values,
    parse_mapping,
    user_uuid,
)
from insights.domain.idp.scim.resource import (
    apply_patch,
    normalize_user,
    project,
    render,
    repaired,
)
from insights.domain.idp.scim.schema import MAX_RESULTS, list_response
from insights.services.core.attributes import NO_USER_RECORDS, write_attributes
from insights.storage.core import accounts as account_store
from insights.storage.core.accounts import Account
from insights.storage.idp import items as idp_store
from insights.storage.idp.items import StoredUser, TokenInfo, UserNameTaken, VersionConflict

logger = Logger(child=True)
TOKEN_PREFIX = "scim_"
MAX_TOKENS = 10
MAX_TOKEN_NAME_CHARS = 100
DEFAULT_COUNT = 100
CONFIG_ITEM = "config"
SOURCE = "idp"
_RETRIES = 3


# ----------------------------------------------------------------- tokens
@dataclass(frozen=True)
class NewToken:
    token: str
    info: TokenInfo

    def as_dict(self) -> dict[str, Any]:
        return {**self.info.as_dict(), "token": self.token}


def create_token(account_id: str, name: Any) -> NewToken:
    if name is None:
        name = "SCIM"
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_TOKEN_NAME_CHARS:
        raise ValueError(f"name must be 1-{MAX_TOKEN_NAME_CHARS} characters")
    if len(idp_store.list_tokens(account_id)) >= MAX_TOKENS:
        raise ValueError(f"an account has at most {MAX_TOKENS} SCIM tokens: revoke one first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    info = TokenInfo(
        token_id="st_" + secrets.token_hex(6),
        name=name.strip(),
        hint=token[: len(TOKEN_PREFIX) + 4] + "...",
        created_at=clock.now_ms(),
    )
    idp_store.create_token(account_id, info, hash_key(token))
    return NewToken(token, info)


def token_account(authorization: str | None) -> Account:
    """The account of ``Authorization: Bearer scim_...``; 401 (SCIM error) otherwise.

    Not cached: a revoked token stops working on the next request, and SCIM
    traffic (an IdP's sync) is small enough to afford the two reads.
    """
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ScimError(401, "send the account's SCIM token as 'Authorization: Bearer scim_...'")
    account_id = idp_store.find_token(hash_key(token))
    account = account_store.get_account(account_id) if account_id else None
    if account is None:
        raise ScimError(401, "the SCIM token is not valid (unknown or revoked)")
    return account


# ---------------------------------------------------------------- mapping
def get_mapping(account_id: str) -> tuple[ScimMapping, bool]:
    """(mapping, whether it is the default)."""
    raw = idp_store.get_config(account_id, CONFIG_ITEM)
    return (ScimMapping(), True) if raw is None else (parse_mapping(raw), False)


def put_mapping(account_id: str, raw: Any) -> ScimMapping:
    mapping = parse_mapping(raw)  # ConfigError names the field
    idp_store.put_config(account_id, CONFIG_ITEM, mapping.as_dict(), clock.now_ms())
    return mapping


# ------------------------------------------------------------------ users
@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] | None
    etag: str | None = None


def _meta(stored: StoredUser) -> dict[str, Any]:
    return {
        "created": format_time(stored.created_at),
        "lastModified": format_time(stored.modified_at),
        "version": etag(stored),
    }


def etag(stored: StoredUser) -> str:
    return f'W/"{stored.version}"'


def _answer(stored: StoredUser, base_url: str, status: int = 200) -> Answer:
    body = render(stored.user_id, repaired(stored.user), _meta(stored), base_url)
    return Answer(status, body, etag(stored))


def _check_writable(account: Account) -> None:
    if not account.settings.unique_user_ids:
        raise ScimError(403, NO_USER_RECORDS)


def _prepare(account: Account, user: dict[str, Any]) -> tuple[ScimMapping, str]:
    """Mapping and uuid for a user about to be stored (400 before anything is written)."""
    mapping, _ = get_mapping(account.account_id)
    uuid = user_uuid(user, mapping)
    if uuid is None:
        raise ScimError(
            400,
            f"the account's SCIM mapping takes the uuid from {mapping.uuid}, "
            "which this user does not have",
            "invalidValue",
        )
    problem = uuid_problem(uuid)  # the rules every uuid follows (1-256 characters)
    if problem is not None:
        raise ScimError(400, f"{mapping.uuid} cannot be the uuid: {problem}", "invalidValue")
    kept_values(user, mapping)  # a value that does not parse as its type: 400 now
    return mapping, uuid


def _always(mapping: ScimMapping) -> frozenset[str]:
    # The active flag is never refused by the per-user caps: deprovisioning always lands.
    return frozenset({mapping.attributes[ACTIVE][0]})


def _write_attributes(
    account: Account,
    mapping: ScimMapping,
    uuid: str,
    user: dict[str, Any],
    before: dict[str, Any] | None,
    now_ms: int,
) -> str | None:
    """Write the kept attributes (all or nothing); why they were refused, or None."""
    values: dict[str, Any] = dict(kept_values(user, mapping))
    old_uuid = user_uuid(before, mapping) if before is not None else None
    if before is not None and old_uuid == uuid:
        # Removed in the IdP: the attribute becomes null rather than keeping a stale value.
        for name in kept_values(before, mapping):
            values.setdefault(name, None)
    rows = [Row(0, uuid, {name: Stamped(value, now_ms) for name, value in values.items()})]
    written = write_attributes(account, rows, SOURCE, atomic=True, always=_always(mapping))
    if written.refused:
        return written.refused[0].reason
    if before is not None and old_uuid not in (None, uuid) and uuid_problem(old_uuid) is None:
        # The User names another uuid now (its userName changed): what it set on the
        # old one is withdrawn, or idp.active would stay true there after deprovisioning.
        gone = {name: Retraction(None, now_ms) for name in kept_values(before, mapping)}
        write_attributes(account, [Row(0, old_uuid, gone)], SOURCE, atomic=False)
    return None


def _over_limits(reason: str) -> ScimError:
    # 400 invalidValue: the request is well formed, but its values cannot be kept
    # for this user; nothing of it was stored (docs/idp.md, "Errors").
    return ScimError(
        400,
        f"the user's attributes cannot take this request: {reason}; nothing was stored",
        "invalidValue",
    )


def create_user(account: Account, body: Any, base_url: str) -> Answer:
    _check_writable(account)
    user = normalize_user(body)
    mapping, uuid = _prepare(account, user)
    now_ms = clock.now_ms()
    user_id = secrets.token_hex(16)
    try:
        stored = idp_store.save_user(account.account_id, user_id, user, None, now_ms)
    except UserNameTaken:
        raise ScimError(409, f"userName {user['userName']!r} is taken", "uniqueness") from None
    refused = _write_attributes(account, mapping, uuid, user, None, now_ms)
    if refused is not None:
        # Rare (a user at the caps): the resource goes again, so nothing claims what was not kept.
        try:
            idp_store.delete_user(account.account_id, stored)
        except VersionConflict:
            logger.warning("a refused SCIM create was changed before it could be withdrawn")
        raise _over_limits(refused)
    return _answer(stored, base_url, 201)


def _load(account: Account, user_id: str) -> StoredUser:
    stored = idp_store.get_user(account.account_id, user_id)
    if stored is None:
        raise ScimError(404, f"no User with id {user_id!r}")
    return stored


def _check_version(stored: StoredUser, if_match: str | None) -> None:
    """If-Match: ``*``, or a list of entity tags one of which is the User's (weak or not)."""
    if if_match is None:
        return
    tags = {_opaque(tag) for tag in if_match.split(",")}
    if "*" in tags or str(stored.version) in tags:
        return
    raise ScimError(412, "the User changed since the ETag in If-Match was read")


def _opaque(tag: str) -> str:
    """An entity tag's opaque part: ``W/"3"``, ``"3"`` and ``3`` all name version 3."""
    tag = tag.strip()
    if tag[:2] in ("W/", "w/"):
        tag = tag[2:].strip()
    return tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else tag


def get_user(
    account: Account, user_id: str, base_url: str, attributes: str | None, excluded: str | None
) -> Answer:
    answer = _answer(_load(account, user_id), base_url)
    assert answer.body is not None
    return Answer(200, project(answer.body, attributes, excluded), answer.etag)


def _update(
    account: Account, user_id: str, base_url: str, if_match: str | None, change: Any
) -> Answer:
    _check_writable(account)
    for attempt in range(_RETRIES):
        stored = _load(account, user_id)
        _check_version(stored, if_match)
        # What an older version stored is read as today's checks take it, so
        # bad data never wedges the updates of a User (deprovisioning included).
        before = repaired(stored.user)
        user = change(before)
        mapping, uuid = _prepare(account, user)
        now_ms = clock.now_ms()
        try:
            updated = idp_store.save_user(account.account_id, user_id, user, stored, now_ms)
        except UserNameTaken:
            raise ScimError(409, f"userName {user['userName']!r} is taken", "uniqueness") from None
        except VersionConflict:
            if if_match is not None or attempt == _RETRIES - 1:
                raise ScimError(412, "the User changed while this request was applied") from None
            continue
        refused = _write_attributes(account, mapping, uuid, user, before, now_ms)
        if refused is not None:
            try:  # put the User back as it was: nothing of the request is kept
                idp_store.save_user(account.account_id, user_id, stored.user, updated, now_ms)
            except (VersionConflict, UserNameTaken):
                logger.warning("a refused SCIM update was changed before it could be withdrawn")
            raise _over_limits(refused)
        return _answer(updated, base_url)
    raise AssertionError("unreachable")


def replace_user(
    account: Account, user_id: str, body: Any, base_url: str, if_match: str | None
) -> Answer:
    user = normalize_user(body)
    return _update(account, user_id, base_url, if_match, lambda _old: user)


def patch_user(
    account: Account, user_id: str, body: Any, base_url: str, if_match: str | None
) -> Answer:
    return _update(account, user_id, base_url, if_match, lambda old: apply_patch(old, body))


def delete_user(account: Account, user_id: str, if_match: str | None) -> Answer:
    """Deprovisioning: the SCIM resource goes, the user's attributes record ``active: false``."""
    _check_writable(account)
    stored = _load(account, user_id)
    _check_version(stored, if_match)
    mapping, _ = get_mapping(account.account_id)
    uuid = user_uuid(repaired(stored.user), mapping)
    try:
        idp_store.delete_user(account.account_id, stored)
    except VersionConflict:
        raise ScimError(412, "the User changed while it was being deleted") from None
    # A uuid today's rules refuse never had a profile (its writes always failed).
    if uuid is not None and uuid_problem(uuid) is None:
        name = mapping.attributes[ACTIVE][0]
        row = Row(0, uuid, {name: Stamped(False, clock.now_ms())})
        write_attributes(account, [row], SOURCE, always=_always(mapping))
    return Answer(204, None)


def _int_param(raw: str | None, name: str, default: int, low: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ScimError(400, f"{name} must be a whole number", "invalidValue") from None
    return max(value, low)


def list_users(
    account: Account,
    base_url: str,
    *,
    filter_text: str | None,
    start_index: str | None,
    count: str | None,
    attributes: str | None,
    excluded: str | None,
) -> Answer:
    """``GET /Users``: 1-based startIndex, count capped at MAX_RESULTS, filters.

    ``userName eq``, ``externalId eq`` and ``emails.value eq`` (also
    ``emails[value eq ...]`` / ``emails[type eq "work"].value eq ...``) read
    their keys only; other filters, and listing without one, read the
    account's users in id order (docs/idp.md, "Costs").
    """
    start = _int_param(start_index, "startIndex", 1, 1)
    size = min(_int_param(count, "count", DEFAULT_COUNT, 0), MAX_RESULTS)
    if filter_text:
        expr = parse_filter(filter_text)
        lookup = equality_lookup(expr)
        if lookup is not None:
            ids = idp_store.lookup(account.account_id, *lookup)
            candidates = sorted(
                idp_store.get_users(account.account_id, ids), key=lambda s: s.user_id
            )
        else:
            candidates = idp_store.iter_users(account.account_id)
        found = [s for s in candidates if matches(expr, s.user)]
        total, page = len(found), found[start - 1 : start - 1 + size]
    else:
        total = idp_store.count_users(account.account_id)
        page = []
        if size:
            for position, stored in enumerate(idp_store.iter_users(account.account_id), 1):
                if position >= start:
                    page.append(stored)
                if len(page) >= size:
                    break
    resources = []
    for stored in page:
        body = _answer(stored, base_url).body
        assert body is not None
        resources.append(project(body, attributes, excluded))
    return Answer(200, list_response(resources, total, start))
