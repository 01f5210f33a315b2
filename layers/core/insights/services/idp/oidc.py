"""OIDC ID tokens: verified against the account's issuer, claims kept as attributes.

Verification (joserfc does the cryptography and the claim checks):

1. The header's ``alg`` must be in the account's list, which only holds
   asymmetric algorithms: never ``none``, never HS* (whose "secret" would be
   the public key anyone can fetch: algorithm confusion).
2. The key is the issuer's JWKS key with the header's ``kid``, the JWKS URL
   taken from the discovery document, whose ``issuer`` must be the
   registered one exactly; both are fetched through the one outbound fetcher
   (``insights.outbound``: https, no inner address, bounded, one error
   text whatever failed). Both are cached per container for an hour; an
   unknown ``kid`` (the IdP rotated its keys) refetches them once, at most
   once a minute per issuer, so a flood of made-up kids cannot make this
   function hammer the IdP.
3. The key's type must fit the algorithm (joserfc refuses an RSA key for
   ES256 and any public key as an HMAC secret), and the signature must hold.
4. ``iss`` equals the issuer, ``aud`` holds an accepted audience (and when
   it holds several, ``azp`` is an accepted one), ``exp`` and ``iat`` are
   present and hold with 60 s of leeway.

The claims are then written through the one attribute path, stamped with the
token's ``iat``: the time the IdP asserted them.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from insights import clock, outbound
from insights.domain.core.attributes import Rejection, Row
from insights.domain.core.identity import VerifiedIdentity
from insights.domain.core.sessions import Stamped
from insights.domain.idp.oidc import (
    ClaimError,
    OidcConfig,
    OidcConfigError,
    claim_values,
    parse_config,
    token_times,
)
from insights.services.core.attributes import NO_USER_RECORDS, write_attributes
from insights.storage.core.accounts import Account
from insights.storage.idp import items as idp_store

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

# joserfc (and cryptography under it) is imported on the first verification,
# not with the handler: 0.3x `import boto3` of CPU that the configuration
# routes never need. The first sign-in of a container pays it instead.

logger = Logger(child=True)

CONFIG_ITEM = "oidc"
LEEWAY_SECONDS = 60
CACHE_SECONDS = 3600.0
MIN_REFRESH_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 3.0
MAX_DOCUMENT_BYTES = 512 * 1024
MAX_TOKEN_CHARS = 16 * 1024
MAX_CACHED_ISSUERS = 256  # a warm container's key sets: bounded however often configs change
ISSUER_UNREACHABLE = "the issuer could not be reached or did not answer as an OIDC issuer"

_lock = threading.Lock()
# discovery URL -> (cached until, last refetch for an unknown kid or None, key set)
_keys: dict[str, tuple[float, float | None, KeySet]] = {}
# discovery URL -> (cached until, the document), for the console's sign-in
_documents: dict[str, tuple[float, dict[str, Any]]] = {}
MAX_DOCUMENTS = 256


class TokenRejected(Exception):
    """The ID token does not verify (401), or cannot be used (status given)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def get_config(account_id: str) -> OidcConfig | None:
    raw = idp_store.get_config(account_id, CONFIG_ITEM)
    return None if raw is None else parse_config(raw, stored=True)


def put_config(account_id: str, raw: Any) -> OidcConfig:
    config = parse_config(raw)
    # The outbound rules (no loopback when deployed, no inner address, not
    # the Lambda runtime API) refuse a URL now, naming the field, rather
    # than at the first sign-in.
    where = "discovery_url" if isinstance(raw, dict) and raw.get("discovery_url") else "issuer"
    try:
        outbound.check_url(config.discovery_url)
    except outbound.OutboundRefused as exc:
        raise OidcConfigError(where, str(exc)) from None
    idp_store.put_config(account_id, CONFIG_ITEM, config.as_dict(), clock.now_ms())
    return config


def _fetch_json(url: str) -> Any:
    """A JSON document from the issuer, through the one outbound fetcher.

    Every way this can fail (refused address, closed port, timeout, an
    answer that is not 200 JSON) gives the caller the same 502 text: the
    API must not tell a closed port from a wrong answer (it would be a port
    scanner). The precise reason goes to the operator's log.
    """
    try:
        answer = outbound.fetch(
            url,
            headers={"Accept": "application/json"},
            timeout=FETCH_TIMEOUT_SECONDS,
            max_bytes=MAX_DOCUMENT_BYTES,
        )
    except outbound.OutboundFailed as exc:
        raise _unreachable(exc.reason) from None
    if answer.status != 200:
        raise _unreachable(f"answered HTTP {answer.status}")
    try:
        return json.loads(answer.body)
    except ValueError:
        raise _unreachable("did not answer JSON") from None


def _unreachable(reason: str) -> TokenRejected:
    logger.warning("OIDC issuer fetch failed", extra={"reason": reason})
    return TokenRejected(ISSUER_UNREACHABLE, status=502)


def _fetch_keys(config: OidcConfig) -> KeySet:
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    discovery = _fetch_json(config.discovery_url)
    if not isinstance(discovery, dict) or discovery.get("issuer") != config.issuer:
        raise _unreachable("the discovery document's issuer is not the registered issuer")
    jwks = _fetch_json(discovery.get("jwks_uri") or "")
    try:
        return KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise _unreachable(f"the JWKS cannot be read: {type(exc).__name__}") from None


def discovery(config: OidcConfig) -> dict[str, Any]:
    """The issuer's discovery document (its endpoints), checked and cached as its keys are.

    The console's sign-in (services/team/signin.py) reads the authorization
    and token endpoints from it; ID tokens are verified with verify_id_token.
    """
    now = time.monotonic()
    with _lock:
        cached = _documents.get(config.discovery_url)
        if cached is not None and cached[0] > now:
            return cached[1]
    document = _fetch_json(config.discovery_url)
    if not isinstance(document, dict) or document.get("issuer") != config.issuer:
        raise _unreachable("the discovery document's issuer is not the registered issuer")
    with _lock:
        if len(_documents) >= MAX_DOCUMENTS:
            _documents.clear()
        _documents[config.discovery_url] = (now + CACHE_SECONDS, document)
    return document


def _key_set(config: OidcConfig, kid: str | None) -> KeySet:
    now = time.monotonic()
    with _lock:
        cached = _keys.get(config.discovery_url)
        missed: float | None = None
        if cached is not None and cached[0] > now:
            _until, last_miss, keys = cached
            if _has_kid(keys, kid):
                return keys
            if last_miss is not None and now - last_miss < MIN_REFRESH_SECONDS:
                return keys  # refetched for a missing kid a moment ago: unknown, not new
            missed = now
        keys = _fetch_keys(config)
        if config.discovery_url not in _keys and len(_keys) >= MAX_CACHED_ISSUERS:
            _keys.clear()
        _keys[config.discovery_url] = (now + CACHE_SECONDS, missed, keys)
        return keys


def _has_kid(keys: KeySet, kid: str | None) -> bool:
    if kid is None:
        return True
    return any(key.kid == kid for key in keys)


def verify_id_token(config: OidcConfig, token: Any) -> dict[str, Any]:
    """The claims of a valid ID token for this config; TokenRejected otherwise."""
    from joserfc import jws, jwt
    from joserfc.errors import JoseError

    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected(f"id_token must be a compact JWT of at most {MAX_TOKEN_CHARS} chars")
    try:
        header = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError) as exc:
        raise TokenRejected(f"id_token is not a JWT: {exc}") from None
    alg = header.get("alg")
    if alg not in config.algorithms:
        raise TokenRejected(
            f"alg {alg!r} is not accepted; the account accepts {', '.join(config.algorithms)}"
        )
    kid = header.get("kid")
    keys = _key_set(config, kid if isinstance(kid, str) else None)
    if not _has_kid(keys, kid if isinstance(kid, str) else None):
        raise TokenRejected(f"no key with kid {kid!r} in the issuer's JWKS")
    try:
        decoded = jwt.decode(token, keys, algorithms=[alg])
        jwt.JWTClaimsRegistry(
            now=clock.now_ms() // 1000,
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "values": list(config.audiences)},
            exp={"essential": True},
            iat={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise TokenRejected(f"id_token rejected: {exc}") from None
    claims = decoded.claims
    audiences = claims.get("aud")
    several = isinstance(audiences, list) and len(audiences) > 1
    # A token for several clients was issued to its azp: another client of the
    # same IdP must not replay one that merely lists ours.
    if several and claims.get("azp") not in config.audiences:
        raise TokenRejected("azp is not an accepted client (OIDC Core 3.1.3.7)")
    return claims


def sign_in(account: Account, token: Any) -> tuple[VerifiedIdentity, list[str], list[Rejection]]:
    """Verify an ID token and keep its configured claims.

    Returns (identity, attributes written, attributes the per-user caps
    refused: each alone, the others are written).
    """
    if not account.settings.unique_user_ids:
        raise TokenRejected(NO_USER_RECORDS, status=403)
    config = get_config(account.account_id)
    if config is None:
        raise TokenRejected("this account has registered no OIDC issuer", status=409)
    claims = verify_id_token(config, token)
    try:
        issued_s, expires_s = token_times(claims)
        uuid, values = claim_values(claims, config)
    except ClaimError as exc:
        raise TokenRejected(str(exc), status=400) from None
    issued_ms = min(issued_s * 1000, clock.now_ms())  # within the leeway
    identity = VerifiedIdentity(uuid, "oidc", config.issuer, issued_s, expires_s)
    refused: list[Rejection] = []
    if values:
        stamped = {name: Stamped(value, issued_ms) for name, value in values.items()}
        refused = write_attributes(account, [Row(0, uuid, stamped)], "idp", atomic=False).refused
    kept = sorted(set(values) - {r.column for r in refused})
    return identity, kept, refused
