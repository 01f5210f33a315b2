"""The audit log: who, role, what, when, from which network, result; 90 days; admins only."""

from __future__ import annotations

from insights.domain.team.audit import RETENTION_DAYS
from tests.team.helpers import Team

RULES = {"attribute": "custom.plan", "op": "equals", "value": "VIP"}


def test_management_actions_are_recorded_and_paged(team: Team) -> None:
    team.stack.advance(1)  # the clock is frozen: one step per entry, for their order
    editor = team.session("ed@acme.com")
    team.stack.advance(1)
    viewer = team.session("vi@acme.com")
    team.stack.advance(1)
    made = team.call(editor, "POST", "/v1/segments", {"name": "VIP", "rules": RULES})
    segment = made.json()["id"]
    team.stack.advance(1)
    team.call(editor, "POST", "/v1/segments/preview", {"rules": RULES})  # a read: not recorded
    team.call(editor, "GET", "/v1/segments")  # a read: not recorded
    refused = team.call(viewer, "DELETE", f"/v1/segments/{segment}")
    assert refused.status == 403
    team.stack.advance(1)
    team.admin("PATCH", "/v1/account", {"backfill_days": 30})
    page = team.admin("GET", "/v1/audit?limit=3").json()
    assert page["retention_days"] == RETENTION_DAYS >= 90
    rows = [(e["actor"], e["role"], e["action"], e["status"]) for e in page["entries"]]
    assert rows == [
        ("secret key", "admin", "PATCH /v1/account", 200),
        ("vi@acme.com", "viewer", "DELETE /v1/segments/{id}", 403),
        ("ed@acme.com", "editor", "POST /v1/segments", 201),
    ]
    newest = page["entries"][0]
    assert newest["via"] == "secret_key" and newest["path"] == "/v1/account"
    assert page["entries"][1]["path"] == f"/v1/segments/{segment}"
    rest = team.admin("GET", f"/v1/audit?limit=3&cursor={page['next_cursor']}").json()
    assert [e["action"] for e in rest["entries"]] == ["sign_in", "sign_in", "PUT /v1/team/provider"]
    assert rest["next_cursor"] is None
    signed = rest["entries"][0]
    assert (signed["actor"], signed["role"], signed["status"]) == ("vi@acme.com", "viewer", 200)
    assert signed["network"] == "81.2.69.0/24" and signed["via"] == "sign_in"
    assert "81.2.69.160" not in str(page) + str(rest)


def test_entries_older_than_the_retention_are_gone_before_ttl(team: Team) -> None:
    assert len(team.admin("GET", "/v1/audit").json()["entries"]) == 1  # the provider's PUT
    team.stack.advance((RETENTION_DAYS + 1) * 86400)
    assert team.admin("GET", "/v1/audit").json()["entries"] == []


def test_only_admins_read_it(team: Team) -> None:
    editor = team.session("ed@acme.com")
    assert team.call(editor, "GET", "/v1/audit").status == 403
    admin = team.session("ann@acme.com")
    assert team.call(admin, "GET", "/v1/audit").status == 200
    bad = team.call(admin, "GET", "/v1/audit?limit=500")
    assert (bad.status, bad.json()["field"]) == (400, "limit")
    forged = team.call(admin, "GET", "/v1/audit?cursor=Zm9v")
    assert (forged.status, forged.json()["field"]) == (400, "cursor")
