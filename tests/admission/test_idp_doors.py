"""The identity-provider doors (SCIM, OIDC, SAML) with hostile values.

Each answer is a 4xx (SCIM's error schema on SCIM routes) or names what it
refused, never a 5xx, and every attribute a door reports as kept is readable
on the user afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws

from insights import clock
from insights.domain.core import limits
from tests.admission.hostile import (
    BOUNDED,
    STRINGS,
    Counter,
    Taken,
    prefill,
    prefills,
    scalars,
    values,
)
from tests.conftest import Stack
from tests.idp.saml_helpers import AUDIENCE, RECIPIENT, TestIdp
from tests.idp.scim_helpers import CORE, Scim, scim_token
from tests.idp.test_oidc import CLIENT_ID, LocalIdp

CAP = 5  # the per-user attribute cap while this module runs: met at every ±1 cheaply
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture(scope="module", autouse=True)
def small_caps() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", CAP)
        yield


def test_the_scim_door(shared: Stack) -> None:
    account = shared.account("scim")
    taken = Taken(shared, account)
    fresh = Counter("sc")
    scim = Scim(shared.cloud, scim_token(shared.cloud, account))

    @BOUNDED
    @given(title=values, other=values, held=prefills, op=st.sampled_from(["POST", "PATCH"]))
    def send(title: Any, other: Any, held: int, op: str) -> None:
        uuid = fresh()
        prefill(shared, account, uuid, held)
        user = {"schemas": [CORE], "userName": uuid, "active": True}
        if op == "POST":
            answer = scim("POST", "/Users", {**user, "title": title, "displayName": other})
        else:
            created = scim("POST", "/Users", user)
            if created.status != 201:
                assert created.status < 500, created.body
                return
            operations = [
                {"op": "replace", "path": "title", "value": title},
                {"op": "add", "value": {"displayName": other}},
            ]
            patch = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": operations,
            }
            shared.advance(0.001)  # the clock is frozen: a change needs a later time
            answer = scim("PATCH", f"/Users/{created.json()['id']}", patch)
        assert answer.status < 500, answer.body
        if answer.status >= 400:
            error = answer.json()
            assert error["schemas"] == [SCIM_ERROR] and error["status"] == str(answer.status)
            return
        kept = answer.json()
        taken.add(uuid, "idp.active", True, answer.body)
        for name, attribute in (("idp.title", "title"), ("idp.displayName", "displayName")):
            if attribute in kept:
                taken.add(uuid, name, kept[attribute], answer.body)

    send()
    taken.check()


def _signed(idp: LocalIdp, **claims: Any) -> str:
    """A token over JSON as any issuer may write it (escapes, huge numbers)."""
    now = clock.now_ms() // 1000  # the module's stack clock moves on between tests
    payload = {"iss": idp.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 3600, **claims}
    key = idp.keys[0]
    return jws.serialize_compact({"alg": "RS256", "kid": key.kid}, json.dumps(payload), key)


def test_the_oidc_door(shared: Stack) -> None:
    from insights.services.idp import oidc

    oidc._keys.clear()
    idp = LocalIdp()
    try:
        account = shared.account("oidc")
        config = {
            "issuer": idp.issuer,
            "audience": CLIENT_ID,
            "claims": {"department": "department", "seats": {"name": "seats", "type": "number"}},
        }
        put = shared.cloud.http(
            "PUT", "/v1/idp/oidc/config", headers=shared.auth(account), body=config
        )
        assert put.status == 200, put.body
        taken = Taken(shared, account)
        fresh = Counter("oi")
        claims = st.one_of(values, st.lists(scalars, max_size=3))

        @BOUNDED
        @given(
            department=claims,
            seats=claims,
            iat=st.sampled_from([None, -1e300, -(10**40), 10**40, 1e-7, 0.5]),
            held=prefills,
        )
        def send(department: Any, seats: Any, iat: Any, held: int) -> None:
            uuid = fresh()
            prefill(shared, account, uuid, held)
            times = {} if iat is None else {"iat": iat}
            token = _signed(idp, sub=uuid, department=department, seats=seats, **times)
            answer = shared.cloud.http(
                "POST",
                "/v1/idp/oidc/token",
                headers={"X-Insights-Key": account.write_key},
                body={"id_token": token},
            )
            assert answer.status < 500, answer.body
            if answer.status != 200:
                return
            body = answer.json()
            refused = {r["attribute"] for r in body["refused"]}
            assert not refused & set(body["attributes"]), body
            expected = {"department": department, "seats": seats}
            for name in body["attributes"]:
                value = expected[name]
                if isinstance(value, list):  # a list claim kept as a string is comma-joined
                    if name != "department":
                        [value] = value
                    else:
                        value = ",".join(v if isinstance(v, str) else _text(v) for v in value)
                elif name == "department" and not isinstance(value, str):
                    value = _text(value)
                taken.add(uuid, name, _typed(value, name), answer.body)

        send()
        taken.check()
    finally:
        idp.close()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _typed(value: Any, name: str) -> Any:
    if name == "seats" and isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return float(text)
    return value


def test_the_saml_door(shared: Stack) -> None:
    idp = TestIdp()
    account = shared.account("saml")
    config = {
        "entity_id": idp.entity_id,
        "certificate": idp.cert_pem,
        "audience": AUDIENCE,
        "recipient": RECIPIENT,
        "uuid_attribute": "uid",
        "attributes": {"department": "department", "seats": {"name": "seats", "type": "number"}},
    }
    put = shared.cloud.http("PUT", "/v1/idp/saml/config", headers=shared.auth(account), body=config)
    assert put.status == 200, put.body
    taken = Taken(shared, account)
    fresh = Counter("sa")
    # XML holds no lone surrogate or control character: the XML-safe hostile strings.
    texts = st.one_of(
        st.sampled_from([s for s in STRINGS if s.isprintable() and "\ud800" not in s]),
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"])),
        st.sampled_from(["1e126", "1" * 40, "9.99e125", "-0", "0x10", "1_000"]),
    )

    @BOUNDED
    @given(department=st.lists(texts, max_size=3), seats=st.lists(texts, max_size=2), held=prefills)
    def send(department: list[str], seats: list[str], held: int) -> None:
        uuid = fresh()
        prefill(shared, account, uuid, held)
        issued = dt.datetime.fromtimestamp(clock.now_ms() / 1000, dt.UTC)
        attributes = {"uid": uuid, "department": department, "seats": seats}
        response = idp.response(attributes=attributes, issued=issued)
        answer = shared.cloud.http(
            "POST",
            "/v1/idp/saml/response",
            headers={"X-Insights-Key": account.secret_key},
            body={"saml_response": response},
        )
        assert answer.status < 500, answer.body
        if answer.status != 200:
            assert answer.json()["error"] in ("saml_response_not_used", "invalid_saml_response")
            return
        body = answer.json()
        present = {"department": [d for d in department if d], "seats": [s for s in seats if s]}
        for name in body["attributes"]:
            given_values = present[name]
            if not given_values:
                taken.add(uuid, name, None, answer.body)
            elif name == "department":
                taken.add(uuid, name, ",".join(given_values), answer.body)
            else:
                taken.add(uuid, name, _typed(given_values[0], name), answer.body)

    send()
    taken.check()
