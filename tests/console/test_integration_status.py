"""The integrations' status routes: 200 whether or not the integration is set up.

`GET /v1/integrations/salesforce` and `GET /v1/idp/oidc/config` answer 404
while nothing is configured, which a browser logs as an error on every visit
to the console's Settings; the status routes say the same as a normal state.
"""

from __future__ import annotations

from tests.conftest import Stack

OIDC = {"issuer": "https://idp.example.com", "audience": "app", "claims": {"dept": "dept"}}


def test_oidc_status_says_whether_an_issuer_is_registered(stack: Stack) -> None:
    acme = stack.account()
    answer = stack.cloud.http("GET", "/v1/idp/oidc/status", headers=stack.auth(acme))
    assert (answer.status, answer.json()) == (200, {"configured": False})
    put = stack.cloud.http("PUT", "/v1/idp/oidc/config", headers=stack.auth(acme), body=OIDC)
    assert put.status == 200
    answer = stack.cloud.http("GET", "/v1/idp/oidc/status", headers=stack.auth(acme))
    assert (answer.status, answer.json()) == (200, {"configured": True, "config": put.json()})
    other = stack.account("Other")  # scoped by the key's account
    answer = stack.cloud.http("GET", "/v1/idp/oidc/status", headers=stack.auth(other))
    assert answer.json() == {"configured": False}
    write_key = {"Authorization": f"Bearer {acme.write_key}"}
    assert stack.cloud.http("GET", "/v1/idp/oidc/status", headers=write_key).status == 403


def test_salesforce_status_says_whether_it_is_connected(stack: Stack) -> None:
    acme = stack.account()
    path = "/v1/integrations/salesforce"
    answer = stack.cloud.http("GET", path + "/status", headers=stack.auth(acme))
    assert (answer.status, answer.json()) == (200, {"configured": False})
    connection = {
        "login_host": "https://acme.my.salesforce.com",
        "credentials": {
            "flow": "client_credentials",
            "consumer_key": "k",
            "consumer_secret": "hunter2-secret",
        },
        "object": "Contact",
        "uuid_field": "External_Id__c",
        "fields": ["Title"],
    }
    assert stack.cloud.http("PUT", path, headers=stack.auth(acme), body=connection).status == 201
    read = stack.cloud.http("GET", path, headers=stack.auth(acme)).json()
    answer = stack.cloud.http("GET", path + "/status", headers=stack.auth(acme))
    assert (answer.status, answer.json()) == (200, {"configured": True, "connection": read})
    assert "hunter2-secret" not in answer.body  # never the credentials
    write_key = {"Authorization": f"Bearer {acme.write_key}"}
    assert stack.cloud.http("GET", path + "/status", headers=write_key).status == 403
    stack.cloud.http("DELETE", path, headers=stack.auth(acme))
    answer = stack.cloud.http("GET", path + "/status", headers=stack.auth(acme))
    assert answer.json() == {"configured": False}
