"""LocalCloud runs invocations concurrently where AWS would, within each function's bound.

These assert on order and completion (who waited for whom), never on timings.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack

WAIT = 120  # seconds before a test gives up on an event that should come at once


def wrap(stack: Stack, monkeypatch: pytest.MonkeyPatch, function: str, before: Any) -> None:
    """Run `before()` at the start of every invocation of `function`."""
    stack.cloud.handler(function)
    module = stack.cloud._modules[function]
    original = module.handler

    def handler(event: dict, context: Any) -> Any:
        before()
        return original(event, context)

    monkeypatch.setattr(module, "handler", handler)


def test_the_api_answers_while_an_import_is_running(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = stack.account()
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        inside.set()
        assert release.wait(WAIT)

    wrap(stack, monkeypatch, "ImportFunction", hold)
    rows = "uuid,plan\n" + "".join(f"u{n},VIP\n" for n in range(50))
    stack.cloud.s3.put_object(
        Bucket=stack.cloud.deployment.buckets["ImportsBucket"],
        Key=f"imports/{acme.account.account_id}/crm.csv",
        Body=rows.encode(),
    )
    worker = threading.Thread(target=stack.cloud.settle)  # the server's background loop
    worker.start()
    try:
        assert inside.wait(WAIT)  # the import is inside an invocation, and stays there
        answered: list[int] = []
        caller = threading.Thread(
            target=lambda: answered.append(
                stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).status
            )
        )
        caller.start()
        caller.join(WAIT)
        assert answered == [200]
        assert worker.is_alive() and not release.is_set()  # answered before the import went on
    finally:
        release.set()
        worker.join(WAIT)
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(acme)).json()
    assert listed["imports"][0]["status"] == "succeeded"
    assert listed["imports"][0]["rows"]["imported"] == 50


def test_a_function_without_reserved_concurrency_runs_invocations_side_by_side(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = stack.account()
    both_inside = threading.Barrier(2, timeout=WAIT)  # broken if the calls were serialised
    wrap(stack, monkeypatch, "ApiFunction", both_inside.wait)
    answers: list[int] = []

    def call() -> None:
        answers.append(stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).status)

    callers = [threading.Thread(target=call) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(WAIT)
    assert answers == [200, 200]


@pytest.fixture
def capped_stack(geo_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The stack deployed with the parameter TrackReservedConcurrency = 1."""
    from moto import mock_aws

    from insights import clock
    from insights.local.cloud import LocalCloud
    from insights.local.template import Template
    from insights.services.core import auth
    from tests.conftest import T0_MS

    defaults = Template.parameter_defaults
    monkeypatch.setattr(
        Template,
        "parameter_defaults",
        lambda self: {**defaults(self), "TrackReservedConcurrency": "1"},
    )
    clock.freeze(T0_MS)
    with mock_aws():
        cloud = LocalCloud().deploy()
        os.environ["GEOIP_DATABASE_PATH"] = str(geo_db)
        auth._cache.clear()
        yield Stack(cloud)
    clock.reset()


def test_reserved_concurrency_bounds_a_function(
    capped_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TrackReservedConcurrency: 1 makes TrackFunction run one invocation at a time."""
    stack = capped_stack
    acme = stack.account()
    running = 0
    most = 0
    lock = threading.Lock()
    first_inside, release = threading.Event(), threading.Event()

    def count() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        first_inside.set()
        release.wait(WAIT)
        with lock:
            running -= 1

    wrap(stack, monkeypatch, "TrackFunction", count)
    body = {"events": [{"uuid": "u1"}]}
    headers = {"X-Insights-Key": acme.write_key}
    calls = [
        threading.Thread(
            target=lambda: stack.cloud.function_url(
                "TrackFunction", "POST", "/", headers=headers, body=body
            )
        )
        for _ in range(2)
    ]
    for call in calls:
        call.start()
    assert first_inside.wait(WAIT)
    # The second call waits for the slot: another function (the API) is not held up.
    assert stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).status == 200
    release.set()
    for call in calls:
        call.join(WAIT)
    assert most == 1
    assert stack.cloud.invocations["TrackFunction"] == 2  # both ran, one after the other


def test_concurrent_ticks_deliver_each_stream_record_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `POST /_local/tick` at once: each record reaches its consumer once, in order."""
    acme = stack.account()
    delivered: list[str] = []
    stack.cloud.handler("SessionCloseFunction")
    module = stack.cloud._modules["SessionCloseFunction"]
    original = module.handler

    def counting(event: dict, context: Any) -> Any:
        delivered.extend(r["dynamodb"]["SequenceNumber"] for r in event["Records"])
        return original(event, context)

    monkeypatch.setattr(module, "handler", counting)
    for n in range(20):
        assert stack.send(acme, [{"uuid": f"u{n}"}]).status == 200
    stack.cloud.settle()
    stack.advance(31 * 60)
    stack.cloud.expire_ttl()
    before = dict(stack.cloud.closes)
    workers = [threading.Thread(target=stack.cloud.settle) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
    assert stack.cloud.closes.get("ttl", 0) - before.get("ttl", 0) == 20
    assert len(delivered) == 20 and delivered == sorted(delivered, key=int)
    for n in range(20):
        assert stack.standard(acme, f"u{n}")["total_sessions"] == 1


def test_each_invocation_logs_its_own_function_name(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every function shares one Powertools logger in this process (one service
    name); an invocation that runs while another is inside its own must not
    change the other's function_name, request id or cold start."""
    acme = stack.account()
    stack.cloud.handler("SessionCloseFunction")
    module = stack.cloud._modules["SessionCloseFunction"]
    original_sweep = module.sweep
    inside, release = threading.Event(), threading.Event()

    def held_sweep(*args: Any, **kwargs: Any) -> Any:
        # Inside the sweeper's invocation, after Powertools took its context.
        summary = original_sweep(*args, **kwargs)
        inside.set()
        assert release.wait(WAIT)
        return summary

    monkeypatch.setattr(module, "sweep", held_sweep)
    formatter = module.logger.registered_formatter
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(formatter.format(record)))

    collect = Collect()
    shared = logging.getLogger(module.logger.service)
    shared.addHandler(collect)
    level = shared.level
    # "sweep done" is an INFO line; setLevel (not the attribute) also clears
    # logging's cache of isEnabledFor answers from earlier tests.
    shared.setLevel(logging.INFO)
    try:
        sweeper = threading.Thread(target=stack.cloud.run_schedules)
        sweeper.start()
        assert inside.wait(WAIT)
        # Whole invocations of other functions while the sweeper is inside its own.
        assert stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).status == 200
        assert stack.send(acme, [{"uuid": "u1"}]).status == 200
        release.set()
        sweeper.join(WAIT)
    finally:
        release.set()
        shared.removeHandler(collect)
        shared.setLevel(level)
    done = [line for line in lines if line["message"] == "sweep done"]
    assert len(done) == 1, lines
    assert done[0]["function_name"] == "SessionCloseFunction", done[0]
    assert done[0]["function_arn"].endswith(":function:SessionCloseFunction")
    assert "account_id" not in done[0]  # appended by TrackFunction's invocation, not this one


def test_a_functions_invoke_is_refused_like_aws_when_the_local_cloud_cannot_run_it(
    stack: Stack,
) -> None:
    from botocore.exceptions import ClientError

    cloud = stack.cloud
    with pytest.raises(ClientError) as missing:
        cloud.invoke_async({"FunctionName": "NoSuchFunction", "InvocationType": "Event"})
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as waiting:
        cloud.invoke_async({"FunctionName": "ExportFunction"})  # RequestResponse
    assert waiting.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "InvocationType Event only" in waiting.value.response["Error"]["Message"]
    assert cloud.invoke_async({"FunctionName": "ExportFunction", "InvocationType": "Event"}) == {
        "StatusCode": 202
    }
    cloud.async_pending.clear()
