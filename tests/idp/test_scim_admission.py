"""SCIM and the admission rules (issue 24, points 2, 3, 4, 11; issue 25, point 7).

Bad values are SCIM errors before anything is stored, whatever an older
version stored never wedges a User, what the per-user caps cannot take is
an error that leaves nothing behind, and every error has SCIM's schema.
"""

from __future__ import annotations

from typing import Any

import pytest

from insights import clock
from insights.domain.core import limits
from insights.storage.core import store
from insights.storage.core.records import user_pk
from insights.storage.idp import items as idp_store
from tests.conftest import Stack
from tests.idp.scim_helpers import CORE, PATCH_OP, Scim, scim_token
from tests.idp.test_scim import scim_error

DEACTIVATE = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}


@pytest.fixture
def acme(stack: Stack) -> Any:
    return stack.account()


@pytest.fixture
def scim(stack: Stack, acme: Any) -> Scim:
    return Scim(stack.cloud, scim_token(stack.cloud, acme))


def held(account: Any, uuid: str) -> dict[str, Any]:
    record = store.get_profile(user_pk(account.account_id, uuid), consistent=True)
    return {} if record is None else {k: v.value for k, v in record.profile.custom.items()}


def user(name: str, **values: Any) -> dict[str, Any]:
    return {"schemas": [CORE], "userName": name, **values}


# ------------------------------------------------------------- point 3
def test_a_lone_surrogate_is_refused_before_anything_is_stored(acme: Any, scim: Scim) -> None:
    answer = scim("POST", "/Users", user("ann", title="T\ud800", active=True))
    assert "surrogate" in scim_error(answer, 400, "invalidValue")
    found = scim("GET", "/Users", query={"filter": 'userName eq "ann"'}).json()
    assert found["totalResults"] == 0 and held(acme, "ann") == {}
    created = scim("POST", "/Users", user("ann", title="T", active=True))
    assert created.status == 201, created.body
    patched = scim(
        "PATCH",
        f"/Users/{created.json()['id']}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "title", "value": "\udc00"}],
        },
    )
    scim_error(patched, 400, "invalidValue")
    assert held(acme, "ann")["idp.title"] == "T"


def test_a_user_stored_with_bad_data_by_an_older_version_is_still_deprovisioned(
    acme: Any, scim: Scim
) -> None:
    # What an older version stored (its 500 came after the SCIM resource was saved).
    for user_id in ("old1", "old2"):
        bad = {"userName": user_id, "title": "T\ud800", "active": True}
        idp_store.save_user(acme.account_id, user_id, bad, None, clock.now_ms())
    answer = scim("PATCH", "/Users/old1", DEACTIVATE)
    assert answer.status == 200, answer.body
    assert answer.json()["active"] is False and answer.json()["title"] == "T\ufffd"
    assert held(acme, "old1") == {"idp.active": False, "idp.title": "T\ufffd"}
    again = scim("PUT", "/Users/old1", user("old1", title="Fixed", active=True))
    assert again.status == 200, again.body
    assert scim("GET", "/Users/old2").json()["title"] == "T\ufffd"
    assert scim("DELETE", "/Users/old2").status == 204
    assert held(acme, "old2") == {"idp.active": False}


# ------------------------------------------------------------- point 4
@pytest.mark.parametrize("literal", ['"\\x"', '"\\u12"', '"\\ud800"', '"a\\q"'])
def test_filters_with_a_bad_json_string_are_400_invalid_filter(scim: Scim, literal: str) -> None:
    answer = scim("GET", "/Users", query={"filter": f"userName eq {literal}"})
    scim_error(answer, 400, "invalidFilter")


def test_patch_paths_with_a_bad_json_string_are_400_invalid_path(scim: Scim) -> None:
    created = scim("POST", "/Users", user("bob", emails=[{"value": "b@x", "type": "work"}]))
    operation = {"op": "replace", "path": 'emails[value eq "\\q"].type', "value": "home"}
    answer = scim(
        "PATCH",
        f"/Users/{created.json()['id']}",
        {"schemas": [PATCH_OP], "Operations": [operation]},
    )
    scim_error(answer, 400, "invalidPath")


@pytest.mark.parametrize("schemas", [5, 1.5, True, {"a": 1}])
def test_a_patch_whose_schemas_is_not_a_list_is_400_invalid_syntax(
    scim: Scim, schemas: Any
) -> None:
    """`"schemas": 5` in a PatchOp was iterated: a TypeError, a 500 in no SCIM shape."""
    created = scim("POST", "/Users", user("eve"))
    operation = {"op": "replace", "path": "title", "value": "T"}
    answer = scim(
        "PATCH",
        f"/Users/{created.json()['id']}",
        {"schemas": schemas, "Operations": [operation]},
    )
    assert "schemas" in scim_error(answer, 400, "invalidSyntax")


def test_filters_and_paths_nested_too_deep_are_scim_errors_naming_the_nesting(
    scim: Scim,
) -> None:
    """Within the 2,000-character cap, 600 parentheses overflowed the parser's
    recursion: the answer was the API's generic shape, not SCIM's."""
    deep = "(" * 600 + 'userName eq "a"' + ")" * 600
    answer = scim("GET", "/Users", query={"filter": deep})
    assert "deeper than" in scim_error(answer, 400, "invalidFilter")
    negated = "not (" * 300 + 'userName eq "a"' + ")" * 300
    answer = scim("GET", "/Users", query={"filter": negated})
    assert "deeper than" in scim_error(answer, 400, "invalidFilter")
    created = scim("POST", "/Users", user("dan", emails=[{"value": "d@x", "type": "work"}]))
    path = "emails[" + "(" * 600 + 'type eq "work"' + ")" * 600 + "].value"
    operation = {"op": "replace", "path": path, "value": "e@x"}
    answer = scim(
        "PATCH",
        f"/Users/{created.json()['id']}",
        {"schemas": [PATCH_OP], "Operations": [operation]},
    )
    assert "deeper than" in scim_error(answer, 400, "invalidPath")


# ------------------------------------------------------------ point 11
def test_undecodable_and_over_deep_bodies_get_scims_error_schema(scim: Scim) -> None:
    assert "UTF-8" in scim_error(scim("POST", "/Users", b"\xff\xfe{}"), 400, "invalidSyntax")
    scim_error(scim("POST", "/Users", b"[" * 100_000), 400, "invalidSyntax")
    deep: Any = "x"
    for _ in range(70):
        deep = {"d": deep}
    answer = scim("POST", "/Users", {**user("carl"), "name": deep})
    assert "deeper than 64" in scim_error(answer, 400, "invalidSyntax")
    scim_error(scim("POST", "/Users", b"   "), 400, "invalidSyntax")


@pytest.mark.parametrize("header", ['W/"9", W/"1"', 'W/"9",*', 'w/"1"', 'W/ "1"', '"9" , "1"', "*"])
def test_if_match_with_a_list_holding_the_current_tag_matches(scim: Scim, header: str) -> None:
    created = scim("POST", "/Users", user("dan"))
    assert created.headers["etag"] == 'W/"1"'
    answer = scim(
        "PATCH", f"/Users/{created.json()['id']}", DEACTIVATE, headers={"If-Match": header}
    )
    assert answer.status == 200, answer.body
    stale = scim(
        "PATCH", f"/Users/{created.json()['id']}", DEACTIVATE, headers={"If-Match": header}
    )
    if header.endswith("*"):
        assert stale.status == 200
    else:
        scim_error(stale, 412)


# ------------------------------------------------------ issue 25 point 7
def test_location_follows_the_scheme_and_host_the_request_came_in_on(scim: Scim) -> None:
    plain = scim("POST", "/Users", user("eve"))
    assert plain.headers["location"].startswith("http://insights.example.com/scim/v2/Users/")
    assert plain.json()["meta"]["location"] == plain.headers["location"]
    behind_tls = scim("POST", "/Users", user("fay"), headers={"X-Forwarded-Proto": "https"})
    assert behind_tls.headers["location"].startswith("https://insights.example.com/scim/v2/")
    odd = scim(
        "GET", "/ServiceProviderConfig", headers={"Host": "a b", "X-Forwarded-Proto": "gopher"}
    )
    assert odd.json()["meta"]["location"].startswith("https://localhost/scim/v2/")


# ------------------------------------------------------------- point 2
def test_what_the_per_user_caps_refuse_is_an_error_and_nothing_is_kept(
    stack: Stack, acme: Any, scim: Scim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", 3)
    created = scim("POST", "/Users", user("gus", displayName="Gus", title="T", active=True))
    assert created.status == 201, created.body
    user_id = created.json()["id"]
    add = {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "userType", "value": "E"}]}
    refused = scim("PATCH", f"/Users/{user_id}", add)
    detail = scim_error(refused, 400, "invalidValue")
    assert "at most 3 per user" in detail and "nothing was stored" in detail
    assert "userType" not in scim("GET", f"/Users/{user_id}").json()
    assert "idp.userType" not in held(acme, "gus")
    # A create the caps refuse leaves no User behind (a retry is not a 409).
    stack.cloud.function_url(
        "TrackFunction",
        "POST",
        "/v1/identify",
        headers={"X-Insights-Key": acme.write_key},
        body={"userId": "hal", "traits": {"a": 1, "b": 2, "c": 3}},
    )
    assert len(held(acme, "hal")) == 3
    answer = scim("POST", "/Users", user("hal", title="T", active=True))
    scim_error(answer, 400, "invalidValue")
    assert scim("GET", "/Users", query={"filter": 'userName eq "hal"'}).json()["totalResults"] == 0
    # Deprovisioning always lands: active is never refused by the caps.
    created = scim("POST", "/Users", user("hal", active=True))
    assert created.status == 201, created.body
    assert held(acme, "hal")["idp.active"] is True and len(held(acme, "hal")) == 4
    stack.advance(1)  # the clock is frozen: a later change needs a later time
    assert scim("PATCH", f"/Users/{created.json()['id']}", DEACTIVATE).status == 200
    assert held(acme, "hal")["idp.active"] is False
    assert scim("DELETE", f"/Users/{user_id}").status == 204
    assert held(acme, "gus")["idp.active"] is False


def test_methods_no_route_takes_get_scims_error_schema(scim: Scim) -> None:
    """The template's SCIM route is ANY: HEAD and TRACE reach the function too."""
    assert "not allowed" in scim_error(scim("TRACE", "/Users"), 405)
    scim_error(scim("TRACE", "/Nowhere"), 404)
    head = scim("HEAD", "/Users")
    assert head.status == 405 and head.headers["content-type"] == "application/scim+json"
