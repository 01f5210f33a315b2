"""SCIM 2.0 provisioning (``/scim/v2/...``, SCIM token) and its management API (secret key).

SCIM routes answer errors in SCIM's format (``application/scim+json``);
the ``/v1/idp/scim/...`` management routes answer like the rest of the API.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights.domain.core.events import RequestError, decode_json
from insights.domain.idp.scim import ScimError
from insights.domain.idp.scim.mapping import ConfigError
from insights.domain.idp.scim.schema import (
    list_response,
    resource_type_documents,
    schema_documents,
    service_provider_config,
)
from insights.http import Response, bearer_account, error, json_body, ok, resolver
from insights.metrics import published
from insights.services.idp import scim

logger = Logger()
metrics = Metrics()
app = resolver()
SCIM_JSON = "application/scim+json"
BASE = "/scim/v2"
MAX_BODY_BYTES = 256 * 1024


@app.exception_handler(ScimError)
def _scim_error(exc: ScimError) -> Response:
    return Response(exc.status, SCIM_JSON, json.dumps(exc.body()))


@app.exception_handler(ConfigError)
def _config_error(exc: ConfigError) -> Response:
    return error(400, "invalid_scim_config", exc.message, field=exc.field)


def _scim(body: dict[str, Any] | None, status: int = 200, etag: str | None = None) -> Response:
    response = Response(status, SCIM_JSON if body is not None else None, None)
    if body is not None:
        response.body = json.dumps(body)
    if etag:
        response.headers = {"ETag": etag}
    return response


_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def _base_url() -> str:
    """Where this request came in: its scheme (X-Forwarded-Proto, set by API Gateway,
    function URLs and the local stack) and Host, for Location and meta.location."""
    headers = app.current_event.headers
    proto = (headers.get("x-forwarded-proto") or "https").split(",")[0].strip().lower()
    host = (headers.get("host") or "").strip()
    if proto not in ("http", "https"):
        proto = "https"
    if not _HOST.match(host):
        context = app.current_event.raw_event.get("requestContext") or {}
        host = str(context.get("domainName") or "localhost")
    return f"{proto}://{host}{BASE}"


def _account() -> Any:
    return scim.token_account(app.current_event.headers.get("authorization"))


def _body() -> Any:
    """The JSON body, read by the one decoder (events.decode_json): not UTF-8, nested
    past 64 levels or a lone surrogate are SCIM errors, never a Python message or a 500."""
    try:
        data = app.current_event.body_bytes or b""
        if len(data) > MAX_BODY_BYTES:
            raise ScimError(413, f"the body is over {MAX_BODY_BYTES} bytes")
        if not data.strip():
            raise ScimError(400, "the body is empty: send a JSON object", "invalidSyntax")
        return decode_json(data)
    except RequestError as exc:
        kind = "invalidValue" if exc.code == "invalid_unicode" else "invalidSyntax"
        raise ScimError(400, exc.message, kind) from None
    except RecursionError:
        raise ScimError(400, "the body nests too deeply", "invalidSyntax") from None


def _query(name: str) -> str | None:
    return app.current_event.get_query_string_value(name)


def _answer(answer: scim.Answer) -> Response:
    response = _scim(answer.body, answer.status, answer.etag)
    if answer.status == 201 and answer.body is not None:
        response.headers = {**(response.headers or {}), "Location": answer.body["meta"]["location"]}
    return response


# ------------------------------------------------------------- discovery
@app.get(f"{BASE}/ServiceProviderConfig")
def provider_config() -> Response:
    _account()
    return _scim(service_provider_config(_base_url()))


@app.get(f"{BASE}/ResourceTypes")
def resource_types() -> Response:
    _account()
    documents = resource_type_documents(_base_url())
    return _scim(list_response(documents, len(documents), 1))


@app.get(f"{BASE}/ResourceTypes/<name>")
def resource_type(name: str) -> Response:
    _account()
    for document in resource_type_documents(_base_url()):
        if document["id"] == name:
            return _scim(document)
    raise ScimError(404, f"no ResourceType {name!r}")


@app.get(f"{BASE}/Schemas")
def schemas() -> Response:
    _account()
    documents = schema_documents(_base_url())
    return _scim(list_response(documents, len(documents), 1))


@app.get(f"{BASE}/Schemas/<urn>")
def one_schema(urn: str) -> Response:
    _account()
    for document in schema_documents(_base_url()):
        if document["id"] == urn:
            return _scim(document)
    raise ScimError(404, f"no Schema {urn!r}")


# ----------------------------------------------------------------- Users
@app.post(f"{BASE}/Users")
def create_user() -> Response:
    return _answer(scim.create_user(_account(), _body(), _base_url()))


@app.get(f"{BASE}/Users")
def list_users() -> Response:
    return _answer(
        scim.list_users(
            _account(),
            _base_url(),
            filter_text=_query("filter"),
            start_index=_query("startIndex"),
            count=_query("count"),
            attributes=_query("attributes"),
            excluded=_query("excludedAttributes"),
        )
    )


@app.get(f"{BASE}/Users/<user_id>")
def get_user(user_id: str) -> Response:
    answer = scim.get_user(
        _account(), user_id, _base_url(), _query("attributes"), _query("excludedAttributes")
    )
    return _answer(answer)


@app.put(f"{BASE}/Users/<user_id>")
def replace_user(user_id: str) -> Response:
    if_match = app.current_event.headers.get("if-match")
    return _answer(scim.replace_user(_account(), user_id, _body(), _base_url(), if_match))


@app.patch(f"{BASE}/Users/<user_id>")
def patch_user(user_id: str) -> Response:
    if_match = app.current_event.headers.get("if-match")
    return _answer(scim.patch_user(_account(), user_id, _body(), _base_url(), if_match))


@app.delete(f"{BASE}/Users/<user_id>")
def delete_user(user_id: str) -> Response:
    if_match = app.current_event.headers.get("if-match")
    return _answer(scim.delete_user(_account(), user_id, if_match))


@app.post(f"{BASE}/.search")
def search_everything() -> Response:
    _account()
    raise ScimError(501, "searching every resource type at once is not supported: use /Users")


# Endpoints that exist, for a 405 (not a 404) when the method is wrong.
_ENDPOINTS = re.compile(
    rf"^{BASE}/(ServiceProviderConfig|ResourceTypes(/[^/]+)?|Schemas(/[^/]+)?|Users(/[^/]+)?)$"
)


def _not_found() -> Response:
    _account()
    event = app.current_event
    if _ENDPOINTS.match(event.path):
        raise ScimError(405, f"{event.method} is not allowed on {event.path}")
    raise ScimError(404, f"no such SCIM endpoint: {event.path}")


# Registered after every SCIM route: any other path or method under /scim/v2 (the
# template's route is ANY: HEAD, TRACE, ...) is a SCIM 404 or 405, never another shape.
app.route("ANY", f"{BASE}/.*")(_not_found)


# ------------------------------------------------------ management (secret key)
@app.post("/v1/idp/scim/tokens")
def create_token() -> Response:
    account = bearer_account(app)
    raw = app.current_event.decoded_body
    body = json_body(app) if raw else {}
    if not isinstance(body, dict):
        return error(400, "invalid_token_request", 'send an object, e.g. {"name": "Okta"}')
    try:
        created = scim.create_token(account.account_id, body.get("name"))
    except ValueError as exc:
        return error(400, "invalid_token_request", str(exc))
    return ok(created.as_dict(), status=201)


@app.get("/v1/idp/scim/tokens")
def list_tokens() -> Response:
    from insights.storage.idp.items import list_tokens as stored_tokens

    account = bearer_account(app)
    return ok({"tokens": [t.as_dict() for t in stored_tokens(account.account_id)]})


@app.delete("/v1/idp/scim/tokens/<token_id>")
def revoke_token(token_id: str) -> Response:
    from insights.storage.idp.items import revoke_token as revoke

    account = bearer_account(app)
    if not revoke(account.account_id, token_id):
        return error(404, "token_not_found", "no SCIM token with this id in this account")
    return Response(204)


@app.get("/v1/idp/scim/config")
def get_config() -> Response:
    account = bearer_account(app)
    mapping, default = scim.get_mapping(account.account_id)
    return ok({"base_path": BASE, "default": default, **mapping.as_dict()})


@app.put("/v1/idp/scim/config")
def put_config() -> Response:
    account = bearer_account(app)
    mapping = scim.put_mapping(account.account_id, json_body(app))
    return ok({"base_path": BASE, "default": False, **mapping.as_dict()})


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
