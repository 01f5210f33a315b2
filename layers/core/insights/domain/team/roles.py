"""Who may call which route: one table from every HTTP route to what it needs.

People sign in to the console through the account's OIDC provider and hold
one role; machines hold keys. A route needs one of:

- a **role** (``viewer`` < ``editor`` < ``admin``): a console session with
  that role or a higher one, or the account's secret key, which acts as
  admin;
- ``secret_key``: the secret key only (a backend forwarding SAML Responses;
  rotating the secret key, which a session cannot name to replace);
- ``write_key``: the tracking doors and the SDK (the write key is public);
- ``scim_token``: the IdP's SCIM client;
- ``public``: no credential (the console's files, the API description, the
  sign-in redirects, "who am I").

``tests/team/test_roles.py`` holds this table against every route of
template.yaml, both ways: a new route cannot ship without a line here, and
``insights.http`` refuses a management route that has none (fail closed).
The role check itself happens in one place, ``insights.http.bearer_account``,
which every management route calls first.
"""

from __future__ import annotations

import re
from typing import Literal

Role = Literal["viewer", "editor", "admin"]
Need = Literal["viewer", "editor", "admin", "secret_key", "write_key", "scim_token", "public"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
RANK: dict[str, int] = {"viewer": 1, "editor": 2, "admin": 3}
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

V: Need = "viewer"
E: Need = "editor"
A: Need = "admin"

# Method and path exactly as template.yaml's HttpApi events write them.
ROUTES: dict[str, Need] = {
    # tracking and the SDK (docs/api.md, docs/segment-api.md, docs/sdk.md)
    "POST /v1/events": "write_key",
    **{f"POST /v1/{p}": "write_key" for p in ("batch", "identify", "track", "page", "screen")},
    **{f"POST /v1/{p}": "write_key" for p in ("alias", "group", "b", "i", "t", "p", "s", "a", "g")},
    "GET /v1/sdk/insights.js": "public",
    "HEAD /v1/sdk/insights.js": "public",
    "GET /v1/sdk/segments": "write_key",
    "POST /v1/idp/oidc/token": "write_key",  # the app's ID token (write or secret key)
    "ANY /scim/v2/{proxy+}": "scim_token",
    "POST /v1/idp/saml/response": "secret_key",  # a backend forwards what it received
    # public
    "GET /": "public",
    "GET /console/{version}/{file}": "public",
    "GET /v1/openapi.yaml": "public",
    "GET /v1/team/signin": "public",
    "GET /v1/team/callback": "public",
    "GET /v1/team/me": "public",  # answers "not signed in" rather than 401
    # viewer: read users, segments, imports, stats
    "GET /v1/account": V,
    "GET /v1/users": V,
    "GET /v1/users/{uuid}": V,
    "GET /v1/users/{uuid}/segments": V,
    "GET /v1/attributes": V,
    "GET /v1/stats": V,
    "GET /v1/segments": V,
    "GET /v1/segments/{id}": V,
    "GET /v1/segments/{id}/users": V,
    "GET /v1/segments/{id}/count": V,
    "POST /v1/segments/preview": V,  # a read: counts rules, saves nothing
    "GET /v1/imports": V,
    "GET /v1/imports/{id}": V,
    "GET /v1/exports/{id}": V,
    "POST /v1/team/signout": V,  # any signed-in person
    # editor: + segments, imports, integrations
    "POST /v1/segments": E,
    "PUT /v1/segments/{id}": E,
    "DELETE /v1/segments/{id}": E,
    "POST /v1/imports": E,
    "POST /v1/imports/{id}/cancel": E,
    "POST /v1/exports": E,  # writes every user of the account to the exports bucket
    "PUT /v1/integrations/salesforce": E,
    "GET /v1/integrations/salesforce": E,
    "GET /v1/integrations/salesforce/status": E,
    "DELETE /v1/integrations/salesforce": E,
    "POST /v1/integrations/salesforce/test": E,
    "POST /v1/integrations/salesforce/sync": E,
    "GET /v1/idp/scim/tokens": E,  # the list: names and hints, never a token
    "GET /v1/idp/scim/config": E,
    "GET /v1/idp/oidc/config": E,
    "GET /v1/idp/oidc/status": E,
    "GET /v1/idp/saml/config": E,
    # admin: + keys, identity verification, erasure, team, account settings
    "PATCH /v1/account": A,
    "DELETE /v1/users/{uuid}": A,
    "GET /v1/account/identity": A,
    "PATCH /v1/account/identity": A,
    "POST /v1/account/identity/secret": A,
    "POST /v1/account/secret-key": "secret_key",  # rotates the key presented
    "POST /v1/idp/scim/tokens": A,
    "DELETE /v1/idp/scim/tokens/{id}": A,
    "PUT /v1/idp/scim/config": A,
    "PUT /v1/idp/oidc/config": A,  # whose ID tokens prove a uuid: identity verification
    "PUT /v1/idp/saml/config": A,
    "GET /v1/team/provider": A,
    "PUT /v1/team/provider": A,
    "DELETE /v1/team/provider": A,
    "GET /v1/team/members": A,
    "PUT /v1/team/members/{email}": A,
    "DELETE /v1/team/members/{email}": A,
    "GET /v1/audit": A,
}
# Writes that change nothing are not audited (the rest of WRITES are).
NOT_AUDITED = frozenset({"POST /v1/segments/preview", "POST /v1/integrations/salesforce/test"})

_PARAM = re.compile(r"\{[^}]+\}|<[^>]+>")


def shape(route: str) -> str:
    """A route with its parameters unnamed: ``GET /v1/segments/{}`` for
    ``GET /v1/segments/{id}`` (template) and ``GET /v1/segments/<segment_id>`` (a handler)."""
    return _PARAM.sub("{}", route)


_BY_SHAPE: dict[str, Need] = {shape(route): need for route, need in ROUTES.items()}


def need_of(method: str, pattern: str) -> Need | None:
    """What a handler's route needs (its own pattern, any parameter names); None: not listed."""
    return _BY_SHAPE.get(shape(f"{method.upper()} {pattern}"))


def allows(role: str, need: str) -> bool:
    """Whether a person's role meets a route's need (only roles are held by people)."""
    return need in RANK and RANK.get(role, 0) >= RANK[need]


def audited(method: str, pattern: str) -> bool:
    """Every management write is audited; reads, and writes that change nothing, are not."""
    key = shape(f"{method.upper()} {pattern}")
    return method.upper() in WRITES and key not in {shape(r) for r in NOT_AUDITED}
