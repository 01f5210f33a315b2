"""The team's pure parts: PKCE, cookies, networks, the provider's rules, admission, audit pages."""

from __future__ import annotations

import pytest

from insights.domain.team import flow
from insights.domain.team.audit import AuditQueryError, cursor_for, parse_page
from insights.domain.team.provider import ProviderError, Refused, admit, parse_provider

BASE = {
    "issuer": "https://acme.okta.com/oauth2/default",
    "client_id": "0oa1",
    "redirect_uri": "https://api.example.com/v1/team/callback",
    "allowed_domains": ["Acme.com"],
}


def test_pkce_s256_is_rfc_7636s_example() -> None:
    # RFC 7636, appendix B
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert flow.challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_authorization_url_carries_the_challenge_never_the_verifier() -> None:
    started = flow.Flow.new()
    url = flow.authorization_url(
        "https://idp/authorize?tenant=x", "c", "https://a/v1/team/callback", ("openid",), started
    )
    assert url.startswith("https://idp/authorize?tenant=x&response_type=code&")
    assert started.verifier not in url and flow.challenge(started.verifier) in url
    assert "code_challenge_method=S256" in url and started.nonce in url and started.state in url
    form = flow.token_form("the-code", "https://a/v1/team/callback", "c", started.verifier)
    assert form["code_verifier"] == started.verifier and form["grant_type"] == "authorization_code"
    assert len({started.state, started.nonce, started.verifier}) == 3  # each its own 256 bits


def test_a_provider_that_lists_pkce_methods_must_list_s256() -> None:
    assert flow.supports_s256({})
    assert flow.supports_s256({"code_challenge_methods_supported": ["plain", "S256"]})
    assert not flow.supports_s256({"code_challenge_methods_supported": ["plain"]})


def test_cookies() -> None:
    secure = flow.session_cookie("acc.tok", 900, secure=True)
    assert secure.startswith("__Host-insights_session=acc.tok; Path=/; Max-Age=900; HttpOnly")
    assert secure.endswith("Secure; SameSite=Strict") and "Domain" not in secure
    local = flow.session_cookie("acc.tok", 900, secure=False)
    assert local.startswith("insights_session=") and "Secure" not in local
    assert flow.parse_cookies(["a=1; b=2", "c=3"]) == {"a": "1", "b": "2", "c": "3"}
    assert flow.split_session_value("acc_1." + "x" * 43) == ("acc_1", "x" * 43)
    assert flow.split_session_value("acc_1.short") is None


def test_only_fixed_error_pages() -> None:
    assert flow.signin_error("domain_not_allowed") == "/#/signin-error/domain_not_allowed"
    assert flow.signin_error("https://evil.example") == "/#/signin-error/idp_error"


def test_networks_keep_no_address() -> None:
    assert flow.network("81.2.69.160") == "81.2.69.0/24"
    assert flow.network("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert flow.network("nonsense") is None and flow.network(None) is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"redirect_uri": "https://api.example.com/v1/team/callback?next=/"}, "redirect_uri"),
        ({"redirect_uri": "https://api.example.com/elsewhere"}, "redirect_uri"),
        ({"redirect_uri": "http://api.example.com/v1/team/callback"}, "redirect_uri"),
        ({"issuer": "http://acme.okta.com"}, "issuer"),
        ({"client_id": ""}, "client_id"),
        ({"allowed_domains": [], "default_role": "viewer"}, "default_role"),
        (
            {
                "allowed_domains": [],
                "group_claim": "groups",
                "role_groups": {"admin": ["it"]},
                "default_role": "viewer",
            },
            "default_role",
        ),
        ({"allowed_domains": ["@acme.com"]}, "allowed_domains"),
        ({"role_groups": {"admin": ["a"]}}, "group_claim"),
        ({"role_groups": {"owner": ["a"]}, "group_claim": "groups"}, "role_groups"),
        ({"session_minutes": 5}, "session_minutes"),
        ({"scopes": ["email"]}, "scopes"),
        ({"algorithms": ["HS256"]}, "algorithms"),
        ({"shoe_size": 44}, "shoe_size"),
    ],
)
def test_bad_provider_fields_are_named(change: dict, field: str) -> None:
    with pytest.raises(ProviderError) as refused:
        parse_provider({**BASE, **change}, has_secret=False)
    assert refused.value.field == field


def test_a_provider_is_stored_without_its_secret() -> None:
    provider = parse_provider({**BASE, "client_secret": "s3cr3t"}, has_secret=False)
    assert provider.has_secret and "s3cr3t" not in str(provider.as_dict())
    assert provider.allowed_domains == ("acme.com",) and provider.secure
    assert parse_provider(provider.as_dict(), has_secret=True) == provider


def test_admission() -> None:
    provider = parse_provider(
        {
            **BASE,
            "group_claim": "groups",
            "role_groups": {"editor": ["growth"], "admin": ["it"]},
            "default_role": "viewer",
        },
        has_secret=False,
    )
    person = admit({"email": "Ann@Acme.com", "groups": ["growth", "it"]}, provider, None)
    assert (person.email, person.role, person.role_from) == ("ann@acme.com", "admin", "group")
    assert admit({"email": "b@acme.com"}, provider, None).role == "viewer"
    assert admit({"email": "b@acme.com", "groups": "it"}, provider, "viewer").role == "viewer"
    for claims, code in [
        ({"email": "m@evil.example", "groups": ["it"]}, "domain_not_allowed"),
        ({"email": "b@acme.com", "email_verified": False}, "email_not_verified"),
        ({"sub": "x"}, "no_email"),
    ]:
        with pytest.raises(Refused) as refused:
            admit(claims, provider, None)
        assert refused.value.code == code
    strict = parse_provider({**BASE, "allowed_domains": ["acme.com"]}, has_secret=False)
    with pytest.raises(Refused) as refused:
        admit({"email": "b@acme.com"}, strict, None)
    assert refused.value.code == "no_role"


def test_audit_pages() -> None:
    assert parse_page(None, None) == (50, None)
    key = "1795867200000#0a1b2c3d"
    assert parse_page("10", cursor_for(key)) == (10, key)
    for limit, cursor, field in [
        ("0", None, "limit"),
        ("x", None, "limit"),
        # str.isdigit() holds for these, and int() raised ValueError (a 500).
        ("²", None, "limit"),
        ("1" * 5000, None, "limit"),
        (None, "zz", "cursor"),
    ]:
        with pytest.raises(AuditQueryError) as refused:
            parse_page(limit, cursor)
        assert refused.value.field == field


def test_the_local_idp_command_configures_what_the_stack_accepts() -> None:
    from insights.cli.team import PEOPLE, provider_config

    config = provider_config("http://localhost:9400", "client", "secret", "http://127.0.0.1:3000")
    provider = parse_provider(config, has_secret=False)
    roles = {
        sub: admit({"email": sub, **person}, provider, None).role
        for sub, person in PEOPLE.items()
        if sub.endswith("@example.com")
    }
    assert roles == {
        "admin@example.com": "admin",
        "editor@example.com": "editor",
        "viewer@example.com": "viewer",
    }
    outsider = {"email": "outsider@elsewhere.example", "groups": ["insights-admins"]}
    with pytest.raises(Refused):
        admit(outsider, provider, None)
