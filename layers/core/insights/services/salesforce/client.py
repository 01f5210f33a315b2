"""The Salesforce API through simple-salesforce, with its errors made precise.

simple-salesforce does the OAuth flows (client credentials and JWT bearer,
both natively, via ``SalesforceLogin``), the REST query API
(``query``/``query_more``), ``describe`` and the Bulk API 2.0 query jobs.
This module adds what a scheduled sync needs around it:

- send every HTTP call through the one outbound fetcher
  (``insights.outbound``, via a requests transport adapter);
- sign in once (a 5xx of the token endpoint is ``unavailable``, retried,
  and a refusal shows Salesforce's own ``error_description``), and again
  exactly once when a call answers
  ``INVALID_SESSION_ID`` (the client is built from the session id, so
  simple-salesforce's own refresh loop is not in play);
- count every HTTP call and read ``Sforce-Limit-Info`` from every response
  (a requests hook, so the Bulk API calls count too);
- turn simple-salesforce's exceptions into a ``SalesforceProblem`` whose
  code says what to fix (bad_credentials, no_access, unknown_object,
  unknown_field, invalid_filter, limit_exceeded, unavailable).

It imports simple-salesforce (and requests, zeep, lxml, cryptography), so
only the Salesforce functions, which carry SalesforceLayer, import it.

``SALESFORCE_ENDPOINT_URL``, when set, sends every request for
``https://*.salesforce.com`` to that base URL instead (keeping the Host), as
``AWS_ENDPOINT_URL`` does for AWS: the local stack and the tests point it at
a Salesforce stand-in. simple-salesforce always builds
``https://<domain>.salesforce.com`` URLs, so the adapter rewrites them.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from jwt import PyJWTError
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from insights import outbound
from insights.domain.salesforce.connection import Credentials, LoginHost

API_VERSION = "62.0"
TIMEOUT_SECONDS = 30  # what simple-salesforce is told; the fetcher's deadline below holds anyway
CALL_TIMEOUT_SECONDS = 60.0  # one call, connect to last byte
CONNECT_TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a Bulk API page of 10,000 wide records fits
UNREACHABLE = "Salesforce could not be reached or did not answer in time"
SIGN_IN_ATTEMPTS = 3
SIGN_IN_BACKOFF_SECONDS = 0.5
T = TypeVar("T")
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforceProblem(Exception):
    """A call failed for a reason the account owner can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Outbound(BaseAdapter):
    """requests' transport for simple-salesforce: every call through ``insights.outbound``.

    The fetcher's rules hold for sign-in, queries and the Bulk API alike
    (https, checked and pinned addresses, no redirect to another host, one
    deadline per call, a size cap). With ``SALESFORCE_ENDPOINT_URL`` set,
    ``https://<host>.salesforce.com/...`` goes to that base URL instead,
    keeping the Host (the local stand-in; the fetcher refuses a loopback
    base anywhere but on the local stack).
    """

    def __init__(self, base: str | None) -> None:
        super().__init__()
        self.base = urlsplit(base) if base else None

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        url = request.url or ""
        headers = dict(request.headers)
        parts = urlsplit(url)
        if self.base is not None and (parts.hostname or "").endswith(".salesforce.com"):
            headers["Host"] = parts.netloc
            url = urlunsplit(
                (self.base.scheme, self.base.netloc, parts.path, parts.query, parts.fragment)
            )
        body = request.body.encode() if isinstance(request.body, str) else request.body
        try:
            answer = outbound.fetch(
                url,
                method=request.method or "GET",
                headers=headers,
                body=body,
                timeout=CALL_TIMEOUT_SECONDS,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                max_bytes=MAX_ANSWER_BYTES,
            )
        except outbound.OutboundFailed as exc:
            raise Unreachable(exc.reason, request=request) from None
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason
        response.headers = CaseInsensitiveDict(answer.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response._content = answer.body
        response.raw = io.BytesIO(answer.body)
        response.url = request.url or ""
        response.request = request
        response.connection = self
        return response

    def close(self) -> None:
        pass


class Unreachable(requests.ConnectionError):
    """The fetcher got no answer; its reason is for the logs, not for the account owner."""


class Client:
    """One connection's API session: counts calls and re-authenticates once."""

    def __init__(self, host: LoginHost, credentials: Credentials) -> None:
        self.host = host
        self.credentials = credentials
        self.calls = 0
        self.usage: tuple[int, int] | None = None
        self.session = requests.Session()
        self.session.hooks["response"].append(self._observe)
        adapter = _Outbound(os.environ.get("SALESFORCE_ENDPOINT_URL"))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._sf: Salesforce | None = None
        self.token_status: int | None = None

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        if response.url.endswith("/services/oauth2/token"):
            # simple-salesforce drops the status of a JSON error: keep it here.
            self.token_status = response.status_code
        match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.usage = (int(match[1]), int(match[2]))

    # ---------------------------------------------------------------- login
    def login(self) -> None:
        """Sign in; a 5xx from the token endpoint is tried again, then ``unavailable``.

        Salesforce's token endpoint answers 500 ``unknown_error: retry your
        request`` or 503 when it is busy: that is no verdict on the
        credentials, so it follows the rule for queries (``unavailable``,
        which a sync's slice retries through SQS), after
        ``SIGN_IN_ATTEMPTS`` quick tries here for a ``test`` that waits.
        """
        for attempt in range(SIGN_IN_ATTEMPTS):
            self.token_status = None
            try:
                session_id, instance = self._token()
                break
            except SalesforceAuthenticationFailed as exc:
                said = _auth_words(exc)
                if (self.token_status or 0) < 500:
                    raise SalesforceProblem(
                        "bad_credentials", f"Salesforce refused the credentials: {said}"
                    ) from None
                if attempt == SIGN_IN_ATTEMPTS - 1:
                    raise SalesforceProblem(
                        "unavailable",
                        f"Salesforce's sign-in answered {self.token_status} ({said}); "
                        "the sync tries again",
                    ) from None
                time.sleep(SIGN_IN_BACKOFF_SECONDS * (attempt + 1))
            except requests.RequestException:
                raise SalesforceProblem("unavailable", UNREACHABLE) from None
            except (PyJWTError, ValueError, TypeError) as exc:
                # Only the JWT flow builds something locally: the stored
                # private key cannot sign (keys are checked at PUT since).
                raise SalesforceProblem(
                    "bad_credentials",
                    f"the stored private key cannot sign the sign-in JWT ({exc}): "
                    "PUT the connection with the connected app's PEM private key",
                ) from None
        self._sf = Salesforce(
            session_id=session_id, instance=instance, session=self.session, version=API_VERSION
        )

    def _token(self) -> tuple[str, str]:
        values = self.credentials.values
        if self.credentials.flow == "client_credentials":
            return SalesforceLogin(
                session=self.session,
                consumer_key=values["consumer_key"],
                consumer_secret=values["consumer_secret"],
                domain=self.host.domain,
                sf_version=API_VERSION,
            )
        # The assertion's audience is login/test; a My Domain is
        # where the token is asked for (simple-salesforce's instance_url).
        return SalesforceLogin(
            session=self.session,
            consumer_key=values["consumer_key"],
            privatekey=values["private_key"],
            username=values["username"],
            domain=self.host.audience,
            instance_url=self.host.domain if self.host.is_my_domain else None,
            sf_version=API_VERSION,
        )

    @property
    def signed_in(self) -> bool:
        return self._sf is not None

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self.login()
        assert self._sf is not None
        return self._sf

    def _call(self, call: Callable[[Salesforce], T]) -> T:
        for attempt in (0, 1):
            try:
                return call(self.sf)
            except SalesforceExpiredSession:
                if attempt:
                    raise SalesforceProblem(
                        "bad_credentials", "Salesforce ended the session again right after sign-in"
                    ) from None
                self.login()  # INVALID_SESSION_ID: sign in again, once
            except SalesforceError as exc:
                raise _problem(exc) from None
            except requests.RequestException:
                raise SalesforceProblem("unavailable", UNREACHABLE) from None
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- calls
    def describe(self, sobject: str) -> dict[str, Any]:
        return self._call(
            lambda sf: sf.restful(f"sobjects/{sobject}/describe", timeout=TIMEOUT_SECONDS)
        )

    def query(self, soql: str, *, deleted: bool = False) -> dict[str, Any]:
        """A query's first page; `deleted`: the queryAll endpoint (the recycle bin too)."""
        return self._call(
            lambda sf: sf.query(soql, include_deleted=deleted, timeout=TIMEOUT_SECONDS)
        )

    def query_more(self, next_records_url: str) -> dict[str, Any]:
        # The URL names its endpoint (query or queryAll).
        return self._call(
            lambda sf: sf.query_more(
                next_records_url, identifier_is_url=True, timeout=TIMEOUT_SECONDS
            )
        )

    def count(self, soql: str) -> int:
        return int(self.query(soql)["totalSize"])

    def bulk_create(self, sobject: str, soql: str, *, deleted: bool = False) -> str:
        operation = "queryAll" if deleted else "query"
        job = self._call(lambda sf: _bulk(sf, sobject).create_job(operation, soql))
        return str(job["id"])

    def bulk_state(self, sobject: str, job_id: str) -> tuple[str, str | None]:
        info = self._call(lambda sf: _bulk(sf, sobject).get_job(job_id, True))
        return str(info["state"]), info.get("errorMessage")

    def bulk_page(self, sobject: str, job_id: str, locator: str, limit: int) -> tuple[str, str]:
        """(CSV text, next locator or "" at the end)."""
        page = self._call(
            lambda sf: _bulk(sf, sobject).get_query_results(job_id, locator, max_records=limit)
        )
        return str(page["records"]), str(page["locator"] or "")


def _auth_words(exc: SalesforceAuthenticationFailed) -> str:
    """Salesforce's own words: ``error: error_description`` of the token answer.

    The pinned simple-salesforce keeps them as ``code`` and ``auth_message``
    (its ``message`` is the class's "{content}" template); an answer that
    was not JSON (an HTML 503 page) comes as the status and a body.
    """
    words = getattr(exc, "auth_message", None)
    if words is None:
        content = exc.content
        words = content.decode(errors="replace") if isinstance(content, bytes) else str(content)
    words = " ".join(str(words).split())[:300]
    code = exc.code
    if code is None or isinstance(code, int):
        return words or "no reason given"
    return f"{code}: {words}" if words else str(code)


def _bulk(sf: Salesforce, sobject: str) -> Any:
    # SFBulk2Type.query() creates, waits and reads in one generator; a sync
    # that resumes in another invocation needs the job's steps one by one,
    # which its client (_client: create_job, get_job, get_query_results) has.
    return getattr(sf.bulk2, sobject)._client


def _error_code(exc: SalesforceError) -> tuple[str, str]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    if isinstance(content, dict):
        return str(content.get("errorCode", "")), str(content.get("message", ""))
    return "", str(content)[:300]


def _problem(exc: SalesforceError) -> SalesforceProblem:
    code, message = _error_code(exc)
    said = f"{code}: {message}" if code else message
    if code == "REQUEST_LIMIT_EXCEEDED":
        return SalesforceProblem("limit_exceeded", f"Salesforce API limit reached ({said})")
    if isinstance(exc, SalesforceRefusedRequest):
        return SalesforceProblem("no_access", f"the integration user has no access ({said})")
    if isinstance(exc, SalesforceResourceNotFound) or code in ("NOT_FOUND", "INVALID_TYPE"):
        return SalesforceProblem("unknown_object", f"no such object, or no access to it ({said})")
    if isinstance(exc, SalesforceMalformedRequest):
        if code == "INVALID_FIELD":
            return SalesforceProblem("unknown_field", f"Salesforce refused a field ({said})")
        if code == "INVALID_TYPE":
            return SalesforceProblem("unknown_object", said)
        return SalesforceProblem("invalid_query", f"Salesforce refused the query ({said})")
    return SalesforceProblem("unavailable", f"Salesforce answered {exc.status} ({said})")
