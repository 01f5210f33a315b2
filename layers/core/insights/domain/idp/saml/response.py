"""A SAML Response as the IdP posted it: signature, then the signed assertion's conditions.

The defence against signature wrapping (XSW) is the order of the steps:

1. The document must be a ``samlp:Response`` holding exactly one
   ``saml:Assertion`` at any depth, and no encrypted one. Every published XSW
   variant adds a second assertion (an unsigned one beside, around or inside
   the signed one), so it is refused before any signature is looked at.
2. The signature is looked for in two places only: a child of the Response,
   or a child of the Response's Assertion. signxml verifies it with the
   account's registered certificate (never a certificate the document
   carries), refusing SHA-1, DTDs, entities and ambiguous ID references.
3. Everything used afterwards is read **only** from what signxml returns as
   signed (``verify(...).signed_xml``): the element the signature's
   reference names, re-parsed from its canonical form, so comments (the
   NameID comment-truncation attack) and anything outside it are gone. The
   original document is never searched again for the assertion, its
   subject, conditions or attributes. The unsigned document is read for one
   thing, its top-level StatusCode, and only to refuse.

Then the signed assertion's Issuer, Audience, Recipient, validity window
and IssueInstant are checked against the account's registration and the
clock, with 60 s of leeway for clock skew.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from insights.domain.core.timefmt import TimeFormatError, parse_time
from insights.domain.idp.saml.config import SamlConfig, load_certificate
from insights.domain.idp.saml.xml import NS, UnsafeXml, parse_xml, safe_parser, text_of

LEEWAY_MS = 60_000
MAX_RESPONSE_CHARS = 256 * 1024  # base64; IdP responses are 4-60 KB
MAX_ASSERTION_ID_CHARS = 256
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
_RESPONSE = f"{{{NS['samlp']}}}Response"
_ASSERTION = f"{{{NS['saml']}}}Assertion"
_NIL = f"{{{NS['xsi']}}}nil"


class ResponseRejected(ValueError):
    """The SAML Response does not verify (401), cannot be read (400), or cannot be used.

    `code`: the answer's error code when the status alone does not say it
    (a verified Response that cannot be used is ``saml_response_not_used``).
    """

    def __init__(self, message: str, status: int = 401, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Assertion:
    """What a verified assertion says, read from its signed form only."""

    assertion_id: str
    issuer: str
    issued_at_ms: int
    valid_until_ms: int  # the earliest NotOnOrAfter of its conditions and confirmation
    name_id: str | None
    attributes: dict[str, list[str | None]]


def decode_response(raw: Any) -> bytes:
    """The XML of a base64 SAMLResponse (line breaks allowed, as some IdPs wrap it)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ResponseRejected("saml_response must be the base64 SAMLResponse", status=400)
    if len(raw) > MAX_RESPONSE_CHARS:
        raise ResponseRejected(
            f"saml_response is longer than {MAX_RESPONSE_CHARS} characters", status=400
        )
    try:
        return base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ResponseRejected(
            "saml_response is not base64 (send the SAMLResponse form value as the IdP posted it)",
            status=400,
        ) from None


def _time(element: Any, name: str, where: str, *, required: bool = True) -> int | None:
    value = element.get(name)
    if value is None:
        if required:
            raise ResponseRejected(f"{where} has no {name}")
        return None
    try:
        return parse_time(value)
    except TimeFormatError as exc:
        raise ResponseRejected(f"{where} {name}: {exc}") from None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_assertion(root: Any) -> None:
    """Step 1 of the XSW defence (the module docstring); step 3 holds without it."""
    found = sum(1 for _ in root.iter(_ASSERTION))
    if found != 1:
        raise ResponseRejected(
            f"the Response holds {found} assertions; exactly one is accepted "
            "(a second one is how signature-wrapping attacks hide)"
        )


def _structure(root: Any) -> str:
    """Where the signature must be (signxml's location), after the XSW and format checks."""
    if root.tag != _RESPONSE:
        raise ResponseRejected("the document is not a SAML 2.0 samlp:Response", status=400)
    status = root.find("samlp:Status/samlp:StatusCode", NS)
    if status is None or status.get("Value") != SUCCESS:
        value = None if status is None else status.get("Value")
        raise ResponseRejected(f"the IdP answered status {value!r}, not Success")
    if next(root.iter(f"{{{NS['saml']}}}EncryptedAssertion"), None) is not None:
        raise ResponseRejected(
            "encrypted assertions are not supported: turn assertion encryption off for this app "
            "in the IdP (the response still travels over HTTPS)",
            status=400,
        )
    _one_assertion(root)
    if root.find("ds:Signature", NS) is not None:
        return "./"
    if root.find("saml:Assertion/ds:Signature", NS) is not None:
        return f"./{_ASSERTION}/"
    raise ResponseRejected("unsigned: neither the Response nor its Assertion carries a signature")


def _verified(root: Any, location: str, config: SamlConfig, now_ms: int) -> Any:
    """signxml's signed_xml for the first registered certificate the signature verifies with."""
    from signxml import SignatureConfiguration, XMLVerifier
    from signxml.exceptions import (
        InvalidCertificate,
        InvalidDigest,
        InvalidInput,
        InvalidSignature,
        SignXMLException,
    )

    expect = SignatureConfiguration(
        location=location, verification_time=datetime.fromtimestamp(now_ms / 1000, UTC)
    )
    problem: str | None = None  # why a certificate could not be tried, if one could not
    for pem in config.certificates:
        try:
            result = XMLVerifier().verify(
                root,
                x509_cert=load_certificate(pem),
                id_attribute="ID",
                parser=safe_parser(),
                expect_config=expect,
            )
        except InvalidDigest:
            raise ResponseRejected(
                "the signed element was changed after signing (digest mismatch)"
            ) from None
        except InvalidCertificate as exc:
            problem = f"a registered certificate cannot be used: {exc}"
            continue
        except InvalidSignature:
            continue  # signed with another key: try the next registered certificate
        except InvalidInput as exc:
            raise ResponseRejected(f"the signature cannot be verified: {exc}") from None
        except (SignXMLException, ValueError, LookupError, etree.LxmlError) as exc:
            problem = f"the signature cannot be verified: {exc}"
            continue
        return result.signed_xml
    raise ResponseRejected(
        problem
        or "the signature does not verify with the registered certificate "
        "(it is signed with another key)"
    )


def _signed_assertion(signed: Any, config: SamlConfig) -> Any:
    if signed is None:
        raise ResponseRejected("the signature covers no XML element")
    if signed.tag == _ASSERTION:
        return signed
    if signed.tag == _RESPONSE:
        destination = signed.get("Destination")
        if destination is not None and destination not in config.recipients:
            raise ResponseRejected(
                f"the Response's Destination {destination!r} is not a registered recipient"
            )
        assertions = signed.findall("saml:Assertion", NS)
        if len(assertions) != 1:
            raise ResponseRejected("the signed Response does not hold exactly one Assertion")
        return assertions[0]
    raise ResponseRejected(
        f"the signature covers a {etree.QName(signed).localname}, not an Assertion"
    )


def _confirmation(assertion: Any, config: SamlConfig, now_ms: int) -> int:
    """NotOnOrAfter of a bearer confirmation that holds; the first failure otherwise."""
    problems: list[str] = []
    for confirmation in assertion.findall("saml:Subject/saml:SubjectConfirmation", NS):
        if confirmation.get("Method") != BEARER:
            problems.append(f"SubjectConfirmation method {confirmation.get('Method')!r}")
            continue
        data = confirmation.find("saml:SubjectConfirmationData", NS)
        where = "SubjectConfirmationData"
        if data is None:
            problems.append(f"a bearer confirmation without {where}")
            continue
        recipient = data.get("Recipient")
        until = _time(data, "NotOnOrAfter", where, required=False)
        since = _time(data, "NotBefore", where, required=False)
        if recipient not in config.recipients:
            problems.append(f"Recipient {recipient!r} is not a registered recipient")
        elif until is None:
            problems.append(f"{where} has no NotOnOrAfter")
        elif until <= now_ms - LEEWAY_MS:
            problems.append(f"expired: {where} NotOnOrAfter {_iso(until)}")
        elif since is not None and since > now_ms + LEEWAY_MS:
            problems.append(f"not yet valid: {where} NotBefore {_iso(since)}")
        else:
            return until
    raise ResponseRejected(
        problems[0] if problems else "the assertion has no bearer SubjectConfirmation"
    )


def _conditions(assertion: Any, config: SamlConfig, now_ms: int) -> int | None:
    conditions = assertion.find("saml:Conditions", NS)
    if conditions is None:
        raise ResponseRejected("the assertion has no Conditions (audience and validity window)")
    since = _time(conditions, "NotBefore", "Conditions", required=False)
    until = _time(conditions, "NotOnOrAfter", "Conditions", required=False)
    if since is not None and since > now_ms + LEEWAY_MS:
        raise ResponseRejected(f"not yet valid: Conditions NotBefore {_iso(since)}")
    if until is not None and until <= now_ms - LEEWAY_MS:
        raise ResponseRejected(f"expired: Conditions NotOnOrAfter {_iso(until)}")
    restrictions = conditions.findall("saml:AudienceRestriction", NS)
    if not restrictions:
        raise ResponseRejected("the assertion names no Audience")
    for restriction in restrictions:
        audiences = [text_of(a) for a in restriction.findall("saml:Audience", NS)]
        if not set(audiences) & set(config.audiences):
            raise ResponseRejected(
                f"Audience {', '.join(audiences) or '(none)'} is not a registered audience"
            )
    return until


def _attributes(assertion: Any) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for attribute in assertion.findall("saml:AttributeStatement/saml:Attribute", NS):
        name = attribute.get("Name")
        if not name:
            continue
        values = out.setdefault(name, [])
        for value in attribute.findall("saml:AttributeValue", NS):
            values.append(None if value.get(_NIL) in ("true", "1") else text_of(value))
    return out


def verify_response(xml: bytes, config: SamlConfig, now_ms: int) -> Assertion:
    """The assertion of a valid signed SAML Response for this config, or ResponseRejected."""
    try:
        root = parse_xml(xml)
    except UnsafeXml as exc:
        raise ResponseRejected(f"saml_response {exc}", status=400) from None
    location = _structure(root)
    assertion = _signed_assertion(_verified(root, location, config, now_ms), config)
    if assertion.get("Version") != "2.0":
        raise ResponseRejected("the assertion is not SAML 2.0")
    assertion_id = assertion.get("ID") or ""
    if not 0 < len(assertion_id) <= MAX_ASSERTION_ID_CHARS:
        raise ResponseRejected(f"the assertion ID must be 1-{MAX_ASSERTION_ID_CHARS} characters")
    issuer_element = assertion.find("saml:Issuer", NS)
    issuer = "" if issuer_element is None else text_of(issuer_element).strip()
    if issuer != config.entity_id:
        raise ResponseRejected(f"Issuer {issuer!r} is not the registered IdP entity id")
    issued = _time(assertion, "IssueInstant", "the assertion")
    assert issued is not None
    if issued > now_ms + LEEWAY_MS:
        raise ResponseRejected(f"issued in the future: IssueInstant {_iso(issued)}")
    if assertion.find("saml:Subject/saml:EncryptedID", NS) is not None:
        raise ResponseRejected("encrypted NameIDs are not supported", status=400)
    confirmed_until = _confirmation(assertion, config, now_ms)
    conditions_until = _conditions(assertion, config, now_ms)
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    return Assertion(
        assertion_id=assertion_id,
        issuer=issuer,
        issued_at_ms=issued,
        valid_until_ms=min(u for u in (confirmed_until, conditions_until) if u is not None),
        name_id=None if name_id is None else text_of(name_id),
        attributes=_attributes(assertion),
    )
