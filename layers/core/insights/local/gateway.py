"""API Gateway and function URLs, locally: HTTP requests routed to functions as v2 events.

Routes come from the functions' HttpApi events in template.yaml, CORS from the
HTTP API's CorsConfiguration and each FunctionUrlConfig; preflights are
answered here, as API Gateway and Lambda answer them without the function.
"""

from __future__ import annotations

import base64
import json
import re
import time
import traceback
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from insights.local.aws import ACCOUNT_ID


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: str
    cookies: list[str] = field(default_factory=list)  # one Set-Cookie header each

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    function: str


def route_of(path: str, method: str, function: str) -> Route:
    """An HttpApi event's route: {name} is one path segment, {name+} the rest of the path."""
    regex = re.escape(path)
    regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", regex)
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
    return Route(method.upper(), path, re.compile(f"^{regex}$"), function)


class HttpGateway:
    """LocalCloud's HTTP front door: the HTTP API's routes and the function URLs."""

    routes: list[Route]
    cors: dict[str, Any] | None
    function_urls: dict[str, dict[str, Any]]
    _on_error: Callable[[str], None]
    invoke: Callable[[str, dict[str, Any]], Any]

    def http(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | dict | list | None = None,
        query: dict[str, str] | None = None,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        method, raw_path, params, headers, body = _request(method, path, query, headers, body)
        if method == "OPTIONS" and self.cors is not None:
            return HttpResponse(204, _cors_headers(self.cors, preflight=True), "")
        for route in self.routes:
            match = route.pattern.match(raw_path)
            if match and route.method in (method, "ANY"):
                params_in_path = {k: unquote(v) for k, v in match.groupdict().items()}
                event = self._http_event(
                    f"{route.method} {route.template}",
                    raw_path,
                    params_in_path,
                    method,
                    headers,
                    params,
                    body,
                    source_ip,
                )
                return self._serve_http(route.function, event, self.cors)
        return HttpResponse(
            404, {"content-type": "application/json"}, json.dumps({"message": "Not Found"})
        )

    def function_url(
        self,
        function: str,
        method: str,
        path: str = "/",
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | dict | list | None = None,
        query: dict[str, str] | None = None,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        """A request to a function's URL: every path reaches the function, as on AWS."""
        if function not in self.function_urls:
            raise KeyError(f"{function} has no FunctionUrlConfig in template.yaml")
        cors = self.function_urls[function]
        method, raw_path, params, headers, body = _request(method, path, query, headers, body)
        if method == "OPTIONS" and cors:
            return HttpResponse(204, _cors_headers(cors, preflight=True), "")
        event = self._http_event(
            "$default", raw_path or "/", {}, method, headers, params, body, source_ip
        )
        return self._serve_http(function, event, cors)

    def _serve_http(
        self, function: str, event: dict[str, Any], cors: dict[str, Any] | None
    ) -> HttpResponse:
        try:
            result = self.invoke(function, event)
        except Exception:
            self._on_error(
                f"{function} failed on {event['requestContext']['http']['method']} "
                f"{event['rawPath']}:\n{traceback.format_exc()}"
            )
            return HttpResponse(
                500,
                {"content-type": "application/json"},
                json.dumps({"message": "Internal Server Error"}),
            )
        return _http_result(result, cors)

    def _http_event(
        self,
        route_key: str,
        raw_path: str,
        path_params: dict[str, str],
        method: str,
        headers: dict[str, str],
        params: dict[str, str],
        body: bytes | str | None,
        source_ip: str,
    ) -> dict[str, Any]:
        encoded = False
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                body, encoded = base64.b64encode(body).decode(), True
        now = time.time()
        # Payload 2.0: Cookie headers become the `cookies` list, split on ";".
        cookie = headers.pop("cookie", None)
        cookies = [c.strip() for c in cookie.split(";") if c.strip()] if cookie else None
        return {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": raw_path,
            "rawQueryString": urlencode(params),
            "headers": headers,
            **({"cookies": cookies} if cookies else {}),
            "queryStringParameters": params or None,
            "pathParameters": path_params or None,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": "local",
                "domainName": "localhost",
                "domainPrefix": "localhost",
                "http": {
                    "method": method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuidlib.uuid4()),
                "routeKey": route_key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "body": body,
            "isBase64Encoded": encoded,
        }


def _request(
    method: str,
    path: str,
    query: dict[str, str] | None,
    headers: dict[str, str] | None,
    body: bytes | str | dict | list | None,
) -> tuple[str, str, dict[str, str], dict[str, str], bytes | str | None]:
    """A request as API Gateway and function URLs pass it on: upper-case method,
    path and query apart, lower-case header names, a JSON body serialized."""
    raw_path, _, raw_query = path.partition("?")
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    params.update(query or {})
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    # API Gateway and function URLs tell the function the scheme the client used
    # (https on AWS); the local stack serves plain http, unless a proxy in front says otherwise.
    lowered.setdefault("x-forwarded-proto", "http")
    if isinstance(body, dict | list):
        body = json.dumps(body)
        lowered.setdefault("content-type", "application/json")
    return method.upper(), raw_path, params, lowered, body


def _http_result(result: Any, cors: dict[str, Any] | None) -> HttpResponse:
    if not isinstance(result, dict) or "statusCode" not in result:
        return HttpResponse(200, {"content-type": "application/json"}, json.dumps(result))
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = ", ".join(map(str, values))
    headers.update(_cors_headers(cors, preflight=False))
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    cookies = [str(c) for c in result.get("cookies") or []]
    return HttpResponse(int(result["statusCode"]), headers, body, cookies)


def _cors_headers(cors: dict[str, Any] | None, *, preflight: bool) -> dict[str, str]:
    if not cors:
        return {}
    headers = {"access-control-allow-origin": ",".join(cors.get("AllowOrigins", ["*"]))}
    if preflight:
        headers["access-control-allow-methods"] = ",".join(cors.get("AllowMethods", []))
        headers["access-control-allow-headers"] = ",".join(cors.get("AllowHeaders", []))
        headers["access-control-max-age"] = str(cors.get("MaxAge", 0))
    return headers
