"""SAML verification and configuration, the domain alone (no stack): signature wrapping,
comment truncation, XML hardening, metadata, certificate rotation, attribute typing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lxml import etree

from insights.domain.idp.saml.config import (
    AssertionUnusable,
    SamlConfig,
    SamlConfigError,
    attribute_values,
    parse_config,
)
from insights.domain.idp.saml.response import ResponseRejected, decode_response, verify_response
from tests.conftest import T0_MS
from tests.idp.saml_helpers import AUDIENCE, NOW, RECIPIENT, SAML, TestIdp, decode, self_signed

DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def idp() -> TestIdp:
    return TestIdp()


@pytest.fixture(scope="module")
def config(idp: TestIdp) -> SamlConfig:
    return parse_config(
        {
            "entity_id": idp.entity_id,
            "certificate": idp.cert_pem,
            "audience": AUDIENCE,
            "recipient": RECIPIENT,
            "attributes": {"department": "department"},
        },
        T0_MS,
    )


def verify(xml: str | bytes, config: SamlConfig, now_ms: int = T0_MS) -> Any:
    return verify_response(xml.encode() if isinstance(xml, str) else xml, config, now_ms)


def refused(xml: str, config: SamlConfig) -> str:
    with pytest.raises(ResponseRejected) as caught:
        verify(xml, config)
    return caught.value.message


def tree(xml: str) -> Any:
    return etree.fromstring(xml.encode())


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


# ------------------------------------------------------------ the happy path
def test_an_assertion_signed_response_yields_what_the_assertion_says(
    idp: TestIdp, config: SamlConfig
) -> None:
    found = verify(decode(idp.response(assertion_id="id-1")), config)
    assert found.assertion_id == "id-1"
    assert found.issuer == idp.entity_id
    assert found.name_id == "ann@example.com"
    assert found.issued_at_ms == T0_MS
    assert found.valid_until_ms == T0_MS + 5 * 60_000
    assert found.attributes["groups"] == ["admins", "sales"]


# --------------------------------------------------------- signature wrapping
# The variants of Somorovsky et al., "On Breaking SAML" (2012): the attacker
# keeps the IdP's signed element somewhere the verifier still finds it and
# puts their own, unsigned assertion where the application reads.
def signed_assertion(idp: TestIdp, **kwargs: Any) -> str:
    return idp.sign(idp.assertion_xml(signature=True, **kwargs))


def evil_assertion(idp: TestIdp) -> str:
    return idp.assertion_xml(signature=False, name_id="eve@example.com", assertion_id="evil")


def test_xsw_an_unsigned_assertion_beside_the_signed_one(idp: TestIdp, config: SamlConfig) -> None:
    for body in (
        evil_assertion(idp) + signed_assertion(idp),
        signed_assertion(idp) + evil_assertion(idp),
    ):
        assert "2 assertions" in refused(idp.response_xml(body), config)


def test_xsw_the_signed_assertion_inside_the_attackers(idp: TestIdp, config: SamlConfig) -> None:
    evil = tree(evil_assertion(idp))
    evil.find(q(SAML, "Subject")).append(tree(signed_assertion(idp)))  # wrapped inside
    xml = idp.response_xml(etree.tostring(evil).decode())
    assert "2 assertions" in refused(xml, config)


def test_xsw_the_signed_assertion_hidden_in_the_signature_object(
    idp: TestIdp, config: SamlConfig
) -> None:
    signed = tree(signed_assertion(idp))
    signature = signed.find(q(DS, "Signature"))
    evil = tree(evil_assertion(idp))
    evil.insert(1, signature)  # the IdP's signature now in the attacker's assertion...
    obj = etree.SubElement(signature, q(DS, "Object"))
    obj.append(signed)  # ...carrying the original inside ds:Object
    xml = idp.response_xml(etree.tostring(evil).decode())
    assert "2 assertions" in refused(xml, config)


def test_xsw_a_signed_response_moved_under_an_attackers_response(
    idp: TestIdp, config: SamlConfig
) -> None:
    original = tree(decode(idp.response(sign="response")))
    signature = original.find(q(DS, "Signature"))
    attacker = tree(idp.response_xml(evil_assertion(idp)))
    attacker.insert(1, signature)
    etree.SubElement(signature, q(DS, "Object")).append(original)
    assert "2 assertions" in refused(etree.tostring(attacker).decode(), config)
    # XSW2: the original as a detached sibling before the attacker's assertion.
    original = tree(decode(idp.response(sign="response")))
    attacker = tree(idp.response_xml(evil_assertion(idp)))
    attacker.insert(1, original.find(q(DS, "Signature")))
    attacker.insert(1, original)
    assert "2 assertions" in refused(etree.tostring(attacker).decode(), config)


def test_xsw_in_extensions_and_duplicate_ids(idp: TestIdp, config: SamlConfig) -> None:
    xml = idp.response_xml(evil_assertion(idp))
    root = tree(xml)
    extensions = etree.Element(q("urn:oasis:names:tc:SAML:2.0:protocol", "Extensions"))
    extensions.append(tree(signed_assertion(idp)))
    root.insert(1, extensions)
    assert "2 assertions" in refused(etree.tostring(root).decode(), config)
    # One assertion, but the Response carries the assertion's ID too: the
    # signature's reference is ambiguous and signxml refuses to pick.
    root = tree(idp.response_xml(signed_assertion(idp, assertion_id="dup")))
    root.set("ID", "dup")
    assert "Ambiguous reference" in refused(etree.tostring(root).decode(), config)


def wrapped_variants(idp: TestIdp) -> list[str]:
    """Every wrapping above, built afresh (elements move between trees)."""
    variants = [
        idp.response_xml(evil_assertion(idp) + signed_assertion(idp)),
        idp.response_xml(signed_assertion(idp) + evil_assertion(idp)),
    ]
    evil = tree(evil_assertion(idp))
    evil.find(q(SAML, "Subject")).append(tree(signed_assertion(idp)))
    variants.append(idp.response_xml(etree.tostring(evil).decode()))
    signed = tree(signed_assertion(idp))
    signature = signed.find(q(DS, "Signature"))
    evil = tree(evil_assertion(idp))
    evil.insert(1, signature)
    etree.SubElement(signature, q(DS, "Object")).append(signed)
    variants.append(idp.response_xml(etree.tostring(evil).decode()))
    original = tree(decode(idp.response(sign="response")))
    attacker = tree(idp.response_xml(evil_assertion(idp)))
    signature = original.find(q(DS, "Signature"))
    attacker.insert(1, signature)
    etree.SubElement(signature, q(DS, "Object")).append(original)
    variants.append(etree.tostring(attacker).decode())
    return variants


def test_without_the_one_assertion_rule_wrapping_still_never_yields_the_attackers_values(
    idp: TestIdp, config: SamlConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 3 alone: what is read comes from signxml's signed_xml, never the document."""
    from insights.domain.idp.saml import response as saml_response

    monkeypatch.setattr(saml_response, "_one_assertion", lambda root: None)
    outcomes = []
    for xml in wrapped_variants(idp):
        try:
            outcomes.append(verify(xml, config).name_id)
        except ResponseRejected:
            outcomes.append("refused")
    assert "eve@example.com" not in outcomes
    assert "ann@example.com" in outcomes  # some wrappings verify: the IdP's own assertion


def test_only_the_signed_form_is_read_so_a_comment_cannot_truncate_the_name_id(
    idp: TestIdp, config: SamlConfig
) -> None:
    # The IdP signed "ann@example.com.evil.com" (an account the attacker owns);
    # a comment inside the text leaves the signature valid (c14n drops
    # comments) but makes naive readers see "ann@example.com".
    xml = decode(idp.response(name_id="ann@example.com.evil.com"))
    injected = xml.replace(">ann@example.com.evil.com<", ">ann@example.com<!---->.evil.com<")
    assert injected != xml
    assert tree(injected).find(f".//{q(SAML, 'NameID')}").text == "ann@example.com"
    assert verify(injected, config).name_id == "ann@example.com.evil.com"


def test_a_signature_elsewhere_does_not_count(idp: TestIdp, config: SamlConfig) -> None:
    signed = tree(signed_assertion(idp))
    signature = signed.find(q(DS, "Signature"))
    signed.find(q(SAML, "Subject")).append(signature)  # not where SAML puts it
    xml = idp.response_xml(etree.tostring(signed).decode())
    assert "unsigned" in refused(xml, config)


def test_sha1_signatures_are_refused(idp: TestIdp, config: SamlConfig) -> None:
    from signxml import SignatureMethod

    # signxml will not even sign with SHA-1; an IdP set to SHA-1 names it in SignedInfo.
    signed = signed_assertion(idp).replace(
        SignatureMethod.RSA_SHA256.value, SignatureMethod.RSA_SHA1.value
    )
    assert "rsa-sha1" in signed
    message = refused(idp.response_xml(signed), config)
    assert "SHA1" in message


# ------------------------------------------------------------- XML hardening
@pytest.mark.parametrize(
    "xml",
    [
        '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><r>&b;</r>',
        '<!DOCTYPE r SYSTEM "http://127.0.0.1:1/evil.dtd"><r/>',
    ],
)
def test_dtds_and_entities_are_refused_before_anything_else(xml: str, config: SamlConfig) -> None:
    with pytest.raises(ResponseRejected) as caught:
        verify(xml, config)
    assert caught.value.status == 400 and "DTD" in caught.value.message


def test_base64_decoding_and_its_limits() -> None:
    assert decode_response("PHgv\nPg==") == b"<x/>"
    for bad in ("", "not base64!", None, 7, "A" * (256 * 1024 + 1)):
        with pytest.raises(ResponseRejected) as caught:
            decode_response(bad)
        assert caught.value.status == 400


def test_status_encryption_and_document_shape(idp: TestIdp, config: SamlConfig) -> None:
    failed = idp.response_xml(
        signed_assertion(idp), status="urn:oasis:names:tc:SAML:2.0:status:Requester"
    )
    assert "not Success" in refused(failed, config)
    encrypted = idp.response_xml(f'<saml2:EncryptedAssertion xmlns:saml2="{SAML}"/>')
    assert "encrypted assertions" in refused(encrypted, config)
    assert "samlp:Response" in refused(signed_assertion(idp), config)  # a bare assertion
    assert "0 assertions" in refused(idp.response_xml(""), config)


# ------------------------------------------------------ certificates, clock
def test_rotation_a_second_registered_certificate_verifies(idp: TestIdp) -> None:
    new = TestIdp(name="okta-2027")
    rotated = parse_config(
        {
            "entity_id": idp.entity_id,
            "certificates": [idp.cert_b64, new.cert_pem],
            "audience": AUDIENCE,
            "recipient": RECIPIENT,
        },
        T0_MS,
    )
    assert verify(decode(new.response()), rotated).name_id == "ann@example.com"
    assert verify(decode(idp.response()), rotated).name_id == "ann@example.com"
    stranger = TestIdp(name="stranger")
    assert "another key" in refused(decode(stranger.response()), rotated)


def test_expiry_is_checked_on_the_clock_given(idp: TestIdp, config: SamlConfig) -> None:
    xml = decode(idp.response())
    assert verify(xml, config, T0_MS + 5 * 60_000 + 59_000).name_id  # within the leeway
    with pytest.raises(ResponseRejected, match="expired"):
        verify(xml, config, T0_MS + 5 * 60_000 + 60_000)
    early = decode(idp.response(not_before=NOW + dt.timedelta(minutes=2)))
    with pytest.raises(ResponseRejected, match="not yet valid"):
        verify(early, config, T0_MS)
    assert verify(early, config, T0_MS + 61_000).name_id


def test_an_expired_certificate_is_refused_at_registration_and_when_verifying(
    idp: TestIdp,
) -> None:
    short = self_signed(idp.key, "short", days=1)
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = short.public_bytes(Encoding.PEM).decode()
    body = {"entity_id": "x", "certificate": pem, "audience": "a", "recipient": "r"}
    two_days = T0_MS + 2 * 86_400_000
    with pytest.raises(SamlConfigError, match="expired"):
        parse_config(body, two_days)
    registered = parse_config({**body, "entity_id": idp.entity_id}, T0_MS)
    registered = SamlConfig(
        entity_id=idp.entity_id,
        certificates=registered.certificates,
        audiences=(AUDIENCE,),
        recipients=(RECIPIENT,),
    )
    late = decode(idp.response(issued=NOW + dt.timedelta(days=2)))
    assert "certificate" in refused_at(late, registered, two_days)


def refused_at(xml: str, config: SamlConfig, now_ms: int) -> str:
    with pytest.raises(ResponseRejected) as caught:
        verify(xml, config, now_ms)
    return caught.value.message


# ------------------------------------------------------------------ metadata
def test_metadata_gives_the_entity_id_and_the_signing_certificates_only(idp: TestIdp) -> None:
    config = parse_config(
        {"metadata_xml": idp.metadata(), "audience": AUDIENCE, "recipient": RECIPIENT}, T0_MS
    )
    assert config.entity_id == idp.entity_id
    assert config.certificates == (idp.cert_pem,)
    assert verify(decode(idp.response()), config).name_id == "ann@example.com"


def test_metadata_with_several_idps_needs_the_entity_id(idp: TestIdp) -> None:
    other = TestIdp(entity_id="https://sts.windows.net/tenant/", name="entra")
    one, two = (m.split("?>", 1)[1] for m in (idp.metadata(), other.metadata()))
    both = (
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        f"{one}{two}</md:EntitiesDescriptor>"
    )
    base = {"metadata_xml": both, "audience": AUDIENCE, "recipient": RECIPIENT}
    with pytest.raises(SamlConfigError, match="several IdPs"):
        parse_config(base, T0_MS)
    chosen = parse_config({**base, "entity_id": other.entity_id}, T0_MS)
    assert chosen.certificates == (other.cert_pem,)
    with pytest.raises(SamlConfigError, match="no IdP"):
        parse_config({**base, "entity_id": "https://nobody"}, T0_MS)


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ("<md:EntityDescriptor", "well-formed"),
        ('<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', "DTD"),
        ("<root/>", "not SAML 2.0 metadata"),
        (
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">'
            "<md:IDPSSODescriptor/></md:EntityDescriptor>",
            "no signing certificate",
        ),
        ("\ud800", "UTF-8"),
    ],
)
def test_bad_metadata_is_refused_naming_it(metadata: str, problem: str) -> None:
    with pytest.raises(SamlConfigError) as caught:
        parse_config(
            {"metadata_xml": metadata, "audience": AUDIENCE, "recipient": RECIPIENT}, T0_MS
        )
    assert caught.value.field == "metadata_xml" and problem in caught.value.message


# --------------------------------------------------------------- attributes
def typed(config: SamlConfig, attributes: dict[str, list[str | None]]) -> dict[str, Any]:
    return attribute_values("nameid", attributes, config)[1]


def test_attribute_values_are_typed_joined_or_cleared() -> None:
    config = SamlConfig(
        entity_id="e",
        certificates=(),
        audiences=("a",),
        recipients=("r",),
        attributes={
            "groups": ("groups", "string"),
            "active": ("active", "boolean"),
            "seats": ("seats", "number"),
            "left": ("left", "date"),
        },
    )
    assert typed(config, {"groups": ["a", "b"], "active": ["true"], "seats": ["4"]}) == {
        "groups": "a,b",
        "active": True,
        "seats": 4,
    }
    assert typed(config, {"left": [None], "groups": [""]}) == {"left": None, "groups": None}
    with pytest.raises(AssertionUnusable, match="2 values"):
        typed(config, {"seats": ["1", "2"]})
    with pytest.raises(AssertionUnusable, match="not a number"):
        typed(config, {"seats": ["many"]})


def test_the_uuid_from_the_name_id_or_one_attribute_value() -> None:
    by_name_id = SamlConfig("e", (), ("a",), ("r",))
    assert attribute_values("ann", {}, by_name_id)[0] == "ann"
    with pytest.raises(AssertionUnusable, match="NameID"):
        attribute_values(None, {}, by_name_id)
    with pytest.raises(AssertionUnusable, match="longer than 256"):
        attribute_values("x" * 257, {}, by_name_id)
    by_email = SamlConfig("e", (), ("a",), ("r",), uuid_attribute="email")
    assert attribute_values("x", {"email": ["ann@example.com"]}, by_email)[0] == "ann@example.com"
    with pytest.raises(AssertionUnusable, match="exactly one value"):
        attribute_values("x", {"email": ["a@x", "b@x"]}, by_email)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"certificate": None}, "certificate"),
        ({"certificates": "pem"}, "certificates"),
        ({"certificates": []}, "certificates"),
        ({"audience": [1]}, "audience"),
        ({"recipient": None}, "recipient"),
        ({"attributes": {"": "x"}}, "attributes['']"),
        ({"attributes": {"a": ""}}, "attributes['a']"),
        ({"attributes": []}, "attributes"),
    ],
)
def test_config_fields_are_checked(idp: TestIdp, change: dict[str, Any], field: str) -> None:
    body = {
        "entity_id": idp.entity_id,
        "certificate": idp.cert_pem,
        "audience": AUDIENCE,
        "recipient": RECIPIENT,
        **change,
    }
    if "certificates" in change:
        del body["certificate"]
    with pytest.raises(SamlConfigError) as caught:
        parse_config(body, T0_MS)
    assert caught.value.field == field
