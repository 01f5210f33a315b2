"""SAML sign-in attributes, the configuration: an account's IdP registration and mapping.

{"entity_id": "http://www.okta.com/exk1b2c3",       # the IdP's entity id (the Issuer)
 "certificate": "-----BEGIN CERTIFICATE-----...",   # or "certificates": [...], or
 "metadata_xml": "<md:EntityDescriptor ...>",       #   the IdP's metadata (entity id + certs)
 "audience": "https://app.example.com/saml",        # the app's SP entity id (or a list)
 "recipient": "https://app.example.com/saml/acs",   # the app's ACS URL (or a list)
 "uuid_attribute": "email",                         # default null: the Subject's NameID
 "attributes": {"department": "department",         # SAML attribute Name -> attribute name
                "hireDate": {"name": "hired", "type": "date"}}}

Certificates are read with cryptography and metadata with lxml, which ship
with SamlFunction only (functions/saml/requirements.txt); only that function
imports this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from insights.domain.core.admission import (
    Scalar,
    ValueType,
    idp_value,
    parse_target,
    shared_target,
    uuid_problem,
)
from insights.domain.idp.saml.xml import NS, UnsafeXml, parse_xml, text_of

FIELDS = frozenset(
    {
        "entity_id",
        "certificate",
        "certificates",
        "metadata_xml",
        "audience",
        "recipient",
        "uuid_attribute",
        "attributes",
    }
)
MAX_ATTRIBUTES = 50
MAX_CERTIFICATES = 5
MAX_METADATA_BYTES = 512 * 1024
MAX_ID_CHARS = 1024
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


class SamlConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SamlConfig:
    entity_id: str
    certificates: tuple[str, ...]  # PEM
    audiences: tuple[str, ...]
    recipients: tuple[str, ...]
    uuid_attribute: str | None = None  # None: the Subject's NameID
    attributes: dict[str, tuple[str, ValueType]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "certificates": list(self.certificates),
            "audience": list(self.audiences),
            "recipient": list(self.recipients),
            "uuid_attribute": self.uuid_attribute,
            "attributes": {a: {"name": n, "type": t} for a, (n, t) in self.attributes.items()},
        }

    def describe(self) -> dict[str, Any]:
        """as_dict plus what an admin checks a certificate by (fingerprint, subject, expiry)."""
        return {
            **self.as_dict(),
            "certificate_info": [certificate_info(c) for c in self.certificates],
        }


def _certificate(text: Any, where: str) -> Any:
    """A cryptography Certificate from PEM, or from the bare base64 DER metadata shows."""
    from cryptography import x509

    if not isinstance(text, str) or not text.strip():
        raise SamlConfigError(where, "must be an X.509 certificate (PEM or base64 DER)")
    match = _PEM.search(text)
    body = "".join((match.group(1) if match else text).split())
    try:
        der = base64.b64decode(body, validate=True)
        return x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise SamlConfigError(where, f"is not an X.509 certificate: {exc}") from None


def _pem(cert: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM).decode()


def load_certificate(pem: str) -> Any:
    return _certificate(pem, "certificate")


def certificate_info(pem: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = load_certificate(pem)
    return {
        "sha256": hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        "subject": cert.subject.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _checked_certificates(texts: list[Any], where: str, now: datetime) -> tuple[str, ...]:
    if not texts or len(texts) > MAX_CERTIFICATES:
        raise SamlConfigError(where, f"give 1-{MAX_CERTIFICATES} signing certificates")
    pems: list[str] = []
    for i, text in enumerate(texts):
        at = where if len(texts) == 1 else f"{where}[{i}]"
        cert = _certificate(text, at)
        if cert.not_valid_after_utc <= now:
            expired = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            raise SamlConfigError(at, f"expired on {expired}; download the IdP's current one")
        pems.append(_pem(cert))
    return tuple(dict.fromkeys(pems))


def read_metadata(xml: Any, entity_id: str | None) -> tuple[str, list[str]]:
    """(entity id, signing certificates) of an IdP in SAML metadata.

    An EntitiesDescriptor holding several IdPs needs ``entity_id`` to choose
    one. Only IDPSSODescriptor keys whose use is signing (or unstated) count:
    Entra ID's federation metadata also lists WS-Federation roles.
    """
    if not isinstance(xml, str) or not xml.strip():
        raise SamlConfigError("metadata_xml", "must be the IdP's metadata XML as a string")
    try:
        data = xml.encode()
    except UnicodeEncodeError:
        raise SamlConfigError("metadata_xml", "is not valid UTF-8 text") from None
    if len(data) > MAX_METADATA_BYTES:
        raise SamlConfigError("metadata_xml", f"is larger than {MAX_METADATA_BYTES} bytes")
    try:
        root = parse_xml(data)
    except UnsafeXml as exc:
        raise SamlConfigError("metadata_xml", str(exc)) from None
    if root.tag == f"{{{NS['md']}}}EntityDescriptor":
        entities = [root]
    elif root.tag == f"{{{NS['md']}}}EntitiesDescriptor":
        entities = root.findall(".//md:EntityDescriptor", NS)
    else:
        raise SamlConfigError("metadata_xml", "is not SAML 2.0 metadata (no EntityDescriptor)")
    idps = [e for e in entities if e.find("md:IDPSSODescriptor", NS) is not None]
    if entity_id is not None:
        idps = [e for e in idps if e.get("entityID") == entity_id]
    if not idps:
        raise SamlConfigError(
            "metadata_xml",
            "holds no IdP (IDPSSODescriptor)"
            + (f" with entityID {entity_id!r}" if entity_id is not None else ""),
        )
    if len(idps) > 1:
        raise SamlConfigError("metadata_xml", "holds several IdPs: give entity_id to choose one")
    idp = idps[0]
    certs = [
        "".join(text_of(x).split())
        for key in idp.findall("md:IDPSSODescriptor/md:KeyDescriptor", NS)
        if key.get("use") in (None, "signing")
        for x in key.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    ]
    if not certs:
        raise SamlConfigError("metadata_xml", "the IdP lists no signing certificate")
    return str(idp.get("entityID") or ""), certs


def _strings(raw: Any, where: str, what: str) -> tuple[str, ...]:
    values = tuple(raw) if isinstance(raw, list) else (raw,)
    if not values or not all(isinstance(v, str) and 0 < len(v) <= MAX_ID_CHARS for v in values):
        raise SamlConfigError(where, f"must be {what} (or a list of them)")
    return tuple(dict.fromkeys(values))


def parse_config(raw: Any, now_ms: int, *, stored: bool = False) -> SamlConfig:
    """A registration from a PUT body, or (`stored`) as it was saved: a rule added
    since (attributes kept under one name) does not make a saved one unreadable."""
    if not isinstance(raw, dict):
        raise SamlConfigError(
            "body", "send an object with entity_id, certificate, audience and recipient"
        )
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise SamlConfigError(unknown[0], f"unknown field; known: {', '.join(sorted(FIELDS))}")
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    given_entity = raw.get("entity_id")
    if given_entity is not None:
        given_entity = _strings(given_entity, "entity_id", "the IdP's entity id")[0]
    sources = [k for k in ("certificate", "certificates", "metadata_xml") if k in raw]
    if len(sources) != 1:
        raise SamlConfigError(
            "certificate", "give exactly one of certificate, certificates or metadata_xml"
        )
    if "metadata_xml" in raw:
        entity_id, texts = read_metadata(raw["metadata_xml"], given_entity)
        certificates = _checked_certificates(texts, "metadata_xml", now)
    else:
        if given_entity is None:
            raise SamlConfigError("entity_id", "is required (the Issuer of the IdP's assertions)")
        entity_id = given_entity
        texts = raw["certificates"] if "certificates" in raw else [raw["certificate"]]
        if not isinstance(texts, list):
            raise SamlConfigError("certificates", "must be a list of certificates")
        certificates = _checked_certificates(texts, sources[0], now)
    audiences = _strings(raw.get("audience"), "audience", "the app's SP entity id")
    recipients = _strings(raw.get("recipient"), "recipient", "the app's ACS URL")
    uuid_attribute = raw.get("uuid_attribute")
    if uuid_attribute is not None and (
        not isinstance(uuid_attribute, str) or not 0 < len(uuid_attribute) <= MAX_ID_CHARS
    ):
        raise SamlConfigError(
            "uuid_attribute", "must be a SAML attribute Name, or null for the NameID"
        )
    attributes: dict[str, tuple[str, ValueType]] = {}
    given = raw.get("attributes")
    given = {} if given is None else given
    if not isinstance(given, dict) or len(given) > MAX_ATTRIBUTES:
        raise SamlConfigError(
            "attributes", f"must be an object of at most {MAX_ATTRIBUTES} attributes"
        )
    for attribute, target in given.items():
        where = f"attributes[{attribute!r}]"
        if not 0 < len(attribute) <= MAX_ID_CHARS:
            raise SamlConfigError(where, f"a SAML attribute Name is 1-{MAX_ID_CHARS} characters")
        try:
            attributes[attribute] = parse_target(target)
        except ValueError as exc:
            raise SamlConfigError(where, str(exc)) from None
    shared = None if stored else shared_target(attributes)
    if shared is not None:
        raise SamlConfigError("attributes", shared)
    return SamlConfig(
        entity_id=entity_id,
        certificates=certificates,
        audiences=audiences,
        recipients=recipients,
        uuid_attribute=uuid_attribute,
        attributes=attributes,
    )


class AssertionUnusable(ValueError):
    """A verified assertion that cannot be used (no uuid, a value of the wrong type)."""


def attribute_values(
    name_id: str | None, attributes: dict[str, list[str | None]], config: SamlConfig
) -> tuple[str, dict[str, Scalar]]:
    """(uuid, attribute name -> typed value) from a verified assertion's subject and attributes."""
    if config.uuid_attribute is None:
        uuid = name_id
        if not uuid:
            raise AssertionUnusable("the assertion has no NameID to take the uuid from")
    else:
        values = [v for v in attributes.get(config.uuid_attribute, []) if v]
        if len(values) != 1:
            raise AssertionUnusable(
                f"attribute {config.uuid_attribute} must hold exactly one value to be the uuid "
                f"(it holds {len(values)})"
            )
        uuid = values[0]
    problem = uuid_problem(uuid)  # the rules every uuid follows (1-256 characters)
    if problem is not None:
        raise AssertionUnusable(f"the uuid cannot be used: {problem}")
    out: dict[str, Scalar] = {}
    for attribute, (name, kind) in config.attributes.items():
        if attribute not in attributes:
            continue
        present = [v for v in attributes[attribute] if v]
        if not present:
            out[name] = None  # asserted empty or nil: the IdP says there is no value
            continue
        try:
            out[name] = idp_value(present, kind)
        except ValueError as exc:
            raise AssertionUnusable(
                f"attribute {attribute}: {exc} (kept as {name}, type {kind})"
            ) from None
    return uuid, out
