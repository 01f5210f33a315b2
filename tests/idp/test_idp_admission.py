"""OIDC and SAML sign-ins and the admission rules (issue 24, points 2 and 9; issue 25, point 6).

A verified token or Response whose values cannot be kept is a 4xx that says
why, never a 500; what the per-user caps refuse is listed in the answer,
never answered as kept.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from joserfc import jws

from insights.domain.core import limits
from insights.storage.core import store
from insights.storage.core.records import user_pk
from tests.conftest import Stack
from tests.idp import test_saml as saml
from tests.idp.saml_helpers import TestIdp
from tests.idp.test_oidc import CLIENT_ID, NOW, LocalIdp, idp, register, sign_in

__all__ = ["idp"]  # the OIDC issuer fixture


@pytest.fixture
def acme(stack: Stack, idp: LocalIdp) -> Any:
    account = stack.account()
    assert register(stack, account, idp).status == 200
    return account


def held(account: Any, uuid: str) -> dict[str, Any]:
    record = store.get_profile(user_pk(account.account_id, uuid), consistent=True)
    return {} if record is None else {k: v.value for k, v in record.profile.custom.items()}


def fill(stack: Stack, account: Any, uuid: str, count: int) -> None:
    """`count` attributes on the user from another door (Segment identify)."""
    answer = stack.cloud.function_url(
        "TrackFunction",
        "POST",
        "/v1/identify",
        headers={"X-Insights-Key": account.write_key},
        body={"userId": uuid, "traits": {f"t{i}": i for i in range(count)}},
    )
    assert answer.status == 200 and answer.json()["rejected"] == [], answer.body


def signed(idp: LocalIdp, **claims: Any) -> str:
    """A token signed over JSON as any issuer may write it (escapes, huge numbers, NaN)."""
    payload = {
        "iss": idp.issuer,
        "aud": CLIENT_ID,
        "sub": "00u-ann",
        "email": "ann@example.com",
        "iat": NOW,
        "exp": NOW + 3600,
        **claims,
    }
    key = idp.keys[0]
    return jws.serialize_compact({"alg": "RS256", "kid": key.kid}, json.dumps(payload), key)


# -------------------------------------------------------------- point 9
@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"department": "D\udc00"}, "claim department"),
        ({"iat": -1e300}, "claim iat is not a time"),
        ({"iat": -(10**40)}, "claim iat is not a time"),
        ({"exp": 10**40}, "claim exp is not a time"),
    ],
)
def test_a_verified_token_with_values_that_cannot_be_kept_is_400(
    stack: Stack, idp: LocalIdp, acme: Any, claims: dict[str, Any], problem: str
) -> None:
    response = sign_in(stack, acme, signed(idp, **claims))
    assert response.status == 400, response.body
    assert response.json()["error"] == "id_token_not_used"
    assert problem in response.json()["message"]
    assert held(acme, "ann@example.com") == {}


@pytest.mark.parametrize("claims", [{"iat": math.nan}, {"exp": math.inf}, {"iat": "soon"}])
def test_times_that_are_not_numbers_are_refused(
    stack: Stack, idp: LocalIdp, acme: Any, claims: dict[str, Any]
) -> None:
    response = sign_in(stack, acme, signed(idp, **claims))
    assert response.status in (400, 401), response.body


# -------------------------------------------------------------- point 2
def test_oidc_lists_the_claims_the_per_user_caps_refused(
    stack: Stack, idp: LocalIdp, acme: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", 4)
    fill(stack, acme, "ann@example.com", 3)
    response = sign_in(stack, acme, idp.token())
    assert response.status == 200, response.body
    body = response.json()
    assert body["attributes"] == ["department"]
    assert [r["attribute"] for r in body["refused"]] == ["groups", "hired"]
    assert all("at most 4 per user" in r["reason"] for r in body["refused"])
    assert set(held(acme, "ann@example.com")) == {"t0", "t1", "t2", "department"}
    # The user is full: an update of a claim it holds is still taken.
    stack.advance(1)
    later = sign_in(stack, acme, idp.token(iat=NOW + 1, department="Ops")).json()
    assert later["attributes"] == ["department"] and len(later["refused"]) == 2
    assert held(acme, "ann@example.com")["department"] == "Ops"


# ---------------------------------------------------------- SAML (issue 25.6)
@pytest.fixture
def saml_idp() -> TestIdp:
    return TestIdp()


@pytest.fixture
def saml_acme(stack: Stack, saml_idp: TestIdp) -> Any:
    account = stack.account("SamlCo")
    assert saml.register(stack, account, saml_idp).status == 200
    return account


def test_a_verified_response_that_cannot_be_used_is_saml_response_not_used(
    stack: Stack, saml_idp: TestIdp, saml_acme: Any
) -> None:
    for attributes in ({"hireDate": "soon"}, {"seats": ["3", "4"]}):
        answer = saml.post(stack, saml_acme, saml_idp.response(attributes=attributes))
        assert answer.status == 400, answer.body
        assert answer.json()["error"] == "saml_response_not_used"
    unread = saml.post(stack, saml_acme, "not base64!")
    assert unread.status == 400 and unread.json()["error"] == "invalid_saml_response"


def test_saml_lists_the_attributes_the_per_user_caps_refused(
    stack: Stack, saml_idp: TestIdp, saml_acme: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", 5)
    fill(stack, saml_acme, "ann@example.com", 3)
    answer = saml.post(stack, saml_acme, saml_idp.response())
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["attributes"] == ["department", "groups"]
    assert [r["attribute"] for r in body["refused"]] == ["hired", "seats"]
    assert set(held(saml_acme, "ann@example.com")) == {"t0", "t1", "t2", "department", "groups"}
