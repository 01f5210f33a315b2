"""Management API: account settings, users and the console's reads (secret key).

The user routes import their service (profile, session and storage code)
when first called: it is about a tenth of this function's import
(benchmarks, part 2), and the account routes never need it.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from insights import clock
from insights.domain.core.accounts import SettingsError, patch_settings
from insights.http import Response, bearer_account, error, json_body, ok, path_uuid, resolver
from insights.metrics import published
from insights.services.core import auth
from insights.storage.core import accounts as account_store

logger = Logger()
metrics = Metrics()
app = resolver()


@app.exception_handler(SettingsError)
def _settings_error(exc: SettingsError) -> Response:
    return error(400, "invalid_setting", exc.message, field=exc.field)


def _account_body(account: account_store.Account) -> dict:
    return {
        "account_id": account.account_id,
        "name": account.name,
        "settings": account.settings.as_dict(),
    }


@app.get("/v1/account")
def get_account() -> Response:
    return ok(_account_body(bearer_account(app)))


@app.patch("/v1/account")
def patch_account() -> Response:
    account = bearer_account(app)
    settings = patch_settings(account.settings, json_body(app))
    updated = account_store.save_settings(account, settings)
    auth.forget(account.account_id)
    return ok(_account_body(updated))


# ------------------------------------------------- identity verification
def _identity_error(exc: Exception) -> Response:
    from insights.services.core.identity import IdentityError

    assert isinstance(exc, IdentityError)
    return error(exc.status, exc.code, exc.message)


@app.get("/v1/account/identity")
def get_identity() -> Response:
    from insights.storage.core import identity as identity_store

    account = bearer_account(app)
    return ok(identity_store.load(account.account_id, consistent=True).public())


@app.patch("/v1/account/identity")
def patch_identity() -> Response:
    from insights.services.core.identity import IdentityError, set_verification

    account = bearer_account(app)
    body = json_body(app)
    if not isinstance(body, dict) or set(body) != {"verification"}:
        return error(400, "invalid_setting", 'send {"verification": true|false}', field="body")
    try:
        return ok(set_verification(account.account_id, body["verification"]).public())
    except IdentityError as exc:
        return _identity_error(exc)


@app.post("/v1/account/identity/secret")
def rotate_identity_secret() -> Response:
    from insights.services.core.identity import IdentityError, rotate_secret

    account = bearer_account(app)
    try:
        secret, settings = rotate_secret(account.account_id, clock.now_ms())
    except IdentityError as exc:  # another rotation won the race: 409
        return _identity_error(exc)
    # The only time the secret is shown; it is never logged.
    return ok({"identity_secret": secret, **settings.public()}, status=201)


@app.get("/v1/users/<uuid>")
def get_user(uuid: str) -> Response:
    from insights.services.core.users import Missing, read_user

    account = bearer_account(app)
    found = read_user(account.account_id, path_uuid(uuid), clock.now_ms())
    if isinstance(found, Missing):
        return error(404, "user_not_found", found.reason)
    return ok(found.public())


@app.delete("/v1/users/<uuid>")
def delete_user(uuid: str) -> Response:
    from insights.services.core.users import erase_user

    account = bearer_account(app)
    erase_user(account.account_id, path_uuid(uuid), clock.now_ms())
    return Response(204)


# ---------------------------------------------------------------- console
def _query(name: str) -> str | None:
    return (app.current_event.query_string_parameters or {}).get(name)


@app.get("/v1/users")
def list_users() -> Response:
    from insights.domain.console.user_list import ListError, parse
    from insights.services.console.reads import list_users as listing

    account = bearer_account(app)
    try:
        page = parse(_query("prefix"), _query("limit"), _query("cursor"))
    except ListError as exc:
        return error(400, exc.code, exc.message, field=exc.field)
    return ok(listing(account.account_id, page, clock.now_ms()))


@app.get("/v1/attributes")
def list_attributes() -> Response:
    from insights.domain.console.user_list import ListError, parse
    from insights.services.console.reads import ATTRIBUTES_PAGE, attributes

    account = bearer_account(app)
    try:
        page = parse(
            None, _query("limit"), _query("cursor"), default=ATTRIBUTES_PAGE, most=ATTRIBUTES_PAGE
        )
    except ListError as exc:
        return error(400, exc.code, exc.message, field=exc.field)
    return ok(attributes(account.account_id, page))


@app.get("/v1/stats")
def get_stats() -> Response:
    from insights.services.console.reads import STATS_DAYS, stats

    account = bearer_account(app)
    raw = _query("days")
    days = 30 if raw in (None, "") else next((d for d in STATS_DAYS if str(d) == raw), None)
    if days is None:
        return error(400, "invalid_days", "days must be 30, 90 or 180", field="days")
    return ok(stats(account.account_id, days, clock.now_ms()))


@app.post("/v1/account/secret-key")
def rotate_secret_key() -> Response:
    from insights.services.console.reads import KeyGone, rotate_secret_key

    account = bearer_account(app)
    header = app.current_event.headers.get("authorization") or ""
    presented = header.partition(" ")[2].strip()
    try:
        fresh = rotate_secret_key(account.account_id, presented, clock.now_ms())
    except KeyGone:
        return error(401, "unknown_key", "the secret key was rotated meanwhile; use the new one")
    # The only time the new key is shown; it is never logged.
    return ok({"secret_key": fresh})


@app.get("/v1/openapi.yaml")
def openapi() -> Response:
    """The API's description (docs/openapi.yaml, shipped in the layer), read when asked."""
    from importlib.resources import files

    text = files("insights").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return Response(200, "application/yaml", text)


@logger.inject_lambda_context(clear_state=True)
@published(metrics)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
