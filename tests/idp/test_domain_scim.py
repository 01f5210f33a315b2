"""SCIM's pure part: filters, PATCH paths, values, projection and the mapping."""

from __future__ import annotations

import pytest

from insights.domain.idp.scim import ScimError
from insights.domain.idp.scim.filter import equality_lookup, matches, parse_filter, parse_path
from insights.domain.idp.scim.mapping import ConfigError, ScimMapping, kept_values, parse_mapping
from insights.domain.idp.scim.resource import apply_patch, normalize_user, project
from insights.domain.idp.scim.schema import ENTERPRISE

USER = {
    "userName": "Ann@Example.com",
    "externalId": "Ext-1",
    "active": True,
    "title": "Engineer",
    "emails": [
        {"value": "ann@example.com", "type": "work", "primary": True},
        {"value": "ann@home.example", "type": "home"},
    ],
    ENTERPRISE: {"department": "Sales", "manager": {"value": "m-1"}},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "ann@example.com"', True),  # caseExact false
        ('externalId eq "ext-1"', False),  # caseExact true
        ('externalId eq "Ext-1"', True),
        ('emails.value eq "ANN@HOME.EXAMPLE"', True),
        ('emails eq "ann@home.example"', True),
        ('emails[type eq "work" and primary eq true].value eq "ann@example.com"', True),
        ('emails[type eq "home"].value eq "ann@example.com"', False),
        ('title sw "Eng" and not (active eq false)', True),
        ('title co "gine" or userName eq "x"', True),
        ("nickName pr", False),
        ("title pr", True),
        (f'{ENTERPRISE}:department eq "sales"', True),
        (f'{ENTERPRISE}:manager.value eq "m-1"', True),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName ew "example.com"', True),
        ('USERNAME EQ "ann@example.com"', True),
        ('title ne "Engineer"', False),
        ('(title gt "A") and (title lt "F")', True),
    ],
)
def test_filters(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), USER) is expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("userName eq", "ends too early"),
        ('userName xx "a"', "expected an operator"),
        ('colour eq "blue"', "unknown attribute 'colour'"),
        ('name.shoe eq "x"', "no sub-attribute"),
        ('userName eq "a" and', "ends too early"),
        ('userName eq "a")', "unexpected ')'"),
        ("userName eq blue", "not a value"),
        ('title[value eq "x"]', "cannot take a [filter]"),
        ('urn:example:Thing:colour eq "x"', "unknown schema"),
        ("", "is empty"),
    ],
)
def test_bad_filters_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    assert caught.value.status == 400 and caught.value.scim_type == "invalidFilter"
    assert problem in caught.value.detail


def test_paths_and_lookups() -> None:
    path = parse_path('emails[type eq "work"].value')
    assert path.attr is not None and path.attr.name == "emails" and path.sub.name == "value"
    whole = parse_path(ENTERPRISE)
    assert whole.ext == ENTERPRISE and whole.attr is None
    assert equality_lookup(parse_filter('userName eq "A"')) == ("userName", "A")
    assert equality_lookup(parse_filter('emails[type eq "work"].value eq "a@b"')) == (
        "emails",
        "a@b",
    )
    assert equality_lookup(parse_filter('userName sw "A"')) is None
    assert equality_lookup(parse_filter('userName eq "A" or title eq "x"')) is None


def test_values_are_typed_and_named_canonically() -> None:
    user = normalize_user(
        {
            "USERNAME": "a",
            "Active": "FALSE",
            "Emails": [{"Value": "a@b", "Primary": "true"}],
            ENTERPRISE.upper(): {"Manager": "m-9"},
        }
    )
    assert user == {
        "userName": "a",
        "active": False,
        "emails": [{"value": "a@b", "primary": True}],
        ENTERPRISE: {"manager": {"value": "m-9"}},
    }
    with pytest.raises(ScimError, match="more than one value has primary true"):
        normalize_user({"userName": "a", "emails": [{"value": "x", "primary": True}] * 2})
    with pytest.raises(ScimError, match="userName is required"):
        normalize_user({"displayName": "x"})
    with pytest.raises(ScimError, match="title: must be a string"):
        normalize_user({"userName": "a", "title": 5})


def test_an_attribute_sent_twice_in_another_case_is_refused_not_dropped() -> None:
    """SCIM names are case-insensitive: "title" and "Title" are one attribute. The
    later one silently won; two different values are now a 400 naming it."""
    for body, name in [
        ({"userName": "a", "title": "CEO", "Title": "Intern"}, "title"),
        ({"userName": "a", "name": {"givenName": "A", "GIVENNAME": "B"}}, "name.givenName"),
        (
            {"userName": "a", ENTERPRISE: {"department": "R&D"}, f"{ENTERPRISE}:department": "Ops"},
            "department",
        ),
    ]:
        with pytest.raises(ScimError) as refused:
            normalize_user(body)
        assert refused.value.status == 400 and refused.value.scim_type == "invalidSyntax"
        assert name in refused.value.detail and "twice" in refused.value.detail
    # The same value twice says one thing: taken.
    same = normalize_user({"userName": "a", "title": "CEO", "TITLE": "CEO"})
    assert same == {"userName": "a", "title": "CEO"}


def test_patch_add_to_a_multi_valued_attribute_moves_primary() -> None:
    patched = apply_patch(
        USER,
        {
            "Operations": [
                {"op": "add", "path": "emails", "value": [{"value": "n@x", "primary": True}]}
            ]
        },
    )
    assert [e.get("primary") for e in patched["emails"]] == [False, False, True]
    assert USER["emails"][0]["primary"] is True  # the input is not changed


def test_patch_remove_filtered_values_and_the_extension() -> None:
    patched = apply_patch(
        USER,
        {
            "Operations": [
                {"op": "remove", "path": 'emails[type eq "home"]'},
                {"op": "remove", "path": ENTERPRISE},
            ]
        },
    )
    assert [e["value"] for e in patched["emails"]] == ["ann@example.com"]
    assert ENTERPRISE not in patched


def test_projection_keeps_id_and_schemas() -> None:
    body = {"schemas": ["s"], "id": "1", **USER}
    assert project(body, "emails.value", None) == {
        "schemas": ["s"],
        "id": "1",
        "emails": [{"value": "ann@example.com"}, {"value": "ann@home.example"}],
    }
    dropped = project(body, None, f"title,{ENTERPRISE}:department")
    assert "title" not in dropped and dropped[ENTERPRISE] == {"manager": {"value": "m-1"}}


def test_mapping_defaults_and_kept_values() -> None:
    values = kept_values(USER, ScimMapping())
    assert values == {
        "idp.active": True,
        "idp.title": "Engineer",
        "idp.email": "ann@example.com",
        "idp.department": "Sales",
        "idp.manager": "m-1",
    }
    mapping = parse_mapping({"uuid": "email", "attributes": {"title": "role"}})
    assert mapping.attributes == {"title": ("role", "string"), "active": ("idp.active", "boolean")}
    with pytest.raises(ConfigError) as caught:
        parse_mapping({"attributes": {"title": "idp.active"}})
    assert caught.value.field == "attributes"
