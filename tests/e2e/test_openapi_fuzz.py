"""schemathesis over the local stack: every operation of docs/openapi.yaml, with valid keys.

The run is bounded and derandomized by schemathesis.toml (the repository's
configuration, also used by hand); it must find no 5xx, no answer the
description does not allow, and no answer slower than its limit (no hang).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.openapi_check import operations, spec
from tests.e2e.served import ROOT, RunningStack
from tests.salesforce.salesforce_fake import App, FakeSalesforce

# The credentials of the description's example connection (the fake accepts them).
_EXAMPLE = spec()["components"]["requestBodies"]["SalesforceConnection"]["content"]
_CREDENTIALS = _EXAMPLE["application/json"]["examples"]["contacts"]["value"]["credentials"]
EXAMPLE_KEY, EXAMPLE_SECRET = _CREDENTIALS["consumer_key"], _CREDENTIALS["consumer_secret"]

pytestmark = pytest.mark.e2e


@pytest.fixture
def salesforce() -> Iterator[FakeSalesforce]:
    """The Salesforce stand-in the stack talks to instead of *.salesforce.com.

    Without it the Salesforce test and sync would reach the real hosts: no
    answer here, and a different one wherever the network is open. With it
    every run gets the same answers; the app matches the description's
    example credentials, so the examples phase drives a connection, test and
    sync that work end to end, and generated credentials are refused.
    """
    fake = FakeSalesforce(start_ms=int(time.time() * 1000)).start()
    fake.add_object("Contact")
    fake.apps[EXAMPLE_KEY] = App(EXAMPLE_KEY, consumer_secret=EXAMPLE_SECRET)
    yield fake
    fake.stop()


@pytest.fixture
def fuzzed_stack(
    tmp_path: Path, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningStack]:
    monkeypatch.setenv("SALESFORCE_ENDPOINT_URL", salesforce.url)  # read by the stack's process
    monkeypatch.setenv("SALESFORCE_BULK_POLL_SECONDS", "0")
    stack = RunningStack(tmp_path)
    yield stack
    output = stack.stop()
    assert "Traceback" not in output, output  # nothing failed inside the stack either


@pytest.mark.long
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_description(
    fuzzed_stack: RunningStack, salesforce: FakeSalesforce
) -> None:
    account = fuzzed_stack.state["account"]
    # SCIM routes take a SCIM token (schemathesis.toml's [[operations]] block).
    status, token = fuzzed_stack.request(
        "POST",
        "/v1/idp/scim/tokens",
        {"name": "schemathesis"},
        headers={"Authorization": f"Bearer {account['secret_key']}"},
    )
    assert status == 201, token
    env = {
        **os.environ,
        "INSIGHTS_WRITE_KEY": account["write_key"],
        "INSIGHTS_SECRET_KEY": account["secret_key"],
        "INSIGHTS_SCIM_TOKEN": token["token"],
        "NO_COLOR": "1",
        # schemathesis.toml's hooks (the scim_error_schema check) import from the repository.
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [str(st), "run", "docs/openapi.yaml", "--url", fuzzed_stack.url, "--no-color"],
        cwd=ROOT,  # schemathesis.toml is read from here
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # a hang fails here, beside the per-request limit in the config
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert f"{len(operations())} selected / {len(operations())} total" in out, out[-3000:]
    for phase in ("Examples", "Coverage", "Fuzzing"):
        assert f"✅  {phase}" in out, out[-3000:]
    for secret in (account["secret_key"], account["write_key"], token["token"]):
        assert secret not in out
    # The example connection signed in to the stand-in and read the object:
    # the Salesforce routes were driven past their validation, not only to 400s.
    assert any(call.endswith("/sobjects/Contact/describe") for call in salesforce.calls)
