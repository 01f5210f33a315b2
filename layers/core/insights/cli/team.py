"""`insights team local-idp`: a real OpenID Connect provider on this machine for the console.

Starts oidc-provider-mock (the dev extra) with a registered client and four
people, points the running local stack's demo account at it (PUT
/v1/team/provider with the account's secret key) and prints the console's
sign-in link. The provider's own login page lists the people: one click signs
in as one. Ctrl-C stops it. docs/console.md, "Team", says how it fits.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
import urllib.error
import urllib.request
from typing import Any

from insights.local import state as local_state

PEOPLE = {
    "admin@example.com": {"name": "Ada Admin", "groups": ["insights-admins"]},
    "editor@example.com": {"name": "Eddie Editor", "groups": ["growth"]},
    "viewer@example.com": {"name": "Vera Viewer", "groups": []},
    "outsider@elsewhere.example": {"name": "Otto Outsider", "groups": ["insights-admins"]},
}


def _call(url: str, method: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"null")


def provider_config(issuer: str, client_id: str, secret: str, api_url: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uri": f"{api_url}/v1/team/callback",
        "allowed_domains": ["example.com"],
        "group_claim": "groups",
        "role_groups": {"admin": ["insights-admins"], "editor": ["growth"]},
        "default_role": "viewer",
        "session_minutes": 60,
    }


def _local_idp(args: argparse.Namespace) -> int:
    try:
        import oidc_provider_mock
    except ImportError:
        raise SystemExit(
            "error: oidc-provider-mock is not installed: `make install` (the dev extra)"
        ) from None
    running = local_state.require_running()
    api_url, account = running["api_url"], running.get("account") or {}
    if not account.get("secret_key"):
        raise SystemExit("error: the running stack has no demo account to configure")
    users = [
        oidc_provider_mock.User(sub=sub, claims={"email": sub, **c}) for sub, c in PEOPLE.items()
    ]
    with oidc_provider_mock.run_server_in_thread(
        args.port, require_client_registration=True, require_nonce=True, user_claims=users
    ) as server:
        issuer = f"http://localhost:{server.server_port}"
        redirect_uri = f"{api_url}/v1/team/callback"
        client = _call(
            f"{issuer}/oauth2/clients",
            "POST",
            {"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_basic"},
        )
        config = provider_config(issuer, client["client_id"], client["client_secret"], api_url)
        try:
            _call(
                f"{api_url}/v1/team/provider",
                "PUT",
                config,
                {"Authorization": f"Bearer {account['secret_key']}"},
            )
        except urllib.error.HTTPError as exc:
            raise SystemExit(
                f"error: the stack refused the provider: {exc.read().decode()}"
            ) from None
        print(f"OIDC provider (oidc-provider-mock) at {issuer}, client {client['client_id']}")
        print(
            f"Account {account['account_id']} signs in through it; open the console's sign-in link:"
        )
        print(f"  {api_url}/#/signin/{account['account_id']}")
        print("People on the provider's login page (one click each):")
        for sub, person in PEOPLE.items():
            print(f"  {sub:28} groups {person['groups']}")
        print("Ctrl-C stops it (sign-ins then fail until it runs again).", flush=True)
        signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nstopped")
    return 0


def _stop_like_ctrl_c(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def add_parser(commands: Any) -> None:
    team = commands.add_parser(
        "team", help="the console's team sign-in (docs/console.md, Team)"
    ).add_subparsers(dest="action", required=True)
    idp = team.add_parser(
        "local-idp",
        help="run an OIDC provider here and sign the local stack's console in through it",
    )
    idp.add_argument("--port", type=int, default=9400, help="the provider's port")
    idp.set_defaults(func=_local_idp)
