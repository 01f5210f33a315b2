"""OIDC sign-in claims, the pure part: an account's issuer registration and claim mapping.

{"issuer": "https://login.example.com/oauth2/default",
 "audience": "0oa1b2c3d4",                 # or a list: the app's client id(s)
 "uuid_claim": "email",                    # default "sub"
 "claims": {"department": "department",    # claim -> attribute name (string)
            "hire_date": {"name": "hired", "type": "date"}},
 "algorithms": ["RS256"],                  # default: RS*, PS*, ES*, EdDSA
 "discovery_url": "..."}                   # default: <issuer>/.well-known/openid-configuration
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from insights.domain.core.admission import (
    Scalar,
    ValueType,
    idp_value,
    parse_target,
    shared_target,
    uuid_problem,
)

# Asymmetric only: an HS* token would be checked with a secret the issuer
# publishes, i.e. the public key (algorithm confusion), and "none" is unsigned.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
FIELDS = frozenset({"issuer", "audience", "uuid_claim", "claims", "algorithms", "discovery_url"})
MAX_CLAIMS = 50
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class OidcConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audiences: tuple[str, ...]
    uuid_claim: str = "sub"
    claims: dict[str, tuple[str, ValueType]] = field(default_factory=dict)
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS
    discovery_url: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "audience": list(self.audiences),
            "uuid_claim": self.uuid_claim,
            "claims": {c: {"name": n, "type": t} for c, (n, t) in self.claims.items()},
            "algorithms": list(self.algorithms),
            "discovery_url": self.discovery_url,
        }


def check_url(url: Any, where: str) -> str:
    """https, or http to this machine only (a test IdP): tokens are only as good as the keys."""
    if not isinstance(url, str) or not url:
        raise OidcConfigError(where, "must be a URL")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise OidcConfigError(where, "is not a URL") from None
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return url
    raise OidcConfigError(where, "must be an https URL")


def parse_config(raw: Any, *, stored: bool = False) -> OidcConfig:
    """A registration from a PUT body, or (`stored`) as it was saved: a rule added
    since (claims kept under one name) does not make a saved one unreadable."""
    if not isinstance(raw, dict):
        raise OidcConfigError("body", "send an object with issuer, audience and claims")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise OidcConfigError(unknown[0], f"unknown field; known: {', '.join(sorted(FIELDS))}")
    issuer = check_url(raw.get("issuer"), "issuer")
    audience = raw.get("audience")
    audiences = tuple(audience) if isinstance(audience, list) else (audience,)
    if not audiences or not all(isinstance(a, str) and a for a in audiences):
        raise OidcConfigError("audience", "must be the app's client id (or a list of them)")
    uuid_claim = raw.get("uuid_claim", "sub")
    if not isinstance(uuid_claim, str) or not uuid_claim:
        raise OidcConfigError("uuid_claim", "must be a claim name, e.g. sub or email")
    claims: dict[str, tuple[str, ValueType]] = {}
    given = raw.get("claims") or {}
    if not isinstance(given, dict) or len(given) > MAX_CLAIMS:
        raise OidcConfigError("claims", f"must be an object of at most {MAX_CLAIMS} claims")
    for claim, target in given.items():
        try:
            claims[claim] = parse_target(target)
        except ValueError as exc:
            raise OidcConfigError(f"claims[{claim!r}]", str(exc)) from None
    shared = None if stored else shared_target(claims)
    if shared is not None:
        raise OidcConfigError("claims", shared)
    return OidcConfig(
        issuer=issuer,
        audiences=audiences,
        uuid_claim=uuid_claim,
        claims=claims,
        algorithms=parse_algorithms(raw),
        discovery_url=discovery_url(raw, issuer),
    )


def parse_algorithms(raw: dict[str, Any]) -> tuple[str, ...]:
    """The accepted signature algorithms (asymmetric only); every one by default."""
    algorithms = raw.get("algorithms", list(ALLOWED_ALGORITHMS))
    if (
        not isinstance(algorithms, list)
        or not algorithms
        or any(a not in ALLOWED_ALGORITHMS for a in algorithms)
    ):
        raise OidcConfigError(
            "algorithms", f"must be a list from {', '.join(ALLOWED_ALGORITHMS)} (never none or HS*)"
        )
    return tuple(algorithms)


def discovery_url(raw: dict[str, Any], issuer: str) -> str:
    """The discovery document's URL: given, or the issuer's well-known one."""
    url = raw.get("discovery_url") or issuer.rstrip("/") + "/.well-known/openid-configuration"
    return check_url(url, "discovery_url")


class ClaimError(ValueError):
    """A verified token whose claims cannot be used (no uuid, a value of the wrong type)."""


# Epoch seconds a token's times may hold: JSON lets an IdP (or a key holder) sign
# -1e300, NaN or 1e400, which the claim checks' comparisons let through.
MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


def token_times(claims: dict[str, Any]) -> tuple[int, int]:
    """(iat, exp) of a verified token, whole epoch seconds, or ClaimError."""
    times = []
    for name in ("iat", "exp"):
        value = claims.get(name)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not 0 <= value <= MAX_EPOCH_SECONDS  # NaN fails too
        ):
            raise ClaimError(f"claim {name} is not a time (epoch seconds, 0 to 253402300799)")
        times.append(int(value))
    return times[0], times[1]


def email_verified(flag: Any) -> bool:
    """Whether a token's email_verified claim lets its email stand for the person.

    A boolean, or (Apple, Azure AD, others) the string "true"/"false". An
    absent or null claim says nothing (it is optional); any other value is
    not a yes."""
    if flag is None or flag is True:
        return True
    return isinstance(flag, str) and flag.strip().lower() == "true"


def claim_values(claims: dict[str, Any], config: OidcConfig) -> tuple[str, dict[str, Scalar]]:
    """(uuid, attribute name -> typed value) from a verified token's claims."""
    uuid = claims.get(config.uuid_claim)
    if not isinstance(uuid, str | int) or isinstance(uuid, bool) or str(uuid) == "":
        raise ClaimError(f"the token has no {config.uuid_claim} claim to take the uuid from")
    if config.uuid_claim == "email" and not email_verified(claims.get("email_verified")):
        # The identity would say this browser may act as that uuid: an email the IdP
        # let someone set without proving it is no proof.
        raise ClaimError("the IdP says the email is not verified: it cannot be the uuid")
    problem = uuid_problem(str(uuid))  # the rules every uuid follows (1-256 characters)
    if problem is not None:
        raise ClaimError(f"claim {config.uuid_claim} cannot be the uuid: {problem}")
    out: dict[str, Scalar] = {}
    for claim, (name, kind) in config.claims.items():
        value = claims.get(claim)
        if value is None:
            continue
        try:
            out[name] = idp_value(value, kind)
        except ValueError as exc:
            raise ClaimError(f"claim {claim}: {exc} (kept as {name}, type {kind})") from None
    return str(uuid), out
