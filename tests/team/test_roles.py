"""The route table of domain/team/roles.py against template.yaml, and the API held to it.

Every route of the template has exactly one line in the table (a new route
cannot ship without a role), and every management route refuses, with 403,
each person whose role is below what it needs, and sessions where only the
secret key will do. Each role's own routes are let through.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from insights.domain.team.roles import RANK, ROUTES, allows
from insights.local.template import Template
from tests.team.helpers import Team

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = {"viewer": "vi@acme.com", "editor": "ed@acme.com", "admin": "ann@acme.com"}


def template_routes() -> set[str]:
    template = Template.load(ROOT / "template.yaml")
    return {
        f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}"
        for function in template.functions()
        for event in function.events.values()
        if event.get("Type") == "HttpApi"
    }


def test_every_route_of_the_template_has_a_role_and_nothing_more() -> None:
    routes = template_routes()
    assert routes - set(ROUTES) == set(), "routes without a line in domain/team/roles.py"
    assert set(ROUTES) - routes == set(), "lines in domain/team/roles.py for no route"


def test_the_roles_nest() -> None:
    assert allows("admin", "editor") and allows("editor", "viewer") and allows("viewer", "viewer")
    assert not allows("viewer", "editor") and not allows("editor", "admin")
    assert not allows("admin", "secret_key") and not allows("admin", "public")


def concrete(route: str) -> tuple[str, str]:
    method, path = route.split(" ", 1)
    return method, re.sub(r"\{[^}]+\}", "x%40acme.com" if "members" in path else "nope", path)


# Two end the sweep's own sessions: sign-out (any role's) and removing the
# provider (which ends every session); they are called last.
LAST = ["POST /v1/team/signout", "DELETE /v1/team/provider"]
MANAGEMENT = sorted(
    r for r, need in ROUTES.items() if (need in RANK or need == "secret_key") and r not in LAST
)


def test_each_role_can_call_exactly_its_routes(team: Team) -> None:
    sessions = {role: team.session(sub) for role, sub in SESSIONS.items()}
    refused: dict[str, list[str]] = {role: [] for role in SESSIONS}
    for route in MANAGEMENT:
        method, path = concrete(route)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        for role, session in sessions.items():
            answer = team.call(session, method, path, body)
            if answer.status == 403 and answer.json()["error"] in (
                "forbidden_role",
                "secret_key_only",
            ):
                refused[role].append(route)
            else:
                assert answer.status != 401, (role, route, answer.body)
    for role in SESSIONS:
        expected = [r for r in MANAGEMENT if not allows(role, ROUTES[r])]
        assert refused[role] == expected, role
    assert refused["admin"] == ["POST /v1/account/secret-key", "POST /v1/idp/saml/response"]
    for role in ("viewer", "editor"):
        gone = team.call(sessions[role], "DELETE", "/v1/team/provider")
        assert (gone.status, gone.json()["error"]) == (403, "forbidden_role")
    for role in ("viewer", "editor", "admin"):
        assert team.call(sessions[role], "POST", "/v1/team/signout").status == 200
    admin = team.session("ann@acme.com")
    assert team.call(admin, "DELETE", "/v1/team/provider").status == 204


@pytest.mark.parametrize(
    "route", ["GET /v1/audit", "DELETE /v1/users/{uuid}", "PUT /v1/segments/{id}"]
)
def test_the_secret_key_acts_as_admin(team: Team, route: str) -> None:
    method, path = concrete(route)
    answer = team.admin(method, path, {} if method == "PUT" else None)
    assert answer.status not in (401, 403), answer.body
