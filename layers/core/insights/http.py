"""HTTP plumbing shared by the API handlers: routing, errors, keys and JSON responses.

The routing is a small router for API Gateway HTTP API (v2) events rather
than Powertools' ``APIGatewayHttpResolver``: that package's ``__init__`` loads
every resolver (the AppSync one pulls in asyncio) and every event data class,
about 0.2x ``import boto3`` of CPU on each HTTP function's cold start, which
put Segments and the Imports API over the 1.5x goal (benchmarks, part 2).
These functions need only method + path dispatch, path parameters, a JSON
body and exception handlers; the answers are shaped exactly as Powertools'
(``statusCode``, ``body``, ``isBase64Encoded``, ``headers``, ``cookies``, and
its JSON 404 for an unknown route). API Gateway has already matched the route
and answered CORS preflights; Logger and Metrics stay Powertools'.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from insights.domain.core.accounts import KeyKind
from insights.domain.core.events import RequestError, uuid_problem
from insights.domain.team import roles
from insights.services.core.auth import AuthError, authenticate
from insights.storage.core.accounts import Account

if TYPE_CHECKING:
    from insights.services.team.sessions import Caller

SECRET_ONLY: frozenset[KeyKind] = frozenset({"secret"})
APPLICATION_JSON = "application/json"

E = TypeVar("E", bound=BaseException)
Route = Callable[..., "Response"]
_PARAM = re.compile(r"<(\w+)>")


@dataclass
class Response:
    """What a route answers (the argument order of Powertools' Response)."""

    status_code: int
    content_type: str | None = None
    body: str | None = None
    headers: dict[str, str] | None = None  # besides Content-Type (e.g. SCIM's ETag)
    cookies: list[str] | None = None  # Set-Cookie values (HTTP API v2 sends each)

    def as_result(self) -> dict[str, Any]:
        headers = {"Content-Type": self.content_type} if self.content_type else {}
        headers.update(self.headers or {})
        return {
            "statusCode": self.status_code,
            "body": self.body,
            "isBase64Encoded": False,
            "headers": headers,
            "cookies": list(self.cookies or []),
        }


class Request:
    """The parts of an HTTP API v2 event the routes read (Powertools' names)."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.raw_event = event
        http = (event.get("requestContext") or {}).get("http") or {}
        self.method: str = str(http.get("method") or "").upper()
        self.path: str = str(event.get("rawPath") or http.get("path") or "/")
        # HTTP API sends header names lower-cased; a test or proxy may not.
        self.headers: dict[str, str] = {
            k.lower(): v for k, v in (event.get("headers") or {}).items()
        }
        self.query_string_parameters: dict[str, str] | None = event.get("queryStringParameters")
        self.source_ip: str | None = http.get("sourceIp")
        self.route: str | None = None  # the pattern the router matched
        self.caller: Caller | None = None  # who, once bearer_account has checked

    def get_query_string_value(self, name: str, default: str | None = None) -> str | None:
        return (self.query_string_parameters or {}).get(name, default)

    @cached_property
    def body_bytes(self) -> bytes | None:
        """The body as sent (API Gateway base64-encodes bodies that are not text)."""
        body = self.raw_event.get("body")
        if body is None:
            return None
        if self.raw_event.get("isBase64Encoded"):
            import base64
            import binascii

            try:
                return base64.b64decode(body)
            except (binascii.Error, ValueError):
                raise RequestError(400, "invalid_body", "the body could not be read") from None
        return body.encode("utf-8", "surrogatepass")

    @cached_property
    def decoded_body(self) -> str | None:
        """The body as text; a body that is not UTF-8 is a 400, never a 500."""
        raw = self.body_bytes
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(
                400,
                "invalid_body",
                f"body is not UTF-8 (byte {exc.start}); gzip, UTF-16 and other encodings "
                "are not accepted",
            ) from None


class Router:
    """Method + path dispatch with ``<name>`` path parameters and exception handlers."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Route, str]] = []
        self._handlers: dict[type[BaseException], Callable[[Any], Response]] = {}
        # Per thread: Lambda runs one request per container, but the local
        # stack runs a function's concurrent requests in threads of one module.
        self._local = threading.local()

    @property
    def current_event(self) -> Request:
        event: Request | None = getattr(self._local, "event", None)
        assert event is not None, "only while resolving a request"
        return event

    def route(self, method: str, pattern: str) -> Callable[[Route], Route]:
        """`method`: an HTTP method, or ANY (every method, as API Gateway's ANY routes)."""
        # A parameter is one path segment, as in Powertools and API Gateway.
        regex = re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+)", pattern) + "$")

        def register(fn: Route) -> Route:
            self._routes.append((method.upper(), regex, fn, pattern))
            return fn

        return register

    def get(self, pattern: str) -> Callable[[Route], Route]:
        return self.route("GET", pattern)

    def post(self, pattern: str) -> Callable[[Route], Route]:
        return self.route("POST", pattern)

    def put(self, pattern: str) -> Callable[[Route], Route]:
        return self.route("PUT", pattern)

    def patch(self, pattern: str) -> Callable[[Route], Route]:
        return self.route("PATCH", pattern)

    def delete(self, pattern: str) -> Callable[[Route], Route]:
        return self.route("DELETE", pattern)

    def exception_handler(
        self, kind: type[E]
    ) -> Callable[[Callable[[E], Response]], Callable[[E], Response]]:
        def register(fn: Callable[[E], Response]) -> Callable[[E], Response]:
            self._handlers[kind] = fn
            return fn

        return register

    def resolve(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        request = self._local.event = Request(event)
        try:
            for method, regex, fn, pattern in self._routes:
                match = regex.match(request.path)
                if match and method in (request.method, "ANY"):
                    request.route = pattern
                    try:
                        response = fn(**match.groupdict())
                    except Exception as exc:
                        handle = self._handler_for(exc)
                        if handle is None:
                            _audit(request, 500)
                            raise
                        response = handle(exc)
                    _audit(request, response.status_code)
                    return response.as_result()
            body = json.dumps({"statusCode": 404, "message": "Not found"}, separators=(",", ":"))
            return Response(404, APPLICATION_JSON, body).as_result()
        finally:
            self._local.event = None

    def _handler_for(self, exc: Exception) -> Callable[[Any], Response] | None:
        # The closest registered class wins, as with Powertools.
        for kind in type(exc).__mro__:
            if kind in self._handlers:
                return self._handlers[kind]
        return None


def resolver() -> Router:
    """A router that answers auth and request errors as JSON."""
    app = Router()

    @app.exception_handler(AuthError)
    def _auth_error(exc: AuthError) -> Response:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestError)
    def _request_error(exc: RequestError) -> Response:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(RecursionError)
    def _too_deep(exc: RecursionError) -> Response:
        # decode_json refuses deep nesting; this is the backstop for any other path.
        return error(400, "invalid_body", "the request nests too deeply")

    return app


def path_text(raw: str) -> str | None:
    """A path parameter percent-decoded strictly, or None when it is not UTF-8.

    A lenient decode turns bytes that are not UTF-8 (%FF, an encoded surrogate)
    into U+FFFD, so /v1/users/%FF and /v1/users/%FE would both name "\ufffd".
    """
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return None


def path_uuid(raw: str) -> str:
    """The uuid in a URL path, decoded strictly and checked before anything is read or erased."""
    uuid = path_text(raw)
    if uuid is None:
        raise RequestError(
            400,
            "invalid_uuid",
            "the uuid in the path is not percent-encoded UTF-8 (e.g. %C3%A9 for \u00e9)",
        )
    problem = uuid_problem(uuid)
    if problem is not None:
        raise RequestError(400, "invalid_uuid", problem)
    return uuid


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"error": code, "message": message, **extra}
    return Response(status, APPLICATION_JSON, json.dumps(body))


def ok(body: Any, status: int = 200) -> Response:
    return Response(status, APPLICATION_JSON, json.dumps(body))


def bearer_account(app: Router) -> Account:
    """The account of a management request, after the one role check (domain/team/roles.py)."""
    return caller(app).account


def caller(app: Router) -> Caller:
    """Who calls (the secret key, or a console session), refused unless the route allows them.

    Every management route calls this first, so the table of domain/team/roles.py
    is enforced in one place; a route missing from the table is refused.
    """
    request = app.current_event
    need = roles.need_of(request.method, request.route or request.path)
    if need is None or need in ("public", "write_key", "scim_token"):
        raise AuthError("route_without_role", "this route has no role in the table", status=403)
    who = _identify(request)
    request.caller = who
    if need == "secret_key" and who.via != "secret_key":
        raise AuthError(
            "secret_key_only",
            "only the account's secret key may do this, not a console session",
            status=403,
        )
    if need != "secret_key" and not roles.allows(who.role, need):
        raise AuthError(
            "forbidden_role", f"this needs the {need} role; you sign in as {who.role}", status=403
        )
    return who


def _identify(request: Request) -> Caller:
    from insights.services.team import sessions

    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else ""
    cookie = None if key else sessions.cookie_value(request.raw_event, request.headers)
    if cookie is not None:
        return sessions.by_cookie(*cookie, request.headers)
    where = "as 'Authorization: Bearer <secret key>' (or sign in to the console)"
    return sessions.by_secret_key(authenticate(key, allowed=SECRET_ONLY, where=where))


def _audit(request: Request, status: int) -> None:
    """One audit entry per management write, and per refusal of a known caller."""
    who = request.caller
    if who is None or request.route is None:
        return
    if not (roles.audited(request.method, request.route) or status == 403):
        return
    from insights.services.team import audit

    audit.record(
        who.account.account_id,
        actor=who.actor,
        via=who.via,
        role=who.role,
        action=_route_key(request),
        path=request.path,
        status=status,
        ip=request.source_ip,
    )


def _route_key(request: Request) -> str:
    """The route as template.yaml names it when the table knows it, else the handler's."""
    pattern = f"{request.method} {request.route}"
    shape = roles.shape(pattern)
    return next((r for r in roles.ROUTES if roles.shape(r) == shape), pattern)


def json_body(app: Router) -> Any:
    from insights.domain.core.events import decode_json

    return decode_json(app.current_event.body_bytes or b"")
