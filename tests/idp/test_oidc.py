"""OIDC sign-in claims: a test IdP in this process (keys, discovery and JWKS over local HTTP)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.conftest import MINUTE, T0_MS, Stack

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "0oa-insights-app"
NOW = T0_MS // 1000


class LocalIdp:
    """An OIDC issuer: signing keys, a discovery document and a JWKS served over HTTP."""

    def __init__(self) -> None:
        self.keys: list[Any] = [RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})]
        self.fetches: dict[str, int] = {"discovery": 0, "jwks": 0}
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    idp.fetches["discovery"] += 1
                    body = {"issuer": idp.issuer, "jwks_uri": idp.issuer + "/keys"}
                elif self.path == "/keys":
                    idp.fetches["jwks"] += 1
                    body = {"keys": [k.as_dict(private=False) for k in idp.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: Any = None, alg: str = "RS256", **claims: Any) -> str:
        key = key or self.keys[0]
        payload = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "00u-ann",
            "email": "ann@example.com",
            "iat": NOW,
            "exp": NOW + 3600,
            "department": "Sales",
            "groups": ["admins", "sales"],
            "hire_date": "2024-03-01",
            **claims,
        }
        return jwt.encode({"alg": alg, "kid": key.kid}, payload, key)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def idp() -> Iterator[LocalIdp]:
    from insights.services.idp import oidc

    oidc._keys.clear()
    server = LocalIdp()
    yield server
    server.close()


def register(stack: Stack, account: Any, idp: LocalIdp, **extra: Any) -> Any:
    config = {
        "issuer": idp.issuer,
        "audience": CLIENT_ID,
        "uuid_claim": "email",
        "claims": {
            "department": "department",
            "groups": "groups",
            "hire_date": {"name": "hired", "type": "date"},
        },
        **extra,
    }
    return stack.cloud.http("PUT", "/v1/idp/oidc/config", headers=stack.auth(account), body=config)


def sign_in(stack: Stack, account: Any, token: Any) -> Any:
    return stack.cloud.http(
        "POST",
        "/v1/idp/oidc/token",
        headers={"X-Insights-Key": account.write_key},
        body={"id_token": token},
    )


@pytest.fixture
def acme(stack: Stack, idp: LocalIdp) -> Any:
    account = stack.account()
    assert register(stack, account, idp).status == 200
    return account


def test_a_valid_token_verifies_the_uuid_and_keeps_the_claims(
    stack: Stack, idp: LocalIdp, acme: Any
) -> None:
    response = sign_in(stack, acme, idp.token())
    assert response.status == 200, response.body
    assert response.json() == {
        "identity": {
            "uuid": "ann@example.com",
            "verified": True,
            "method": "oidc",
            "issuer": idp.issuer,
            "expires_at": NOW + 3600,
        },
        "attributes": ["department", "groups", "hired"],
        "refused": [],
    }
    # Hidden until the user's first session closes, then there, source idp.
    assert stack.user(acme, "ann@example.com").status == 404
    assert stack.send(acme, [{"uuid": "ann@example.com", "type": "click"}]).status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()
    custom = stack.user(acme, "ann@example.com").json()["custom"]
    assert {k: (v["value"], v["source"]) for k, v in custom.items()} == {
        "department": ("Sales", "idp"),
        "groups": ("admins,sales", "idp"),
        "hired": ("2024-03-01T00:00:00.000Z", "idp"),
    }
    # Stamped with the token's iat: an older token cannot undo a newer one.
    older = idp.token(iat=NOW - 600, department="Marketing")
    assert sign_in(stack, acme, older).status == 200
    stack.cloud.settle()
    assert stack.user(acme, "ann@example.com").json()["custom"]["department"]["value"] == "Sales"
    # Discovery and keys were fetched once for all of that.
    assert idp.fetches == {"discovery": 1, "jwks": 1}


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"exp": NOW - 120}, "exp"),
        ({"aud": "someone-else"}, "aud"),
        ({"iss": "https://evil.example.com"}, "iss"),
        ({"iat": NOW + 600}, "issued in the future"),
        # Several audiences: the token is another client's (azp) that lists ours.
        ({"aud": [CLIENT_ID, "other-app"], "azp": "other-app"}, "azp"),
        ({"aud": [CLIENT_ID, "other-app"]}, "azp"),
    ],
)
def test_expired_wrong_audience_wrong_issuer_are_401(
    stack: Stack, idp: LocalIdp, acme: Any, claims: dict[str, Any], problem: str
) -> None:
    response = sign_in(stack, acme, idp.token(**claims))
    assert response.status == 401, response.body
    assert response.json()["error"] == "id_token_rejected"
    assert problem in response.json()["message"]


def test_leeway_accepts_a_token_just_expired(stack: Stack, idp: LocalIdp, acme: Any) -> None:
    assert sign_in(stack, acme, idp.token(exp=NOW - 30)).status == 200


def test_a_token_for_several_audiences_issued_to_us_is_accepted(
    stack: Stack, idp: LocalIdp, acme: Any
) -> None:
    token = idp.token(aud=[CLIENT_ID, "api://backend"], azp=CLIENT_ID)
    assert sign_in(stack, acme, token).status == 200


def test_an_unknown_kid_refetches_the_keys_once_then_a_rotated_key_works(
    stack: Stack, idp: LocalIdp, acme: Any
) -> None:
    assert sign_in(stack, acme, idp.token()).status == 200
    rotated = ECKey.generate_key("P-256", parameters={"kid": "ec-2"})
    idp.keys = [rotated]  # the IdP rotates: the old key is gone
    response = sign_in(stack, acme, idp.token(key=rotated, alg="ES256"))
    assert response.status == 200, response.body
    assert idp.fetches["jwks"] == 2
    # A made-up kid right after: no refetch within the minute, and a 401.
    forged = ECKey.generate_key("P-256", parameters={"kid": "made-up"})
    response = sign_in(stack, acme, idp.token(key=forged, alg="ES256"))
    assert response.status == 401 and "made-up" in response.json()["message"]
    assert idp.fetches["jwks"] == 2
    # The old key no longer verifies.
    assert (
        sign_in(
            stack, acme, idp.token(key=RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}))
        ).status
        == 401
    )


def test_alg_none_and_hs256_with_the_public_key_are_refused(
    stack: Stack, idp: LocalIdp, acme: Any
) -> None:
    header = {"alg": "none", "kid": "rsa-1"}
    payload = json.loads(base64.urlsafe_b64decode(idp.token().split(".")[1] + "=="))
    unsigned = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."
    response = sign_in(stack, acme, unsigned)
    assert response.status == 401 and "'none' is not accepted" in response.json()["message"]

    # Algorithm confusion: HMAC "signed" with the public key anyone can fetch.
    public_pem = idp.keys[0].as_pem(private=False)
    header = {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    response = sign_in(stack, acme, f"{signing_input}.{b64(mac)}")
    assert response.status == 401 and "'HS256' is not accepted" in response.json()["message"]

    # A tampered payload under a real signature.
    head, _, signature = idp.token().split(".")
    tampered = f"{head}.{b64(json.dumps({**payload, 'department': 'Board'}).encode())}.{signature}"
    assert sign_in(stack, acme, tampered).status == 401
    assert sign_in(stack, acme, "not-a-jwt").status == 401


def test_a_token_of_another_accounts_issuer_is_refused(
    stack: Stack, idp: LocalIdp, acme: Any
) -> None:
    other_idp = LocalIdp()
    try:
        other = stack.account("Other")
        assert register(stack, other, other_idp).status == 200
        theirs = other_idp.token()
        assert sign_in(stack, other, theirs).status == 200
        response = sign_in(stack, acme, theirs)
        assert response.status == 401, response.body
    finally:
        other_idp.close()


def test_claims_that_cannot_be_used_are_refused(stack: Stack, idp: LocalIdp, acme: Any) -> None:
    no_email = idp.token(email=None)
    response = sign_in(stack, acme, no_email)
    assert response.status == 400 and "email" in response.json()["message"]
    bad_date = sign_in(stack, acme, idp.token(hire_date="soon"))
    assert bad_date.status == 400 and "hire_date" in bad_date.json()["message"]
    too_long = sign_in(stack, acme, idp.token(email="a" * 300 + "@example.com"))
    assert too_long.status == 400 and "longer than 256" in too_long.json()["message"]


def test_an_email_the_idp_marks_unverified_cannot_be_the_verified_uuid(
    stack: Stack, idp: LocalIdp, acme: Any
) -> None:
    """uuid_claim "email": the answer's identity says this browser may act as that
    uuid. An IdP that lets people register any email says email_verified false
    (some as the string "false"): such a token proves nothing about the email."""
    for flag in (False, "false", "False"):
        response = sign_in(stack, acme, idp.token(email="boss@example.com", email_verified=flag))
        assert response.status == 400, (flag, response.body)
        assert response.json()["error"] == "id_token_not_used"
        assert "not verified" in response.json()["message"]
    assert stack.user(acme, "boss@example.com").status == 404  # nothing was written
    for flag in (True, "true"):
        response = sign_in(stack, acme, idp.token(email="boss@example.com", email_verified=flag))
        assert response.status == 200, (flag, response.body)
        assert response.json()["identity"]["uuid"] == "boss@example.com"
    # With another uuid claim the email is only an attribute source, and is not judged.
    assert register(stack, acme, idp, uuid_claim="sub").status == 200
    response = sign_in(stack, acme, idp.token(email_verified=False))
    assert response.status == 200 and response.json()["identity"]["uuid"] == "00u-ann"


def test_accounts_without_an_issuer_or_without_user_records(stack: Stack, idp: LocalIdp) -> None:
    bare = stack.account("Bare")
    assert sign_in(stack, bare, idp.token()).status == 409
    off = stack.account("Off", unique_user_ids=False)
    assert register(stack, off, idp).status == 200
    response = sign_in(stack, off, idp.token())
    assert response.status == 403 and "unique_user_ids" in response.json()["message"]


def test_a_registration_saved_with_two_claims_under_one_name_still_reads(
    stack: Stack, idp: LocalIdp, acme: Any
) -> None:
    """Saved before such a registration was refused: sign-ins and GET keep working."""
    from insights.storage.idp import items as idp_store

    config = stack.cloud.http("GET", "/v1/idp/oidc/config", headers=stack.auth(acme)).json()
    config["claims"]["dept_code"] = {"name": "department", "type": "string"}
    idp_store.put_config(acme.account_id, "oidc", config, 0)
    got = stack.cloud.http("GET", "/v1/idp/oidc/config", headers=stack.auth(acme))
    assert got.status == 200 and "dept_code" in got.json()["claims"]
    assert sign_in(stack, acme, idp.token()).status == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"algorithms": ["HS256"]}, "algorithms"),
        ({"algorithms": ["none"]}, "algorithms"),
        ({"issuer": "http://idp.example.com"}, "issuer"),
        ({"issuer": "https://["}, "issuer"),  # urlsplit's ValueError was a 500
        ({"discovery_url": "https://[::1/x"}, "discovery_url"),
        ({"audience": []}, "audience"),
        ({"claims": {"dept": {"name": "d", "type": "money"}}}, "claims['dept']"),
        # Two claims kept as one attribute: at each sign-in one value silently won.
        ({"claims": {"department": "dept", "dept_code": {"name": "dept"}}}, "claims"),
        ({"tenant": "x"}, "tenant"),
    ],
)
def test_a_bad_registration_is_refused_naming_the_field(
    stack: Stack, idp: LocalIdp, change: dict[str, Any], field: str
) -> None:
    account = stack.account()
    response = register(stack, account, idp, **change)
    assert response.status == 400, response.body
    assert response.json()["error"] == "invalid_oidc_config" and response.json()["field"] == field
