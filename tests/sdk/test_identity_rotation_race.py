"""Two rotations of the identity secret at once: one wins, the other is a 409 (issue 24.8).

Before, both answered 201: one returned secret never verified, and the
secret from before the race stayed valid as "previous" for 24 hours, so
"rotate twice" did not drop a leaked secret.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from typing import Any

import pytest

from insights.storage.core import identity as identity_store
from tests.conftest import Stack

PATH = "/v1/account/identity/secret"


def user_hash(secret: str, uuid: str) -> str:
    return hmac.new(secret.encode(), uuid.encode(), hashlib.sha256).hexdigest()


def verifies(stack: Stack, account: Any, secret: str) -> bool:
    answer = stack.cloud.http(
        "POST",
        "/v1/events",
        headers={"X-Insights-Key": account.write_key},
        body={"events": [{"uuid": "u-1", "user_hash": user_hash(secret, "u-1")}]},
    )
    assert answer.status == 200, answer.body
    return answer.json()["accepted"] == 1


def test_two_concurrent_rotations_one_wins_the_other_is_409(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = stack.account()
    leaked = stack.cloud.http("POST", PATH, headers=stack.auth(account)).json()["identity_secret"]
    on = {"verification": True}
    assert stack.cloud.http("PATCH", "/v1/account/identity", headers=stack.auth(account), body=on)
    # Both requests read the secret before either writes: the race, every time.
    both_read = threading.Barrier(2, timeout=10)
    real_load = identity_store.load

    def load(account_id: str, *, consistent: bool = False) -> Any:
        found = real_load(account_id, consistent=consistent)
        if consistent and threading.current_thread().name.startswith("rotation-"):
            both_read.wait()
        return found

    monkeypatch.setattr(identity_store, "load", load)
    answers: list[Any] = []

    def rotate() -> None:
        answers.append(stack.cloud.http("POST", PATH, headers=stack.auth(account)))

    threads = [threading.Thread(target=rotate, name=f"rotation-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    monkeypatch.setattr(identity_store, "load", real_load)

    assert sorted(a.status for a in answers) == [201, 409], [a.body for a in answers]
    won = next(a for a in answers if a.status == 201).json()["identity_secret"]
    lost = next(a for a in answers if a.status == 409).json()
    assert lost["error"] == "rotation_conflict"
    assert verifies(stack, account, won)
    assert verifies(stack, account, leaked)  # one rotation: the grace period, as documented
    # The second rotation of "rotate twice" drops the leaked secret at once.
    again = stack.cloud.http("POST", PATH, headers=stack.auth(account))
    assert again.status == 201
    assert not verifies(stack, account, leaked)
    assert verifies(stack, account, won)
    assert verifies(stack, account, again.json()["identity_secret"])


def test_turning_verification_on_keeps_a_secret_rotated_meanwhile(stack: Stack) -> None:
    """Each write touches only its own fields: a switch cannot restore an old secret."""
    account = stack.account()
    off = {"verification": True}
    answer = stack.cloud.http(
        "PATCH", "/v1/account/identity", headers=stack.auth(account), body=off
    )
    assert answer.status == 409 and answer.json()["error"] == "no_identity_secret"
    secret = stack.cloud.http("POST", PATH, headers=stack.auth(account)).json()["identity_secret"]
    answer = stack.cloud.http(
        "PATCH", "/v1/account/identity", headers=stack.auth(account), body=off
    )
    assert answer.status == 200 and answer.json()["verification"] is True
    assert identity_store.load(account.account_id, consistent=True).secret == secret
