"""SAML sign-in attributes: a Response verified against the account's IdP, attributes kept.

The app's backend posts the SAMLResponse its users' browsers brought from the
IdP. ``domain.saml_response`` verifies it (signature with a registered
certificate, then only the signed assertion's issuer, audience, recipient
and validity window); this module adds the account's configuration, the
replay check (each assertion ID is accepted once until it expires: one
conditional put) and the write through the one attribute path, stamped with
the assertion's IssueInstant.
"""

from __future__ import annotations

from typing import Any

from insights import clock
from insights.domain.core.attributes import Rejection, Row
from insights.domain.core.identity import VerifiedIdentity
from insights.domain.core.sessions import Stamped
from insights.domain.idp.saml.config import (
    AssertionUnusable,
    SamlConfig,
    attribute_values,
    parse_config,
)
from insights.domain.idp.saml.response import (
    LEEWAY_MS,
    ResponseRejected,
    decode_response,
    verify_response,
)
from insights.services.core.attributes import NO_USER_RECORDS, write_attributes
from insights.storage.core.accounts import Account
from insights.storage.idp import items as idp_store

CONFIG_ITEM = "saml"


def get_config(account_id: str) -> SamlConfig | None:
    raw = idp_store.get_config(account_id, CONFIG_ITEM)
    if raw is None:
        return None
    # Stored certificates are re-read as given: one that has expired since
    # registration still loads, and signxml refuses it when verifying.
    return parse_config(raw, now_ms=0, stored=True)


def put_config(account_id: str, raw: Any) -> SamlConfig:
    config = parse_config(raw, clock.now_ms())
    idp_store.put_config(account_id, CONFIG_ITEM, config.as_dict(), clock.now_ms())
    return config


def sign_in(
    account: Account, saml_response: Any
) -> tuple[VerifiedIdentity, list[str], list[Rejection]]:
    """Verify a SAML Response and keep its configured attributes.

    Returns (identity, attributes written, attributes the per-user caps
    refused: each alone, the others are written). The assertion's ID is claimed
    before the write and released if the write fails, so the backend's retry
    of the same Response works while a replay by anyone else is refused.
    """
    if not account.settings.unique_user_ids:
        raise ResponseRejected(NO_USER_RECORDS, status=403)
    config = get_config(account.account_id)
    if config is None:
        raise ResponseRejected("this account has registered no SAML IdP", status=409)
    xml = decode_response(saml_response)
    now_ms = clock.now_ms()
    assertion = verify_response(xml, config, now_ms)
    try:
        uuid, values = attribute_values(assertion.name_id, assertion.attributes, config)
    except AssertionUnusable as exc:
        raise ResponseRejected(str(exc), status=400, code="saml_response_not_used") from None
    expires_s = -(-assertion.valid_until_ms // 1000)
    # Kept past the leeway the expiry check allows, so it outlives every accepted use.
    keep_until_s = expires_s + LEEWAY_MS // 1000 + 1
    if not idp_store.claim_assertion(
        account.account_id, assertion.assertion_id, keep_until_s, now_ms // 1000
    ):
        raise ResponseRejected(f"replayed: assertion {assertion.assertion_id} was already used")
    issued_ms = min(assertion.issued_at_ms, now_ms)  # within the leeway
    refused: list[Rejection] = []
    if values:
        stamped = {name: Stamped(value, issued_ms) for name, value in values.items()}
        try:
            written = write_attributes(account, [Row(0, uuid, stamped)], "idp", atomic=False)
        except Exception:
            idp_store.release_assertion(account.account_id, assertion.assertion_id)
            raise
        refused = written.refused
    identity = VerifiedIdentity(uuid, "saml", config.entity_id, issued_ms // 1000, expires_s)
    return identity, sorted(set(values) - {r.column for r in refused}), refused
