"""Profiles for SQL: the daily export (schedule), on-demand jobs and slices (asynchronous
invocations of this function), and the jobs API (POST /v1/exports, GET /v1/exports/{id});
services/exports.py does the work."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.domain.exports import JOB_PATTERN
from insights.http import Response, bearer_account, error, ok, resolver
from insights.metrics import published
from insights.services import exports
from insights.storage import exports as export_store

logger = Logger()
metrics = Metrics()
app = resolver()
# Time kept back to write the slice's files and start the next one.
RESERVE_MS = 120_000


@app.post("/v1/exports")
def start() -> Response:
    account = bearer_account(app)
    try:
        job = exports.start(account.account_id, clock.now_ms())
    except exports.ExportRunning as running:
        message = f"export {running.job_id} of this account is still running: poll it"
        return error(409, "export_running", message, export_id=running.job_id)
    return ok(job.public(export_store.bucket()), status=202)


@app.get("/v1/exports/<job_id>")
def get_one(job_id: str) -> Response:
    account = bearer_account(app)
    job = exports.get(account.account_id, job_id) if JOB_PATTERN.match(job_id) else None
    if job is None:
        return error(404, "export_not_found", "no such export in this account")
    return ok(job.public(export_store.bucket()))


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    def time_left() -> bool:
        return context.get_remaining_time_in_millis() > RESERVE_MS

    if "export_slice" in event:
        more = exports.run(event["export_slice"], time_left)
        if more is not None:
            export_store.send_slice(more)
        return {"continued": more is not None}
    if "requestContext" in event:
        return app.resolve(event, context)
    more = exports.daily(clock.now_ms(), time_left)  # the schedule
    if more is not None:
        export_store.send_slice(more)
    logger.info("daily export", extra={"continued": more is not None})
    return {"continued": more is not None}
