"""Segments API (secret key): definitions, members, counts, preview, and one user's segments."""

from __future__ import annotations

from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.domain.segments.rules import RuleError
from insights.http import Response, bearer_account, error, json_body, ok, path_uuid, resolver
from insights.metrics import published
from insights.services.segments import counts
from insights.services.segments import queries as segments
from insights.services.segments.queries import SegmentError

logger = Logger()
metrics = Metrics()
app = resolver()  # auth and request errors as JSON, like the other HTTP functions


@app.exception_handler(RuleError)
def _rule_error(exc: RuleError) -> Response:
    return error(400, "invalid_segment", exc.message, path=exc.path)


@app.exception_handler(SegmentError)
def _segment_error(exc: SegmentError) -> Response:
    return error(exc.status, exc.code, exc.message, **({"field": exc.field} if exc.field else {}))


def _account_id() -> str:
    account = bearer_account(app)
    logger.append_keys(account_id=account.account_id)
    return account.account_id


def _query(name: str) -> str | None:
    return (app.current_event.query_string_parameters or {}).get(name)


@app.get("/v1/segments")
def list_segments() -> Response:
    found = segments.list_segments(_account_id())
    return ok({"segments": [s.public() for s in found]})


@app.post("/v1/segments")
def create_segment() -> Response:
    account_id = _account_id()
    created = segments.create_segment(account_id, json_body(app), clock.now_ms())
    return ok(created.public(), status=201)


@app.post("/v1/segments/preview")
def preview() -> Response:
    account_id = _account_id()
    return ok(counts.preview(account_id, json_body(app), clock.now_ms()))


@app.get("/v1/segments/<segment_id>")
def get_segment(segment_id: str) -> Response:
    return ok(segments.get_segment(_account_id(), unquote(segment_id)).public())


@app.put("/v1/segments/<segment_id>")
def replace_segment(segment_id: str) -> Response:
    account_id = _account_id()
    body = json_body(app)
    replaced = segments.replace_segment(account_id, unquote(segment_id), body, clock.now_ms())
    return ok(replaced.public())


@app.delete("/v1/segments/<segment_id>")
def delete_segment(segment_id: str) -> Response:
    segments.delete_segment(_account_id(), unquote(segment_id))
    return Response(204)


def _flag(name: str) -> bool:
    raw = _query(name)
    if raw not in (None, "", "true", "false"):
        raise SegmentError(400, f"invalid_{name}", f"{name} must be true or false")
    return raw == "true"


@app.get("/v1/segments/<segment_id>/users")
def segment_users(segment_id: str) -> Response:
    account_id = _account_id()
    limit = segments.parse_limit(_query("limit"))
    page = segments.list_users(
        account_id,
        unquote(segment_id),
        limit=limit,
        cursor=_query("cursor") or None,
        now_ms=clock.now_ms(),
        custom=_flag("custom"),
    )
    return ok(page)


@app.get("/v1/segments/<segment_id>/count")
def segment_count(segment_id: str) -> Response:
    account_id = _account_id()
    found = counts.count_users(
        account_id, unquote(segment_id), clock.now_ms(), cursor=_query("cursor") or None
    )
    return ok(found)


@app.get("/v1/users/<uuid>/segments")
def user_segments(uuid: str) -> Response:
    account_id = _account_id()
    user = path_uuid(uuid)
    return ok(
        {"uuid": user, "segments": segments.segments_of_user(account_id, user, clock.now_ms())}
    )


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
