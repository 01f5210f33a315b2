"""SAML sign-in attributes through the local stack's HTTP routes, as an app's backend sends them.

Responses are signed in the test with a fresh RSA key and self-signed
certificate (tests/idp/saml_helpers.py); the signature-wrapping variants are in
tests/idp/test_domain_saml.py, one of them here end to end.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import MINUTE, T0_MS, Stack
from tests.idp.saml_helpers import AUDIENCE, NOW, RECIPIENT, TestIdp, decode, encode

ROOT = Path(__file__).resolve().parents[2]
FORM = "application/x-www-form-urlencoded"
ATTRIBUTES = {
    "department": "department",
    "groups": "groups",
    "hireDate": {"name": "hired", "type": "date"},
    "seats": {"name": "seats", "type": "number"},
}


@pytest.fixture(scope="module")
def idp() -> TestIdp:
    return TestIdp()


def register(stack: Stack, account: Any, idp: TestIdp, **extra: Any) -> Any:
    config: dict[str, Any] = {
        "entity_id": idp.entity_id,
        "certificate": idp.cert_pem,
        "audience": AUDIENCE,
        "recipient": RECIPIENT,
        "attributes": ATTRIBUTES,
        **extra,
    }
    return stack.cloud.http("PUT", "/v1/idp/saml/config", headers=stack.auth(account), body=config)


def post(stack: Stack, account: Any, saml_response: Any, **headers: str) -> Any:
    return stack.cloud.http(
        "POST",
        "/v1/idp/saml/response",
        headers=headers or {"X-Insights-Key": account.secret_key},
        body={"saml_response": saml_response},
    )


@pytest.fixture
def acme(stack: Stack, idp: TestIdp) -> Any:
    account = stack.account()
    response = register(stack, account, idp)
    assert response.status == 200, response.body
    return account


def rejected(response: Any, status: int = 401) -> str:
    assert response.status == status, response.body
    return response.json()["message"]


def test_a_signed_response_verifies_the_uuid_and_keeps_typed_attributes(
    stack: Stack, idp: TestIdp, acme: Any
) -> None:
    response = post(stack, acme, idp.response())
    assert response.status == 200, response.body
    assert response.json() == {
        "identity": {
            "uuid": "ann@example.com",
            "verified": True,
            "method": "saml",
            "issuer": idp.entity_id,
            "expires_at": T0_MS // 1000 + 300,
        },
        "attributes": ["department", "groups", "hired", "seats"],
        "refused": [],
    }
    # Hidden until the user's first session closes, then there, source idp, typed.
    assert stack.user(acme, "ann@example.com").status == 404
    assert stack.send(acme, [{"uuid": "ann@example.com", "type": "click"}]).status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()
    custom = stack.user(acme, "ann@example.com").json()["custom"]
    assert {k: (v["value"], v["source"]) for k, v in custom.items()} == {
        "department": ("Sales", "idp"),
        "groups": ("admins,sales", "idp"),
        "hired": ("2024-03-01T00:00:00.000Z", "idp"),
        "seats": (3, "idp"),
    }


def test_values_are_stamped_with_the_issue_instant(stack: Stack, idp: TestIdp, acme: Any) -> None:
    newer = idp.response(attributes={"department": "Sales"})
    older = idp.response(
        issued=NOW - dt.timedelta(seconds=50), attributes={"department": "Marketing"}
    )
    assert post(stack, acme, newer).status == 200
    assert post(stack, acme, older).status == 200  # valid, but asserted earlier
    stack.send(acme, [{"uuid": "ann@example.com", "type": "click"}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    department = stack.user(acme, "ann@example.com").json()["custom"]["department"]
    assert department["value"] == "Sales"


@pytest.mark.parametrize("sign", ["response", "both"])
def test_a_signed_response_element_is_accepted_too(
    stack: Stack, idp: TestIdp, acme: Any, sign: str
) -> None:
    response = post(stack, acme, idp.response(sign=sign))
    assert response.status == 200, response.body


def test_form_encoded_and_bearer_are_accepted(stack: Stack, idp: TestIdp, acme: Any) -> None:
    form = stack.cloud.http(
        "POST",
        "/v1/idp/saml/response",
        headers={
            "Authorization": f"Bearer {acme.secret_key}",
            "Content-Type": FORM,
        },
        body=f"SAMLResponse={quote(idp.response(), safe='')}&RelayState=%2Fhome",
    )
    assert form.status == 200, form.body
    # A '+' the sender forgot to percent-encode arrives as a space: still base64.
    raw = idp.response()
    assert "+" in raw
    careless = stack.cloud.http(
        "POST",
        "/v1/idp/saml/response",
        headers={
            "X-Insights-Key": acme.secret_key,
            "Content-Type": FORM,
        },
        body="SAMLResponse=" + raw.replace("/", "%2F").replace("=", "%3D"),
    )
    assert careless.status == 200, careless.body


def test_unsigned_and_tampered_responses_are_refused(stack: Stack, idp: TestIdp, acme: Any) -> None:
    assert "unsigned" in rejected(post(stack, acme, idp.response(sign="none")))
    xml = decode(idp.response())
    tampered = xml.replace(">Sales<", ">Board<")
    assert tampered != xml
    assert "digest mismatch" in rejected(post(stack, acme, encode(tampered)))
    signed_response = decode(idp.response(sign="response"))
    tampered = signed_response.replace("ann@example.com", "eve@example.com")
    assert "digest mismatch" in rejected(post(stack, acme, encode(tampered)))
    # Nothing of that was kept.
    stack.send(acme, [{"uuid": "eve@example.com", "type": "click"}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    assert stack.user(acme, "eve@example.com").json()["custom"] == {}


def test_a_wrapped_signature_is_refused(stack: Stack, idp: TestIdp, acme: Any) -> None:
    signed = idp.sign(idp.assertion_xml(signature=True))
    evil = idp.assertion_xml(signature=False, name_id="eve@example.com")
    # XSW: the attacker's unsigned assertion first, the signed one after it.
    response = encode(idp.response_xml(evil + signed))
    assert "2 assertions" in rejected(post(stack, acme, response))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"confirm_until": NOW - dt.timedelta(minutes=2)}, "expired"),
        ({"not_on_or_after": NOW - dt.timedelta(minutes=2)}, "expired"),
        ({"not_before": NOW + dt.timedelta(minutes=5)}, "not yet valid"),
        ({"issued": NOW + dt.timedelta(minutes=5)}, "issued in the future"),
        ({"audience": "https://other.example.com/saml"}, "Audience"),
        ({"recipient": "https://evil.example.com/acs"}, "Recipient"),
        ({"issuer": "http://www.okta.com/someone-else"}, "Issuer"),
    ],
)
def test_expired_early_wrong_audience_recipient_or_issuer_are_401(
    stack: Stack, idp: TestIdp, acme: Any, change: dict[str, Any], problem: str
) -> None:
    message = rejected(post(stack, acme, idp.response(**change)))
    assert problem in message, message


def test_the_leeway_accepts_a_response_just_expired(stack: Stack, idp: TestIdp, acme: Any) -> None:
    late = idp.response(confirm_until=NOW - dt.timedelta(seconds=30))
    assert post(stack, acme, late).status == 200


def test_a_replayed_response_is_refused_until_and_after_it_expires(
    stack: Stack, idp: TestIdp, acme: Any
) -> None:
    response = idp.response()
    assert post(stack, acme, response).status == 200
    assert "replayed" in rejected(post(stack, acme, response))
    # Another account may see the same assertion only if it trusts the same IdP:
    # the replay record is per account.
    other = stack.account("Other")
    assert register(stack, other, idp).status == 200
    assert post(stack, other, response).status == 200
    stack.advance(10 * MINUTE)
    assert "expired" in rejected(post(stack, acme, response))


def test_a_failed_write_releases_the_assertion_for_the_retry(
    stack: Stack, idp: TestIdp, acme: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from insights.services.idp import saml

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("DynamoDB is down")

    response = idp.response()
    monkeypatch.setattr(saml, "write_attributes", fail)
    assert post(stack, acme, response).status == 500  # the function failed, as on Lambda
    monkeypatch.undo()
    assert post(stack, acme, response).status == 200


def test_a_response_signed_for_another_account_is_refused(
    stack: Stack, idp: TestIdp, acme: Any
) -> None:
    theirs = TestIdp(entity_id=idp.entity_id, name="other-tenant")  # same entity id, other key
    other = stack.account("Other")
    assert register(stack, other, theirs).status == 200
    response = theirs.response()
    message = rejected(post(stack, acme, response))
    assert "does not verify with the registered certificate" in message
    assert post(stack, other, response).status == 200


def test_metadata_registration_reads_entity_id_and_certificates(stack: Stack, idp: TestIdp) -> None:
    account = stack.account()
    body = {
        "metadata_xml": idp.metadata(),
        "audience": AUDIENCE,
        "recipient": [RECIPIENT, "https://app.example.com/saml/acs2"],
        "uuid_attribute": "email",
        "attributes": {"department": "department"},
    }
    response = stack.cloud.http(
        "PUT", "/v1/idp/saml/config", headers=stack.auth(account), body=body
    )
    assert response.status == 200, response.body
    stored = stack.cloud.http("GET", "/v1/idp/saml/config", headers=stack.auth(account)).json()
    assert stored["entity_id"] == idp.entity_id
    assert stored["recipient"] == [RECIPIENT, "https://app.example.com/saml/acs2"]
    assert stored["uuid_attribute"] == "email"
    assert len(stored["certificates"]) == 1  # the signing key, not the encryption one
    assert stored["certificate_info"][0]["subject"] == "CN=okta-test"
    assert re.fullmatch(r"[0-9a-f]{64}", stored["certificate_info"][0]["sha256"])
    # The uuid comes from the email attribute, not the NameID.
    sent = idp.response(name_id="00u1b2c3", attributes={"email": "ann@example.com"})
    answer = post(stack, account, sent)
    assert answer.status == 200 and answer.json()["identity"]["uuid"] == "ann@example.com"
    missing = post(stack, account, idp.response(attributes={"department": "Sales"}))
    assert "email" in rejected(missing, 400)


def test_values_that_cannot_be_used_are_refused_and_nothing_is_written(
    stack: Stack, idp: TestIdp, acme: Any
) -> None:
    bad = idp.response(attributes={"department": "Ops", "hireDate": "soon"})
    message = rejected(post(stack, acme, bad), 400)
    assert "hireDate" in message and "date" in message
    two = idp.response(attributes={"seats": ["3", "4"]})
    assert "seats" in rejected(post(stack, acme, two), 400)


def test_keys_configuration_and_unique_user_ids(stack: Stack, idp: TestIdp, acme: Any) -> None:
    write_key = post(stack, acme, idp.response(), **{"X-Insights-Key": acme.write_key})
    assert write_key.status == 403
    assert post(stack, acme, idp.response(), **{"X-Insights-Key": ""}).status == 401
    bare = stack.account("Bare")
    assert post(stack, bare, idp.response()).status == 409
    got = stack.cloud.http("GET", "/v1/idp/saml/config", headers=stack.auth(bare))
    assert got.status == 404 and got.json()["error"] == "saml_not_configured"
    off = stack.account("Off", unique_user_ids=False)
    assert register(stack, off, idp).status == 200
    assert "unique_user_ids" in rejected(post(stack, off, idp.response()), 403)


def test_bodies_that_are_not_a_saml_response(stack: Stack, idp: TestIdp, acme: Any) -> None:
    assert post(stack, acme, "not base64!").json()["error"] == "invalid_saml_response"
    assert post(stack, acme, encode("<x/>")).status == 400
    doctype = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>'
    )
    assert "DTD" in rejected(post(stack, acme, encode(doctype)), 400)
    assert post(stack, acme, 42).status == 400
    huge = stack.cloud.http(
        "POST",
        "/v1/idp/saml/response",
        headers={"X-Insights-Key": acme.secret_key},
        body={"saml_response": "A" * 600_000},
    )
    assert huge.status == 413
    empty = stack.cloud.http(
        "POST",
        "/v1/idp/saml/response",
        headers={"X-Insights-Key": acme.secret_key},
        body={"SAMLResponse": idp.response()},
    )
    assert empty.status == 400 and "saml_response" in empty.json()["message"]
    for form in ("RelayState=x", "&".join(f"f{i}=x" for i in range(60))):
        answer = stack.cloud.http(
            "POST",
            "/v1/idp/saml/response",
            headers={"X-Insights-Key": acme.secret_key, "Content-Type": FORM},
            body=form,
        )
        assert answer.status == 400 and answer.json()["error"] == "invalid_request", answer.body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"entity_id": None}, "entity_id"),
        ({"certificate": "MIIB-not-a-cert"}, "certificate"),
        ({"metadata_xml": "<md/>"}, "certificate"),  # two sources
        ({"audience": []}, "audience"),
        ({"recipient": 7}, "recipient"),
        ({"uuid_attribute": ""}, "uuid_attribute"),
        ({"attributes": {"dept": {"name": "d", "type": "money"}}}, "attributes['dept']"),
        # Two SAML attributes kept as one: at each sign-in one value silently won.
        ({"attributes": {"department": "dept", "Department": {"name": "dept"}}}, "attributes"),
        ({"tenant": "x"}, "tenant"),
    ],
)
def test_a_bad_registration_is_refused_naming_the_field(
    stack: Stack, idp: TestIdp, change: dict[str, Any], field: str
) -> None:
    account = stack.account()
    response = register(stack, account, idp, **change)
    assert response.status == 400, response.body
    assert response.json()["error"] == "invalid_saml_config"
    assert response.json()["field"] == field


def test_signxml_and_cryptography_load_on_the_first_verification_only() -> None:
    from tests.deploy.test_cold_start import modules_after_import

    loaded = modules_after_import(ROOT / "functions/saml/app.py")
    assert "lxml.etree" in loaded and "insights.domain.idp.saml.response" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("signxml", "cryptography")}
    # Only SamlFunction reaches the SAML modules (lxml and signxml ship with it alone).
    importers = {
        path.relative_to(ROOT).as_posix()
        for path in [*ROOT.glob("functions/*/app.py"), *ROOT.glob("layers/core/insights/**/*.py")]
        if re.search(
            r"^\s*(from|import) insights\.(domain|services)[. ].*saml", path.read_text(), re.M
        )
        or re.search(
            r"^\s*from insights\.(domain|services) import .*\bsaml", path.read_text(), re.M
        )
    }
    assert importers == {
        "functions/saml/app.py",
        "layers/core/insights/domain/idp/saml/config.py",
        "layers/core/insights/domain/idp/saml/response.py",
        "layers/core/insights/services/idp/saml.py",
    }
