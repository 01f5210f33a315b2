"""A test SAML IdP: an RSA key, a self-signed certificate, and Responses signed with signxml.

The Responses have the shape Okta and Entra ID post (issuer, a bearer
subject confirmation, conditions with an audience restriction, an authn
statement, an attribute statement); the signature sits where SAML's schema
puts it, right after the Issuer.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid as uuidlib
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import SignatureMethod, XMLSigner

from tests.conftest import T0_MS

ENTITY_ID = "http://www.okta.com/exk1insights"
AUDIENCE = "https://app.example.com/saml/metadata"
RECIPIENT = "https://app.example.com/saml/acs"
NOW = dt.datetime.fromtimestamp(T0_MS / 1000, dt.UTC)
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
PLACEHOLDER = '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def self_signed(key: Any, name: str, days: int = 3650) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


class TestIdp:
    """Signs SAML Responses as an IdP with entity id ``entity_id`` would."""

    __test__ = False  # not a pytest class

    def __init__(self, entity_id: str = ENTITY_ID, name: str = "okta-test") -> None:
        self.entity_id = entity_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert = self_signed(self.key, name)

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def cert_b64(self) -> str:
        """The certificate as metadata and IdP consoles show it: base64 DER, no PEM armour."""
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()

    def metadata(self) -> str:
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{self.entity_id}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="encryption">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>
        <ds:X509Certificate>{TestIdp("x").cert_b64}</ds:X509Certificate>
      </ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>
        <ds:X509Certificate>
{self.cert_b64}
        </ds:X509Certificate>
      </ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="https://example.okta.com/app/sso/saml"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""

    def assertion_xml(
        self,
        *,
        assertion_id: str | None = None,
        name_id: str = "ann@example.com",
        attributes: dict[str, Any] | None = None,
        issuer: str | None = None,
        issued: dt.datetime = NOW,
        not_before: dt.datetime | None = None,
        not_on_or_after: dt.datetime | None = None,
        confirm_until: dt.datetime | None = None,
        audience: str = AUDIENCE,
        recipient: str = RECIPIENT,
        signature: bool = True,
    ) -> str:
        attributes = (
            {
                "department": "Sales",
                "groups": ["admins", "sales"],
                "hireDate": "2024-03-01",
                "seats": "3",
            }
            if attributes is None
            else attributes
        )
        statements = "".join(
            f"<saml2:Attribute Name={quoteattr(name)} "
            'NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">'
            + "".join(
                '<saml2:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                + (
                    'xsi:nil="true"/>'
                    if v is None
                    else f'xsi:type="xs:string" xmlns:xs="http://www.w3.org/2001/XMLSchema">'
                    f"{escape(v)}</saml2:AttributeValue>"
                )
                for v in (value if isinstance(value, list) else [value])
            )
            + "</saml2:Attribute>"
            for name, value in attributes.items()
        )
        not_before = not_before or issued - dt.timedelta(minutes=5)
        not_on_or_after = not_on_or_after or issued + dt.timedelta(minutes=5)
        confirm_until = confirm_until or issued + dt.timedelta(minutes=5)
        return (
            f'<saml2:Assertion xmlns:saml2="{SAML}" '
            f'ID="{assertion_id or "id" + uuidlib.uuid4().hex}" '
            f'IssueInstant="{iso(issued)}" Version="2.0">'
            f"<saml2:Issuer>{escape(issuer or self.entity_id)}</saml2:Issuer>"
            + (PLACEHOLDER if signature else "")
            + "<saml2:Subject>"
            '<saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">'
            f"{escape(name_id)}</saml2:NameID>"
            '<saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<saml2:SubjectConfirmationData NotOnOrAfter="{iso(confirm_until)}" '
            f"Recipient={quoteattr(recipient)}/>"
            "</saml2:SubjectConfirmation></saml2:Subject>"
            f'<saml2:Conditions NotBefore="{iso(not_before)}" '
            f'NotOnOrAfter="{iso(not_on_or_after)}">'
            f"<saml2:AudienceRestriction><saml2:Audience>{escape(audience)}</saml2:Audience>"
            "</saml2:AudienceRestriction></saml2:Conditions>"
            f'<saml2:AuthnStatement AuthnInstant="{iso(issued)}" SessionIndex="s1">'
            "<saml2:AuthnContext><saml2:AuthnContextClassRef>"
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            "</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>"
            f"<saml2:AttributeStatement>{statements}</saml2:AttributeStatement>"
            "</saml2:Assertion>"
        )

    def sign(self, xml: str, key: Any = None, cert: Any = None, **options: Any) -> str:
        """Sign an element that holds the placeholder (enveloped, exclusive c14n, RSA-SHA256)."""
        root = etree.fromstring(xml.encode())
        signer = XMLSigner(
            signature_algorithm=options.pop("signature_algorithm", SignatureMethod.RSA_SHA256),
            c14n_algorithm=EXC_C14N,
            **options,
        )
        signed = signer.sign(
            root,
            key=key or self.key,
            cert=[cert or self.cert],
            reference_uri=root.get("ID"),
        )
        return etree.tostring(signed).decode()

    def response_xml(
        self,
        assertion: str,
        *,
        sign_response: bool = False,
        destination: str = RECIPIENT,
        status: str = "urn:oasis:names:tc:SAML:2.0:status:Success",
    ) -> str:
        xml = (
            f'<saml2p:Response xmlns:saml2p="{SAMLP}" xmlns:saml2="{SAML}" '
            f'Destination={quoteattr(destination)} ID="id{uuidlib.uuid4().hex}" '
            f'IssueInstant="{iso(NOW)}" Version="2.0">'
            f"<saml2:Issuer>{escape(self.entity_id)}</saml2:Issuer>"
            + (PLACEHOLDER if sign_response else "")
            + f'<saml2p:Status><saml2p:StatusCode Value="{status}"/></saml2p:Status>'
            + assertion
            + "</saml2p:Response>"
        )
        return self.sign(xml) if sign_response else xml

    def response(self, *, sign: str = "assertion", **assertion: Any) -> str:
        """A base64 SAMLResponse: sign "assertion" (Okta's and Entra's default), "response",
        "both" or "none"."""
        body = self.assertion_xml(signature=sign in ("assertion", "both"), **assertion)
        if sign in ("assertion", "both"):
            body = self.sign(body)
        xml = self.response_xml(body, sign_response=sign in ("response", "both"))
        return encode(xml)


def encode(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def decode(response: str) -> str:
    return base64.b64decode(response).decode()
