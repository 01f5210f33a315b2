"""The shared router (insights.http) and partial batch responses (insights.batch).

Both replace Powertools pieces for cold start (benchmarks, part 2); these pin
the behaviour the handlers relied on: Powertools' response shape and 404,
exception handlers by class, and partial batch failures by record id.
"""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from insights.batch import (
    BatchFailed,
    process_partial_response,
    sqs_message_id,
    stream_sequence_number,
)
from insights.http import Response, Router, error, ok


def http_event(method: str, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": path,
        "headers": {"Authorization": "Bearer k"},
        "requestContext": {"http": {"method": method, "path": path}},
        "isBase64Encoded": False,
        **extra,
    }


class Base(Exception):
    pass


class Child(Base):
    pass


def router() -> Router:
    app = Router()

    @app.get("/v1/things/<thing_id>/parts/<part>")
    def part(thing_id: str, part: str) -> Response:
        return ok(
            {"thing": thing_id, "part": part, "auth": app.current_event.headers["authorization"]}
        )

    @app.post("/v1/things")
    def create() -> Response:
        return ok({"body": app.current_event.decoded_body}, status=201)

    @app.delete("/v1/things/<thing_id>")
    def delete(thing_id: str) -> Response:
        if thing_id == "child":
            raise Child()
        if thing_id == "other":
            raise KeyError(thing_id)
        return Response(204)

    @app.exception_handler(Base)
    def _base(exc: Base) -> Response:
        return error(409, type(exc).__name__.lower(), "conflict")

    return app


def test_routes_by_method_and_path_with_parameters() -> None:
    result = router().resolve(http_event("GET", "/v1/things/a%20b/parts/7"))
    assert result == {
        "statusCode": 200,
        "body": '{"thing": "a%20b", "part": "7", "auth": "Bearer k"}',
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json"},
        "cookies": [],
    }


def test_unknown_route_or_method_is_powertools_json_404() -> None:
    app = router()
    for method, path in [("GET", "/v1/nope"), ("PUT", "/v1/things/x"), ("GET", "/v1/things/")]:
        result = app.resolve(http_event(method, path))
        assert result["statusCode"] == 404
        assert result["body"] == '{"statusCode":404,"message":"Not found"}'


def test_concurrent_requests_each_see_their_own_event() -> None:
    # The local stack runs one handler module for concurrent requests (the
    # console's parallel calls); Lambda would use two containers.
    app = Router()
    both_inside = threading.Barrier(2)

    @app.post("/v1/echo")
    def echo() -> Response:
        before = app.current_event.decoded_body
        both_inside.wait(timeout=5)
        return ok({"before": before, "after": app.current_event.decoded_body})

    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda b: app.resolve(http_event("POST", "/v1/echo", body=b)), ["a", "b"])
        )
    assert [json.loads(r["body"]) for r in results] == [
        {"before": "a", "after": "a"},
        {"before": "b", "after": "b"},
    ]


def test_empty_response_and_base64_body() -> None:
    app = router()
    assert app.resolve(http_event("DELETE", "/v1/things/x")) == {
        "statusCode": 204,
        "body": None,
        "isBase64Encoded": False,
        "headers": {},
        "cookies": [],
    }
    body = base64.b64encode('{"é": 1}'.encode()).decode()
    result = app.resolve(http_event("POST", "/v1/things", body=body, isBase64Encoded=True))
    assert result["statusCode"] == 201 and "\\u00e9" in result["body"]


def test_exception_handlers_match_subclasses_and_others_propagate() -> None:
    app = router()
    result = app.resolve(http_event("DELETE", "/v1/things/child"))
    assert (result["statusCode"], result["body"]) == (
        409,
        '{"error": "child", "message": "conflict"}',
    )
    with pytest.raises(KeyError):
        app.resolve(http_event("DELETE", "/v1/things/other"))


def test_a_request_finishing_never_clears_another_threads_event() -> None:
    """The local stack runs a function's concurrent requests in threads of one module.

    One request finishing while another was between its first and second
    look at current_event made the second fail ("only while resolving").
    """
    app = Router()
    first_inside, second_done = threading.Event(), threading.Event()

    @app.get("/v1/slow")
    def slow() -> Response:
        first_inside.set()
        assert second_done.wait(10)
        return ok({"path": app.current_event.path})

    @app.get("/v1/fast")
    def fast() -> Response:
        return ok({"path": app.current_event.path})

    results: list[dict[str, Any]] = []
    worker = threading.Thread(
        target=lambda: results.append(app.resolve(http_event("GET", "/v1/slow")))
    )
    worker.start()
    assert first_inside.wait(10)
    assert app.resolve(http_event("GET", "/v1/fast"))["body"] == '{"path": "/v1/fast"}'
    second_done.set()
    worker.join(10)
    assert [r["body"] for r in results] == ['{"path": "/v1/slow"}']


def sqs(*ids: str) -> dict[str, Any]:
    return {"Records": [{"messageId": i, "body": i} for i in ids]}


def test_partial_batch_reports_failed_records_by_id() -> None:
    def handle(record: dict[str, Any]) -> None:
        if record["body"].startswith("bad"):
            raise ValueError(record["body"])

    assert process_partial_response(sqs("a", "bad1", "b", "bad2"), handle, sqs_message_id) == {
        "batchItemFailures": [{"itemIdentifier": "bad1"}, {"itemIdentifier": "bad2"}]
    }
    assert process_partial_response(sqs("a"), handle, sqs_message_id) == {"batchItemFailures": []}
    stream = {
        "Records": [{"dynamodb": {"SequenceNumber": "41"}}, {"dynamodb": {"SequenceNumber": "42"}}]
    }
    seen: list[str] = []

    def second_fails(record: dict[str, Any]) -> None:
        seen.append(record["dynamodb"]["SequenceNumber"])
        if len(seen) == 2:
            raise RuntimeError("throttled")

    assert process_partial_response(stream, second_fails, stream_sequence_number) == {
        "batchItemFailures": [{"itemIdentifier": "42"}]
    }


def test_a_batch_whose_records_all_fail_fails_the_invocation() -> None:
    def fail(record: dict[str, Any]) -> None:
        raise ValueError(record["body"])

    with pytest.raises(BatchFailed) as caught:
        process_partial_response(sqs("a", "b"), fail, sqs_message_id)
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(ValueError):
        process_partial_response({"Records": []}, fail, sqs_message_id)
