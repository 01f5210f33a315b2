"""An account's console sign-in provider: its configuration, and who it lets in with which role.

{"issuer": "https://acme.okta.com/oauth2/default",
 "client_id": "0oa1b2c3",
 "client_secret": "...",                 # optional, write-only: kept in Secrets Manager
 "redirect_uri": "https://<api>/v1/team/callback",   # exactly as registered at the IdP
 "allowed_domains": ["acme.com"],        # the verified email's domain must be one of them
 "group_claim": "groups",                # where the ID token lists the person's groups
 "role_groups": {"admin": ["insights-admins"], "editor": ["growth"]},
 "default_role": "viewer",               # for admitted people no group or assignment names
 "session_minutes": 240, "scopes": ["openid", "email", "profile"],
 "email_claim": "email", "algorithms": [...], "discovery_url": "..."}

Admission (``admit``): the ID token is already verified (signature, issuer,
audience, times, nonce). The email comes from ``email_claim`` and must not
be marked unverified (``email_verified`` false, or "false" as some IdPs send
it); its domain must be in ``allowed_domains`` when that list is set; the
role is the one assigned in the console, else the highest role a group maps
to, else ``default_role``; no role, no entry. A configuration that would
admit anyone the IdP knows (a default role without allowed_domains: group
mappings do not narrow it, since it is for everyone no group names) is
refused: an issuer such as Google's signs in every Google account in the world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from insights.domain.idp.oidc import (
    ALLOWED_ALGORITHMS,
    OidcConfig,
    OidcConfigError,
    check_url,
    discovery_url,
    email_verified,
    parse_algorithms,
)
from insights.domain.team.roles import RANK, ROLES, Role

CALLBACK_PATH = "/v1/team/callback"
FIELDS = frozenset(
    {
        "issuer",
        "client_id",
        "client_secret",
        "redirect_uri",
        "allowed_domains",
        "group_claim",
        "role_groups",
        "default_role",
        "session_minutes",
        "scopes",
        "email_claim",
        "algorithms",
        "discovery_url",
    }
)
DEFAULT_SCOPES = ("openid", "email", "profile")
SESSION_MINUTES = (15, 720)  # a quarter of an hour to a working day
DEFAULT_SESSION_MINUTES = 240
MAX_LIST = 50
MAX_NAME = 256


class ProviderError(OidcConfigError):
    """A bad field of the provider configuration (400 invalid_team_provider)."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    redirect_uri: str
    has_secret: bool = False
    allowed_domains: tuple[str, ...] = ()
    group_claim: str | None = None
    role_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default_role: Role | None = None
    session_minutes: int = DEFAULT_SESSION_MINUTES
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    email_claim: str = "email"
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS
    discovery_url: str = ""

    @property
    def secure(self) -> bool:
        """Cookies get Secure (and the __Host- prefix) unless the stack is local http."""
        return self.redirect_uri.startswith("https://")

    @property
    def origin(self) -> str:
        parts = urlsplit(self.redirect_uri)
        return f"{parts.scheme}://{parts.netloc}"

    def oidc(self) -> OidcConfig:
        """What the ID-token verifier of services/idp/oidc.py checks against."""
        return OidcConfig(
            issuer=self.issuer,
            audiences=(self.client_id,),
            algorithms=self.algorithms,
            discovery_url=self.discovery_url,
        )

    def as_dict(self) -> dict[str, Any]:
        """What is stored and shown: never the client secret, only whether there is one."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "has_client_secret": self.has_secret,
            "redirect_uri": self.redirect_uri,
            "allowed_domains": list(self.allowed_domains),
            "group_claim": self.group_claim,
            "role_groups": {role: list(groups) for role, groups in self.role_groups.items()},
            "default_role": self.default_role,
            "session_minutes": self.session_minutes,
            "scopes": list(self.scopes),
            "email_claim": self.email_claim,
            "algorithms": list(self.algorithms),
            "discovery_url": self.discovery_url,
        }


def _strings(raw: Any, where: str, *, lower: bool = False) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_LIST:
        raise ProviderError(where, f"must be a list of at most {MAX_LIST} strings")
    out = []
    for item in raw:
        if not isinstance(item, str) or not 0 < len(item) <= MAX_NAME or item.strip() != item:
            raise ProviderError(where, f"holds {item!r}: each must be 1-{MAX_NAME} characters")
        out.append(item.lower() if lower else item)
    return tuple(dict.fromkeys(out))


def _name(raw: Any, where: str, default: str | None = None) -> str | None:
    if raw is None:
        return default
    if not isinstance(raw, str) or not 0 < len(raw) <= MAX_NAME:
        raise ProviderError(where, f"must be a string of 1-{MAX_NAME} characters")
    return raw


def _url(raw: Any, where: str) -> str:
    try:
        return check_url(raw, where)
    except OidcConfigError as exc:
        raise ProviderError(exc.field, exc.message) from None


def check_redirect_uri(raw: Any) -> str:
    """``<this stack's origin>/v1/team/callback`` exactly: https, or http to this machine."""
    uri = _url(raw, "redirect_uri")
    parts = urlsplit(uri)
    if parts.path != CALLBACK_PATH or parts.query or parts.fragment or parts.username:
        raise ProviderError(
            "redirect_uri", f"must be this stack's origin followed by {CALLBACK_PATH}, nothing else"
        )
    return uri


def parse_provider(raw: Any, *, has_secret: bool, stored: bool = False) -> Provider:
    """A provider from a PUT body (or a stored one); ProviderError names the bad field.

    `stored`: read back as it was saved, so a rule added since (a default role
    needs allowed_domains) does not hide it from the Team page or block its
    replacement; admit() holds the rule for sign-ins."""
    if not isinstance(raw, dict):
        raise ProviderError("body", "send an object with issuer, client_id and redirect_uri")
    unknown = sorted(set(raw) - FIELDS - {"has_client_secret"})
    if unknown:
        raise ProviderError(unknown[0], f"unknown field; known: {', '.join(sorted(FIELDS))}")
    issuer = _url(raw.get("issuer"), "issuer")
    client_id = _name(raw.get("client_id"), "client_id")
    if client_id is None:
        raise ProviderError("client_id", "is required: the client id of the app at the IdP")
    secret = raw.get("client_secret")
    if secret is not None and (not isinstance(secret, str) or not 0 < len(secret) <= 1024):
        raise ProviderError("client_secret", "must be a string of 1-1024 characters, or absent")
    domains = _strings(raw.get("allowed_domains"), "allowed_domains", lower=True)
    for domain in domains:
        if "@" in domain or "." not in domain or "/" in domain:
            raise ProviderError("allowed_domains", f"{domain!r} is not a domain like acme.com")
    role_groups = _role_groups(raw.get("role_groups"))
    group_claim = _name(raw.get("group_claim"), "group_claim")
    if role_groups and group_claim is None:
        raise ProviderError("group_claim", "is required with role_groups: the claim to read")
    default_role = raw.get("default_role")
    if default_role is not None and default_role not in ROLES:
        raise ProviderError("default_role", f"must be one of {', '.join(ROLES)}, or null")
    if default_role is not None and not domains and not stored:
        # role_groups do not narrow it: the default role is for everyone no group names.
        raise ProviderError(
            "default_role",
            "would let in anyone the IdP signs in: set allowed_domains too (or use "
            "role_groups without a default role)",
        )
    minutes = raw.get("session_minutes", DEFAULT_SESSION_MINUTES)
    low, high = SESSION_MINUTES
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not low <= minutes <= high:
        raise ProviderError("session_minutes", f"must be a whole number from {low} to {high}")
    scopes = _strings(raw.get("scopes"), "scopes") or DEFAULT_SCOPES
    if "openid" not in scopes:
        raise ProviderError("scopes", "must include openid")
    try:
        algorithms, discovery = parse_algorithms(raw), discovery_url(raw, issuer)
    except OidcConfigError as exc:
        raise ProviderError(exc.field, exc.message) from None
    return Provider(
        issuer=issuer,
        client_id=client_id,
        redirect_uri=check_redirect_uri(raw.get("redirect_uri")),
        has_secret=has_secret or secret is not None,
        allowed_domains=domains,
        group_claim=group_claim,
        role_groups=role_groups,
        default_role=default_role,
        session_minutes=minutes,
        scopes=scopes,
        email_claim=_name(raw.get("email_claim"), "email_claim", "email") or "email",
        algorithms=algorithms,
        discovery_url=discovery,
    )


def _role_groups(raw: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProviderError("role_groups", 'must map roles to groups: {"admin": ["group"]}')
    out = {}
    for role, groups in raw.items():
        if role not in ROLES:
            raise ProviderError("role_groups", f"{role!r} is not a role ({', '.join(ROLES)})")
        out[role] = _strings(groups, f"role_groups.{role}")
    return {role: groups for role, groups in out.items() if groups}


# ------------------------------------------------------------------ admission
@dataclass(frozen=True)
class Person:
    email: str
    name: str | None
    role: Role
    role_from: str  # "assigned" | "group" | "default"


class Refused(Exception):
    """Signed in at the IdP, but not let into this account; ``code`` is shown, fixed wording."""

    def __init__(self, code: str, message: str, email: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.email = email


def email_of(claims: dict[str, Any], provider: Provider) -> str:
    email = claims.get(provider.email_claim)
    if not isinstance(email, str) or email.count("@") != 1 or len(email) > MAX_NAME:
        raise Refused("no_email", f"the ID token has no email in its {provider.email_claim} claim")
    if not email_verified(claims.get("email_verified")):
        raise Refused("email_not_verified", "the IdP says this email is not verified", email)
    return email.strip().lower()


def groups_of(claims: dict[str, Any], claim: str | None) -> set[str]:
    value = claims.get(claim) if claim else None
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {g for g in value if isinstance(g, str)}
    return set()


def admit(claims: dict[str, Any], provider: Provider, assigned: str | None) -> Person:
    """The person a verified ID token signs in, with a role; Refused otherwise."""
    email = email_of(claims, provider)
    domain = email.rpartition("@")[2]
    if provider.allowed_domains and domain not in provider.allowed_domains:
        raise Refused("domain_not_allowed", f"{domain} is not a domain of this account", email)
    name = claims.get("name")
    name = name[:MAX_NAME] if isinstance(name, str) and name else None
    if assigned in RANK:
        return Person(email, name, assigned, "assigned")  # type: ignore[arg-type]
    held = groups_of(claims, provider.group_claim)
    granted = [role for role, groups in provider.role_groups.items() if held & set(groups)]
    if granted:
        return Person(email, name, max(granted, key=RANK.__getitem__), "group")  # type: ignore[arg-type]
    if provider.default_role is not None and provider.allowed_domains:
        # Without domains it would admit everyone the IdP knows (parse_provider).
        return Person(email, name, provider.default_role, "default")
    raise Refused("no_role", "no role in this account: ask an admin for one", email)


def check_member_email(raw: str) -> str:
    email = raw.strip().lower()
    if email.count("@") != 1 or not 3 <= len(email) <= MAX_NAME or " " in email:
        raise ProviderError("email", "must be an email address")
    return email
