"""A Salesforce stand-in the tests run in-process: an HTTP server with the calls a sync makes.

simple-salesforce talks to it through ``SALESFORCE_ENDPOINT_URL`` (every
``https://*.salesforce.com`` request goes here, Host kept). It serves:

- ``POST /services/oauth2/token``: the client credentials flow (HTTP Basic
  consumer key/secret, on My Domain hosts only) and the JWT bearer flow (the
  assertion's signature is checked with the connected app's public key, and
  its iss, sub, aud and exp claims); ``invalid_client`` / ``invalid_grant``
  errors as Salesforce words them;
- ``GET /services/data/vXX.X/sobjects/<object>/describe``;
- ``GET .../query?q=`` for the SOQL the sync writes (select list, a simple
  ``Field = 'value'`` filter, the (SystemModstamp, Id) cursor, ORDER BY,
  COUNT()), paged with ``nextRecordsUrl``; ``.../queryAll`` the same with
  the deleted records (``IsDeleted`` true, ``SystemModstamp`` the time of
  the deletion: Salesforce's recycle bin), which ``query`` leaves out;
- the Bulk API 2.0 query job endpoints (create ``query`` or ``queryAll``,
  state, results by locator);
- the token endpoint's failures when busy (``token_failures``: a 500
  ``unknown_error`` JSON body, a 503 HTML page);
- ``INVALID_SESSION_ID``, ``REQUEST_LIMIT_EXCEEDED``, ``INVALID_FIELD``,
  ``INVALID_TYPE``, ``NOT_FOUND`` error bodies, and ``Sforce-Limit-Info`` on
  every API answer.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

INSTANCE = "acme.my.salesforce.com"
_SELECT = re.compile(
    r"^SELECT (?P<fields>.+?) FROM (?P<object>\w+)"
    r"(?: WHERE (?P<where>.+?))?(?P<order> ORDER BY SystemModstamp, Id)?$"
)
_CURSOR = re.compile(
    r"\(SystemModstamp > (?P<at>\S+) OR \(SystemModstamp = \S+ AND Id > '(?P<id>\w+)'\)\)"
)
_FILTER = re.compile(r"^\((?P<field>\w+) = '(?P<value>[^']*)'\)")

DEFAULT_FIELDS = [
    ("Id", "id"),
    ("Email", "email"),
    ("External_Id__c", "string"),
    ("Title", "string"),
    ("Plan__c", "picklist"),
    ("Seats__c", "double"),
    ("Active__c", "boolean"),
    ("Renewal__c", "date"),
    ("Last_Login__c", "datetime"),
    ("Photo__c", "base64"),
    ("IsDeleted", "boolean"),
    ("SystemModstamp", "datetime"),
]
BUSY = (500, {"error": "unknown_error", "error_description": "retry your request"})
UNAVAILABLE_PAGE = (503, b"<html><body>Service Unavailable</body></html>")


def sf_time(ms: int, *, bulk: bool = False) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ms % 1000:03d}" + ("Z" if bulk else "+0000")


def parse_sf_time(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class App:
    """A connected app: its consumer key/secret, or its certificate's public key."""

    consumer_key: str
    consumer_secret: str | None = None
    public_key: Any = None
    username: str | None = None
    my_domain: str = INSTANCE
    audience: str = "https://login.salesforce.com"


@dataclass
class SObject:
    name: str
    fields: dict[str, str]  # name -> describe type
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    queryable: bool = True


@dataclass
class BulkJob:
    records: list[dict[str, Any]]
    fields: list[str]
    polls_left: int
    operation: str = "query"


class FakeSalesforce:
    def __init__(self, start_ms: int) -> None:
        self.apps: dict[str, App] = {}
        self.tokens: dict[str, str] = {}  # access token -> consumer key
        self.objects: dict[str, SObject] = {}
        self.clock_ms = start_ms
        self.page_size = 2000
        self.api_used = 0
        self.api_limit = 100_000
        self.token_requests: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.fail_queries: list[tuple[int, Any]] = []  # (status, body) for the next queries
        self.fail_at: dict[int, tuple[int, Any]] = {}  # query call number -> (status, body)
        self.query_calls = 0
        self.token_failures: list[tuple[int, Any]] = []  # (status, JSON or HTML) for next sign-ins
        self.on_query: Any = None  # called before each query is answered (a slow Salesforce)
        self.query_paths: list[str] = []  # "query" or "queryAll", per first page
        self.bulk_jobs: dict[str, BulkJob] = {}
        self.bulk_polls = 1
        self._locators: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ setup
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeSalesforce:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_object(self, name: str, fields: list[tuple[str, str]] | None = None) -> SObject:
        found = SObject(name, dict(fields or DEFAULT_FIELDS))
        self.objects[name] = found
        return found

    def add_record(self, sobject: str, **values: Any) -> str:
        prefix = {"Contact": "003", "Lead": "00Q"}.get(sobject, "a01")
        record_id = f"{prefix}{next(self._ids):015d}"
        self.clock_ms += 1000
        self.objects[sobject].records[record_id] = {
            "Id": record_id,
            **values,
            "SystemModstamp": self.clock_ms,
        }
        return record_id

    def edit(self, sobject: str, record_id: str, **values: Any) -> None:
        self.clock_ms += 1000
        self.objects[sobject].records[record_id].update(values, SystemModstamp=self.clock_ms)

    def delete(self, sobject: str, record_id: str) -> None:
        """To the recycle bin: queryAll still returns it, IsDeleted true, stamped now."""
        self.clock_ms += 1000
        record = self.objects[sobject].records[record_id]
        record.update(IsDeleted=True, SystemModstamp=self.clock_ms)

    def expire_sessions(self) -> None:
        self.tokens.clear()

    # ------------------------------------------------------------------ HTTP
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: Any, *, headers: dict[str, str] | None = None
            ) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                content_type = "text/csv" if isinstance(body, bytes) else "application/json"
                if data.startswith(b"<html>"):
                    content_type = "text/html"
                self.send_header("Content-Type", content_type)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                with fake._lock:
                    status, answer, headers = fake.route("POST", self.path, self.headers, body)
                self._send(status, answer, headers=headers)

            def do_GET(self) -> None:
                with fake._lock:
                    status, answer, headers = fake.route("GET", self.path, self.headers, "")
                self._send(status, answer, headers=headers)

        return Handler

    def route(
        self, method: str, path: str, headers: Any, body: str
    ) -> tuple[int, Any, dict[str, str]]:
        url = urlsplit(path)
        host = str(headers.get("Host") or "")
        self.calls.append(f"{method} {url.path}")
        if url.path == "/services/oauth2/token" and method == "POST":
            status, answer = self.token(host, headers, parse_qs(body))
            return status, answer, {}
        token = str(headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if host != INSTANCE or token not in self.tokens:
            return (
                401,
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                {},
            )
        if self.api_used >= self.api_limit:
            return (
                403,
                [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
                {},
            )
        self.api_used += 1
        limit = {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}
        status, answer, extra = self.api(method, url.path, parse_qs(url.query), body)
        return status, answer, {**limit, **extra}

    # ----------------------------------------------------------------- OAuth
    def token(self, host: str, headers: Any, form: dict[str, list[str]]) -> tuple[int, Any]:
        grant = (form.get("grant_type") or [""])[0]
        self.token_requests.append({"host": host, "grant_type": grant})
        if self.token_failures:
            return self.token_failures.pop(0)
        if grant == "client_credentials":
            scheme, _, encoded = str(headers.get("Authorization") or "").partition(" ")
            key, _, secret = base64.b64decode(encoded).decode().partition(":")
            app = self.apps.get(key)
            if scheme != "Basic" or app is None or app.consumer_secret != secret:
                return 400, {
                    "error": "invalid_client",
                    "error_description": "invalid client credentials",
                }
            if host != app.my_domain:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "request not supported on this domain",
                }
            return 200, self._issue(key)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assertion = (form.get("assertion") or [""])[0]
            try:
                claims = jwt.decode(assertion, options={"verify_signature": False})
            except jwt.PyJWTError:
                return 400, {"error": "invalid_grant", "error_description": "invalid assertion"}
            app = self.apps.get(str(claims.get("iss")))
            if app is None or app.public_key is None:
                return 400, {
                    "error": "invalid_client_id",
                    "error_description": "client identifier invalid",
                }
            try:
                # simple-salesforce sends exp as a string, which Salesforce accepts.
                verified = jwt.decode(
                    assertion,
                    app.public_key,
                    algorithms=["RS256"],
                    audience=app.audience,
                    options={"verify_exp": False, "require": ["iss", "sub", "aud", "exp"]},
                )
            except jwt.PyJWTError as exc:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": f"invalid assertion: {exc}",
                }
            if int(verified["exp"]) < time.time():
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "expired authorization code",
                }
            if verified["sub"] != app.username:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "user hasn't approved this consumer",
                }
            if host not in (app.my_domain, "login.salesforce.com", "test.salesforce.com"):
                return 400, {"error": "invalid_grant", "error_description": "wrong token host"}
            return 200, self._issue(app.consumer_key)
        return 400, {
            "error": "unsupported_grant_type",
            "error_description": "grant type not supported",
        }

    def _issue(self, consumer_key: str) -> dict[str, Any]:
        token = "00D!" + secrets.token_urlsafe(16)
        self.tokens[token] = consumer_key
        return {
            "access_token": token,
            "instance_url": f"https://{INSTANCE}",
            "id": "https://login.salesforce.com/id/00D/005",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
        }

    # -------------------------------------------------------------- REST API
    def api(
        self, method: str, path: str, query: dict[str, list[str]], body: str
    ) -> tuple[int, Any, dict[str, str]]:
        match = re.match(r"^/services/data/v\d+\.\d+/(?P<rest>.+)$", path)
        if not match:
            return (
                404,
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                {},
            )
        rest = match["rest"]
        describe = re.match(r"^sobjects/(\w+)/describe/?$", rest)
        if describe and method == "GET":
            found = self.objects.get(describe[1])
            if found is None:
                return (
                    404,
                    [
                        {
                            "errorCode": "NOT_FOUND",
                            "message": "The requested resource does not exist",
                        }
                    ],
                    {},
                )
            return (
                200,
                {
                    "name": found.name,
                    "queryable": found.queryable,
                    "fields": [{"name": n, "type": t, "label": n} for n, t in found.fields.items()],
                },
                {},
            )
        first = re.match(r"^(query|queryAll)/?$", rest)
        more = re.match(r"^(query|queryAll)/(\w+-\d+)$", rest)
        if (first or more) and method == "GET":
            self.query_calls += 1
            if self.query_calls in self.fail_at:
                status, answer = self.fail_at.pop(self.query_calls)
                return status, answer, {}
            if self.fail_queries:
                status, answer = self.fail_queries.pop(0)
                return status, answer, {}
            if self.on_query is not None:
                self.on_query()
        if first and method == "GET":
            self.query_paths.append(first[1])
            return self.query((query.get("q") or [""])[0], deleted=first[1] == "queryAll")
        if more and method == "GET":
            return 200, self._page(more[2], more[1]), {}
        if rest == "jobs/query" and method == "POST":
            return self.bulk_create(json.loads(body))
        job = re.match(r"^jobs/query/(\w+)(/results)?$", rest)
        if job and method == "GET":
            if job[2]:
                return self.bulk_results(job[1], query)
            return self.bulk_state(job[1])
        return (
            404,
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            {},
        )

    def _select(
        self, soql: str, *, deleted: bool = False
    ) -> tuple[SObject, list[str], list[dict[str, Any]], bool] | tuple[int, Any]:
        match = _SELECT.match(soql)
        if not match:
            return 400, [{"errorCode": "MALFORMED_QUERY", "message": f"unexpected query: {soql}"}]
        found = self.objects.get(match["object"])
        if found is None or not found.queryable:
            return 400, [
                {
                    "errorCode": "INVALID_TYPE",
                    "message": f"sObject type '{match['object']}' is not supported.",
                }
            ]
        names = [n.strip() for n in match["fields"].split(",")]
        by_lower = {n.lower(): n for n in found.fields}
        for name in names:
            if name != "COUNT()" and name.lower() not in by_lower:
                return 400, [
                    {
                        "errorCode": "INVALID_FIELD",
                        "message": f"No such column '{name}' on entity '{found.name}'.",
                    }
                ]
        records = sorted(found.records.values(), key=lambda r: (r["SystemModstamp"], r["Id"]))
        if not deleted:
            records = [r for r in records if not r.get("IsDeleted")]
        where = match["where"] or ""
        wanted = _FILTER.match(where)
        if wanted:
            records = [r for r in records if str(r.get(wanted["field"])) == wanted["value"]]
        cursor = _CURSOR.search(where)
        if cursor:
            at = parse_sf_time(cursor["at"])
            records = [r for r in records if (r["SystemModstamp"], r["Id"]) > (at, cursor["id"])]
        columns = [by_lower.get(n.lower(), n) for n in names]
        return found, columns, records, bool(match["order"])

    def query(self, soql: str, *, deleted: bool = False) -> tuple[int, Any, dict[str, str]]:
        selected = self._select(soql, deleted=deleted)
        if len(selected) == 2:
            return selected[0], selected[1], {}
        found, columns, records, _ = selected
        if columns == ["COUNT()"]:
            return 200, {"totalSize": len(records), "done": True, "records": []}, {}
        shaped = [self._shape(found, columns, r) for r in records]
        locator = f"01g{secrets.token_hex(6)}"
        self._locators[locator] = shaped
        return 200, self._page(f"{locator}-0", "queryAll" if deleted else "query"), {}

    def _page(self, ident: str, endpoint: str = "query") -> dict[str, Any]:
        locator, _, start = ident.rpartition("-")
        records = self._locators[locator]
        begin = int(start)
        chunk = records[begin : begin + self.page_size]
        end = begin + len(chunk)
        page: dict[str, Any] = {
            "totalSize": len(records),
            "done": end >= len(records),
            "records": chunk,
        }
        if end < len(records):
            page["nextRecordsUrl"] = f"/services/data/v62.0/{endpoint}/{locator}-{end}"
        return page

    def _shape(self, found: SObject, columns: list[str], record: dict[str, Any]) -> dict[str, Any]:
        shaped: dict[str, Any] = {
            "attributes": {
                "type": found.name,
                "url": f"/services/data/v62.0/sobjects/{found.name}/{record['Id']}",
            }
        }
        for column in columns:
            value = record.get(column)
            if column == "SystemModstamp":
                value = sf_time(value)
            elif column == "IsDeleted":
                value = bool(value)
            shaped[column] = value
        return shaped

    # -------------------------------------------------------------- Bulk 2.0
    def bulk_create(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            return 400, [{"errorCode": "INVALIDJOB", "message": "only query jobs here"}], {}
        selected = self._select(body["query"], deleted=operation == "queryAll")
        if len(selected) == 2:
            return selected[0], selected[1], {}
        found, columns, records, _ = selected
        job_id = f"750{secrets.token_hex(6)}"
        snapshot = [self._shape(found, columns, r) for r in records]
        self.bulk_jobs[job_id] = BulkJob(snapshot, columns, self.bulk_polls, operation)
        return 200, {"id": job_id, "operation": operation, "state": "UploadComplete"}, {}

    def bulk_state(self, job_id: str) -> tuple[int, Any, dict[str, str]]:
        job = self.bulk_jobs.get(job_id)
        if job is None:
            return 404, [{"errorCode": "NOT_FOUND", "message": "job not found"}], {}
        state = "JobComplete"
        if job.polls_left > 0:
            job.polls_left -= 1
            state = "InProgress"
        return 200, {"id": job_id, "state": state, "numberRecordsProcessed": len(job.records)}, {}

    def bulk_results(
        self, job_id: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        job = self.bulk_jobs[job_id]
        start = int((query.get("locator") or ["0"])[0])
        size = int((query.get("maxRecords") or ["50000"])[0])
        chunk = job.records[start : start + size]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job.fields)
        for record in chunk:
            row = []
            for column in job.fields:
                value = record.get(column)
                if column == "SystemModstamp":
                    value = value.replace("+0000", "Z")
                if value is None:
                    value = ""
                elif isinstance(value, bool):
                    value = "true" if value else "false"
                row.append(value)
            writer.writerow(row)
        end = start + len(chunk)
        locator = str(end) if end < len(job.records) else "null"
        return (
            200,
            out.getvalue().encode(),
            {
                "Sforce-Locator": locator,
                "Sforce-NumberOfRecords": str(len(chunk)),
            },
        )
