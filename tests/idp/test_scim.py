"""SCIM provisioning through the local stack, with the requests Okta and Entra ID send.

Request bodies follow the shapes in Okta's SCIM 2.0 guide and Microsoft's
"Develop a SCIM endpoint for user provisioning" reference (string booleans,
PATCH path filters, the manager as an id, path-less PATCH values).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import MINUTE, Stack
from tests.idp.scim_helpers import CORE, ENTERPRISE, PATCH_OP, Scim, scim_token

OKTA_USER = {
    "schemas": [CORE],
    "userName": "test.user@okta.local",
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": True,
}

ENTRA_USER = {
    "schemas": [CORE, ENTERPRISE],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab6490ee@contoso.com",
    "active": "True",
    "displayName": "Test User",
    "title": "Engineer",
    "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@contoso.com"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "g"},
    "roles": [],
    ENTERPRISE: {"department": "Engineering", "employeeNumber": "701984"},
}


@pytest.fixture
def acme(stack: Stack) -> Any:
    return stack.account()


@pytest.fixture
def scim(stack: Stack, acme: Any) -> Scim:
    return Scim(stack.cloud, scim_token(stack.cloud, acme))


def close_a_session(stack: Stack, account: Any, uuid: str) -> None:
    assert stack.send(account, [{"uuid": uuid, "type": "click"}]).status == 200
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()


def custom(stack: Stack, account: Any, uuid: str) -> dict[str, Any]:
    response = stack.user(account, uuid)
    assert response.status == 200, response.body
    return response.json()["custom"]


def scim_error(response: Any, status: int, scim_type: str | None = None) -> str:
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/scim+json"
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body["scimType"] == scim_type
    return body["detail"]


# ------------------------------------------------------------------- Okta
def test_okta_lifecycle_create_find_update_deactivate(stack: Stack, acme: Any, scim: Scim) -> None:
    probe = scim(
        "GET",
        "/Users",
        query={"filter": 'userName eq "test.user@okta.local"', "startIndex": "1", "count": "100"},
    )
    assert probe.status == 200 and probe.json()["totalResults"] == 0

    created = scim("POST", "/Users", OKTA_USER)
    assert created.status == 201, created.body
    user = created.json()
    assert user["userName"] == "test.user@okta.local" and "password" not in user
    # The local stack serves http: Location says so (behind API Gateway, https).
    assert user["meta"]["location"] == f"http://insights.example.com/scim/v2/Users/{user['id']}"
    assert created.headers["etag"] == user["meta"]["version"]
    assert created.headers["location"] == user["meta"]["location"]

    # Okta looks users up case-insensitively by userName before it links them.
    found = scim("GET", "/Users", query={"filter": 'userName eq "TEST.USER@okta.local"'})
    assert [r["id"] for r in found.json()["Resources"]] == [user["id"]]

    # Okta's profile push is a PUT of the whole user (a later assertion: a later time).
    stack.advance(5)
    changed = {**OKTA_USER, "id": user["id"], "displayName": "Test U. User", "title": "Lead"}
    put = scim("PUT", f"/Users/{user['id']}", changed)
    assert put.status == 200, put.body
    assert put.json()["title"] == "Lead"

    # Okta deactivates with a path-less replace.
    stack.advance(5)
    deactivate = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    patched = scim("PATCH", f"/Users/{user['id']}", deactivate)
    assert patched.status == 200 and patched.json()["active"] is False

    close_a_session(stack, acme, "test.user@okta.local")
    attrs = custom(stack, acme, "test.user@okta.local")
    assert attrs["idp.active"]["value"] is False and attrs["idp.active"]["source"] == "idp"
    assert attrs["idp.title"]["value"] == "Lead"
    assert attrs["idp.displayName"]["value"] == "Test U. User"
    assert attrs["idp.email"]["value"] == "test.user@okta.local"


# --------------------------------------------------------------- Entra ID
def test_entra_create_then_patch_with_path_filters_and_string_booleans(
    stack: Stack, acme: Any, scim: Scim
) -> None:
    # Entra's connection test: a filter for a user that does not exist.
    probe = scim("GET", "/Users", query={"filter": 'userName eq "non-existent user"'})
    assert probe.status == 200 and probe.json()["Resources"] == []
    missing = scim("GET", "/Users/ad80a6e0-7d4e-4b60-a5d4-1e0f0b0c2a8f")
    scim_error(missing, 404)

    created = scim("POST", "/Users", ENTRA_USER)
    assert created.status == 201, created.body
    user = created.json()
    assert user["active"] is True  # "True" from Entra is a boolean here
    assert user[ENTERPRISE]["department"] == "Engineering"

    by_external = scim(
        "GET", "/Users", query={"filter": f'externalId eq "{ENTRA_USER["externalId"]}"'}
    )
    assert [r["id"] for r in by_external.json()["Resources"]] == [user["id"]]

    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updated@contoso.com",
            },
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "2819c223-7f76-453a"},
            {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Sales"},
            {"op": "Replace", "path": "active", "value": "False"},
        ],
    }
    stack.advance(5)
    patched = scim("PATCH", f"/Users/{user['id']}", patch)
    assert patched.status == 200, patched.body
    body = patched.json()
    assert body["emails"] == [{"primary": True, "type": "work", "value": "updated@contoso.com"}]
    assert body["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100"}]
    assert body["name"]["familyName"] == "updatedFamilyName"
    assert body[ENTERPRISE]["manager"] == {"value": "2819c223-7f76-453a"}
    assert body["active"] is False

    by_email = scim(
        "GET", "/Users", query={"filter": 'emails[type eq "work"].value eq "UPDATED@contoso.com"'}
    )
    assert [r["id"] for r in by_email.json()["Resources"]] == [user["id"]]
    old_email = scim(
        "GET", "/Users", query={"filter": f'emails.value eq "{ENTRA_USER["emails"][0]["value"]}"'}
    )
    assert old_email.json()["totalResults"] == 0

    # Path-less form with paths as keys, and removing the manager again.
    more = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Add", "value": {"name.givenName": "Ann", f"{ENTERPRISE}:division": "EMEA"}},
            {"op": "Remove", "path": f"{ENTERPRISE}:manager"},
        ],
    }
    stack.advance(5)
    again = scim("PATCH", f"/Users/{user['id']}", more)
    assert again.status == 200, again.body
    assert again.json()["name"]["givenName"] == "Ann"
    assert again.json()[ENTERPRISE] == {
        "department": "Sales",
        "employeeNumber": "701984",
        "division": "EMEA",
    }

    uuid = ENTRA_USER["userName"]
    close_a_session(stack, acme, uuid)
    attrs = custom(stack, acme, uuid)
    assert attrs["idp.department"]["value"] == "Sales"
    assert attrs["idp.division"]["value"] == "EMEA"
    assert attrs["idp.active"]["value"] is False
    assert attrs["idp.email"]["value"] == "updated@contoso.com"
    assert attrs["idp.manager"]["value"] is None  # removed in the IdP: null, not stale


def test_bad_patches_are_refused_with_the_reason_and_change_nothing(
    stack: Stack, scim: Scim
) -> None:
    user = scim("POST", "/Users", ENTRA_USER).json()
    cases = [
        ({"op": "Replace", "path": "active", "value": "maybe"}, "invalidValue", "active"),
        ({"op": "Replace", "path": "favouriteColour", "value": "x"}, "invalidPath", "favourite"),
        ({"op": "Remove"}, "noTarget", "path"),
        ({"op": "Move", "path": "title", "value": "x"}, "invalidSyntax", "op"),
        ({"op": "Replace", "path": 'emails[type eq "work"', "value": "x"}, "invalidPath", "ends"),
        ({"op": "Remove", "path": "userName"}, "invalidValue", "userName"),
    ]
    for operation, scim_type, word in cases:
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "title", "value": "Changed"}, operation],
        }
        detail = scim_error(scim("PATCH", f"/Users/{user['id']}", body), 400, scim_type)
        assert word in detail, (operation, detail)
    assert scim("GET", f"/Users/{user['id']}").json()["title"] == "Engineer"
    unknown = {**ENTRA_USER, "userName": "other", "favouriteColour": "blue"}
    assert "favouriteColour" in scim_error(scim("POST", "/Users", unknown), 400, "invalidValue")
    not_json = stack.cloud.http(
        "POST",
        "/scim/v2/Users",
        headers={"Authorization": f"Bearer {scim.token}"},
        body="{not json",
    )
    scim_error(not_json, 400, "invalidSyntax")
    bad_filter = scim("GET", "/Users", query={"filter": "userName eq"})
    scim_error(bad_filter, 400, "invalidFilter")


def test_user_name_is_unique_per_account_ignoring_case(stack: Stack, scim: Scim) -> None:
    assert scim("POST", "/Users", OKTA_USER).status == 201
    clash = {**OKTA_USER, "userName": "TEST.user@OKTA.local", "externalId": "other"}
    scim_error(scim("POST", "/Users", clash), 409, "uniqueness")
    other = stack.account("Other")
    elsewhere = Scim(stack.cloud, scim_token(stack.cloud, other))
    assert elsewhere("POST", "/Users", OKTA_USER).status == 201


def test_long_values_in_keyed_attributes_are_stored_and_found(scim: Scim) -> None:
    """userName, externalId and emails key lookup items: by digest, so a value over
    DynamoDB's 1,024-byte sort key limit is neither a 500 nor unfindable."""
    long_id = "é" * 700  # 1,400 bytes
    long_mail = "é" * 600 + "@okta.local"  # under the 1,024-character limit, not in bytes
    user = {
        **OKTA_USER,
        "externalId": long_id,
        "emails": [{"primary": True, "value": long_mail, "type": "work"}],
    }
    created = scim("POST", "/Users", user)
    assert created.status == 201, created.body
    for query in (f'externalId eq "{long_id}"', f'emails.value eq "{long_mail.upper()}"'):
        found = scim("GET", "/Users?filter=" + quote(query)).json()
        assert [r["id"] for r in found["Resources"]] == [created.json()["id"]], query
    long_name = {**OKTA_USER, "userName": "ü" * 600, "externalId": "x2", "emails": []}
    answer = scim("POST", "/Users", long_name)
    assert answer.status in (201, 400), answer.body  # a uuid too long is a SCIM 400
    if answer.status == 400:
        assert answer.json()["scimType"] == "invalidValue"


def test_if_match_with_a_stale_etag_is_refused(scim: Scim) -> None:
    created = scim("POST", "/Users", OKTA_USER)
    user_id, first = created.json()["id"], created.headers["etag"]
    replace = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": "A"}],
    }
    assert scim("PATCH", f"/Users/{user_id}", replace, headers={"If-Match": first}).status == 200
    stale = scim("PATCH", f"/Users/{user_id}", replace, headers={"If-Match": first})
    scim_error(stale, 412)
    assert scim("DELETE", f"/Users/{user_id}", headers={"If-Match": first}).status == 412


# -------------------------------------------------------------- tokens
def test_a_wrong_missing_or_revoked_token_is_401(stack: Stack, acme: Any, scim: Scim) -> None:
    wrong = Scim(stack.cloud, "scim_not-a-real-token")
    scim_error(wrong("GET", "/Users"), 401)
    no_token = stack.cloud.http("GET", "/scim/v2/Users")
    scim_error(no_token, 401)
    secret_key = Scim(stack.cloud, acme.secret_key)  # the secret key is not a SCIM token
    scim_error(secret_key("GET", "/Users"), 401)

    auth = stack.auth(acme)
    listed = stack.cloud.http("GET", "/v1/idp/scim/tokens", headers=auth).json()["tokens"]
    assert len(listed) == 1 and scim.token not in str(listed)
    assert listed[0]["hint"] == scim.token[:9] + "..."
    revoked = stack.cloud.http("DELETE", f"/v1/idp/scim/tokens/{listed[0]['id']}", headers=auth)
    assert revoked.status == 204
    scim_error(scim("GET", "/Users"), 401)
    again = stack.cloud.http("DELETE", f"/v1/idp/scim/tokens/{listed[0]['id']}", headers=auth)
    assert again.status == 404


def test_tokens_need_the_secret_key(stack: Stack, acme: Any) -> None:
    with_write_key = stack.cloud.http(
        "POST", "/v1/idp/scim/tokens", headers={"Authorization": f"Bearer {acme.write_key}"}
    )
    assert with_write_key.status == 403
    assert stack.cloud.http("GET", "/v1/idp/scim/tokens").status == 401


def test_another_accounts_token_finds_none_of_its_users(stack: Stack, scim: Scim) -> None:
    user = scim("POST", "/Users", OKTA_USER).json()
    other = Scim(stack.cloud, scim_token(stack.cloud, stack.account("Other")))
    scim_error(other("GET", f"/Users/{user['id']}"), 404)
    scim_error(
        other("PATCH", f"/Users/{user['id']}", {"Operations": [{"op": "remove", "path": "title"}]}),
        404,
    )
    scim_error(other("DELETE", f"/Users/{user['id']}"), 404)
    assert other("GET", "/Users").json()["totalResults"] == 0
    listed = other("GET", "/Users", query={"filter": 'userName eq "test.user@okta.local"'})
    assert listed.json()["totalResults"] == 0
    assert scim("GET", f"/Users/{user['id']}").status == 200


# ---------------------------------------------------- the attribute path
def test_a_user_provisioned_before_the_first_session_is_hidden_until_it_closes(
    stack: Stack, acme: Any, scim: Scim
) -> None:
    assert scim("POST", "/Users", ENTRA_USER).status == 201
    uuid = ENTRA_USER["userName"]
    hidden = stack.user(acme, uuid)
    assert hidden.status == 404
    assert stack.send(acme, [{"uuid": uuid, "type": "click"}]).status == 200
    assert stack.user(acme, uuid).status == 404  # the session is still open
    stack.advance(31 * MINUTE)
    stack.sweep()
    attrs = custom(stack, acme, uuid)
    assert {k: v["value"] for k, v in attrs.items() if k.startswith("idp.")} == {
        "idp.active": True,
        "idp.displayName": "Test User",
        "idp.title": "Engineer",
        "idp.givenName": "g",
        "idp.familyName": "familyName",
        "idp.email": "Test_User_fd0ea19b@contoso.com",
        "idp.department": "Engineering",
        "idp.employeeNumber": "701984",
    }
    assert {v["source"] for v in attrs.values()} == {"idp"}


def test_delete_records_active_false_and_keeps_the_profile(
    stack: Stack, acme: Any, scim: Scim
) -> None:
    user = scim("POST", "/Users", OKTA_USER).json()
    close_a_session(stack, acme, OKTA_USER["userName"])
    stack.advance(60)
    deleted = scim("DELETE", f"/Users/{user['id']}")
    assert deleted.status == 204 and deleted.body == ""
    scim_error(scim("GET", f"/Users/{user['id']}"), 404)
    attrs = custom(stack, acme, OKTA_USER["userName"])
    assert attrs["idp.active"]["value"] is False
    assert attrs["idp.title" if "idp.title" in attrs else "idp.displayName"]["value"]
    # The userName is free again: the IdP may provision the user anew.
    assert scim("POST", "/Users", OKTA_USER).status == 201


def test_a_user_whose_uuid_changes_leaves_nothing_stale_on_the_old_uuid(
    stack: Stack, acme: Any, scim: Scim
) -> None:
    """userName is the uuid by default, and IdPs rename (an email changes). The new
    uuid got the values; the old one kept them, idp.active true included, even
    after the User was deprovisioned. What the User set there is withdrawn."""
    old, new = OKTA_USER["userName"], "test.user.renamed@okta.local"
    user = scim("POST", "/Users", OKTA_USER).json()
    close_a_session(stack, acme, old)
    assert stack.send(acme, [{"uuid": old, "user_properties": {"plan": "VIP"}}]).status == 200
    close_a_session(stack, acme, old)
    rename = {"op": "replace", "path": "userName", "value": new}
    patched = scim("PATCH", f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": [rename]})
    assert patched.status == 200, patched.body
    held = custom(stack, acme, old)
    assert held["plan"]["value"] == "VIP"  # another source's value stays
    assert all(v["value"] is None for k, v in held.items() if k.startswith("idp.")), held
    stack.advance(60)
    assert scim("DELETE", f"/Users/{user['id']}").status == 204
    close_a_session(stack, acme, new)
    assert custom(stack, acme, new)["idp.active"]["value"] is False
    assert not any(v["value"] for k, v in custom(stack, acme, old).items() if k.startswith("idp."))


def test_an_account_without_user_records_is_refused(stack: Stack) -> None:
    account = stack.account("NoIds", unique_user_ids=False)
    scim = Scim(stack.cloud, scim_token(stack.cloud, account))
    detail = scim_error(scim("POST", "/Users", OKTA_USER), 403)
    assert "unique_user_ids" in detail
    assert scim("GET", "/Users").json()["totalResults"] == 0


def test_a_user_whose_uuid_would_break_the_uuid_rules_is_refused(acme: Any, scim: Scim) -> None:
    """userName may be 1,024 characters; a uuid at most 256 (as events, imports, /v1/users)."""
    response = scim("POST", "/Users", {"schemas": [CORE], "userName": "u" * 300})
    assert "longer than 256" in scim_error(response, 400, "invalidValue")
    assert scim("GET", "/Users").json()["totalResults"] == 0  # nothing was stored


def test_the_mapping_chooses_the_uuid_names_and_types(stack: Stack, acme: Any, scim: Scim) -> None:
    auth = stack.auth(acme)
    default = stack.cloud.http("GET", "/v1/idp/scim/config", headers=auth).json()
    assert default["default"] is True and default["uuid"] == "userName"
    mapping = {
        "uuid": "externalId",
        "attributes": {
            f"{ENTERPRISE}:employeeNumber": {"name": "employee_no", "type": "number"},
            f"{ENTERPRISE}:department": "department",
            'emails[type eq "work"].value': "work_email",
        },
    }
    saved = stack.cloud.http("PUT", "/v1/idp/scim/config", headers=auth, body=mapping)
    assert saved.status == 200, saved.body
    assert saved.json()["attributes"]["active"] == {"name": "idp.active", "type": "boolean"}

    assert scim("POST", "/Users", ENTRA_USER).status == 201
    uuid = ENTRA_USER["externalId"]
    close_a_session(stack, acme, uuid)
    attrs = custom(stack, acme, uuid)
    assert {k: v["value"] for k, v in attrs.items()} == {
        "employee_no": 701984,
        "department": "Engineering",
        "work_email": "Test_User_fd0ea19b@contoso.com",
        "idp.active": True,
    }

    # A value that does not parse as its type: refused, naming it; nothing stored.
    bad = {
        **ENTRA_USER,
        "userName": "n2",
        "externalId": "x2",
        ENTERPRISE: {"employeeNumber": "A-7"},
    }
    detail = scim_error(scim("POST", "/Users", bad), 400, "invalidValue")
    assert "employeeNumber" in detail and "employee_no" in detail
    assert scim("GET", "/Users", query={"filter": 'userName eq "n2"'}).json()["totalResults"] == 0
    # A user without the uuid attribute: refused, naming it.
    no_external = {k: v for k, v in OKTA_USER.items() if k != "externalId"}
    assert "externalId" in scim_error(scim("POST", "/Users", no_external), 400)


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"uuid": "displayName"}, "uuid"),
        ({"attributes": {"shoeSize": "n"}}, "attributes['shoeSize']"),
        ({"attributes": {"title": {"name": "t", "type": "money"}}}, "attributes['title']"),
        ({"attributes": {"title": "x", "displayName": "x"}}, "attributes"),
        ({"attributes": {"title": ""}}, "attributes['title']"),
        ({"colour": 1}, "colour"),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_field(
    stack: Stack, acme: Any, mapping: dict[str, Any], field: str
) -> None:
    response = stack.cloud.http(
        "PUT", "/v1/idp/scim/config", headers=stack.auth(acme), body=mapping
    )
    assert response.status == 400, response.body
    assert response.json()["error"] == "invalid_scim_config"
    assert response.json()["field"] == field


def test_list_pages_with_start_index_and_count(scim: Scim) -> None:
    ids = []
    for n in range(5):
        body = {**OKTA_USER, "userName": f"user{n}@okta.local", "externalId": f"x{n}"}
        ids.append(scim("POST", "/Users", body).json()["id"])
    first = scim("GET", "/Users", query={"startIndex": "1", "count": "2"}).json()
    second = scim("GET", "/Users", query={"startIndex": "3", "count": "2"}).json()
    last = scim("GET", "/Users", query={"startIndex": "5", "count": "2"}).json()
    assert first["totalResults"] == second["totalResults"] == 5
    assert first["itemsPerPage"] == 2 and last["itemsPerPage"] == 1
    seen = [r["id"] for page in (first, second, last) for r in page["Resources"]]
    assert sorted(seen) == sorted(ids)
    only = scim("GET", "/Users", query={"count": "1", "attributes": "userName"}).json()
    assert set(only["Resources"][0]) == {"schemas", "id", "userName"}
    sw = scim("GET", "/Users", query={"filter": 'userName sw "user3" or externalId eq "x4"'})
    assert sw.json()["totalResults"] == 2
