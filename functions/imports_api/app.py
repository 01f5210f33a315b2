"""Imports API (secret key): start an upload, list imports, read one."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.domain.core.limits import whole_number
from insights.domain.imports.files import MappingError
from insights.http import Response, bearer_account, error, json_body, ok, resolver
from insights.metrics import published
from insights.services.imports.jobs import (
    ImportFinished,
    cancel_import,
    create_upload,
    get_import,
    is_import_id,
    list_imports,
)

logger = Logger()
metrics = Metrics()
app = resolver()  # auth and request errors as JSON, like the other HTTP functions
MAX_LIST = 100


@app.exception_handler(MappingError)
def _mapping_error(exc: MappingError) -> Response:
    return error(400, "invalid_import", str(exc))


@app.post("/v1/imports")
def start_upload() -> Response:
    account = bearer_account(app)
    return ok(create_upload(account, json_body(app)), status=201)


@app.get("/v1/imports")
def list_all() -> Response:
    account = bearer_account(app)
    raw = app.current_event.get_query_string_value("limit", "50") or "50"
    limit = whole_number(raw, 1, MAX_LIST)
    if limit is None:
        return error(400, "invalid_limit", f"limit must be a whole number from 1 to {MAX_LIST}")
    after = app.current_event.get_query_string_value("after") or None
    if after is not None and not is_import_id(after):
        return error(400, "invalid_after", "after must be an import id from a previous page")
    return ok(list_imports(account.account_id, limit, after))


@app.get("/v1/imports/<import_id>")
def get_one(import_id: str) -> Response:
    account = bearer_account(app)
    found = get_import(account.account_id, import_id) if is_import_id(import_id) else None
    if found is None:
        return _not_found()
    return ok(found)


@app.post("/v1/imports/<import_id>/cancel")
def cancel(import_id: str) -> Response:
    account = bearer_account(app)
    try:
        found = cancel_import(account.account_id, import_id) if is_import_id(import_id) else None
    except ImportFinished as exc:
        return error(409, "import_finished", f"the import has already finished: {exc.job.status}")
    if found is None:
        return _not_found()
    return ok(found)


def _not_found() -> Response:
    return error(404, "import_not_found", "no such import in this account")


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
