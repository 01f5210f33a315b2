"""The Salesforce API through simple-salesforce, with its errors made precise.

simple-salesforce does the OAuth flows (client credentials and JWT bearer,
both natively, via ``SalesforceLogin``), the REST query API
(``query``/``query_more``), ``describe`` and the Bulk API 2.0 query jobs.
This module adds what a scheduled sync needs around it:

- sign in once, and again exactly once when a call answers
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
``https://<domain>.salesforce.com`` URLs, so this is a transport adapter.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from insights.domain.salesforce import Credentials, LoginHost

API_VERSION = "62.0"
TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 10
T = TypeVar("T")
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforceProblem(Exception):
    """A call failed for a reason the account owner can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Bounded(HTTPAdapter):
    """Every call gets a timeout, also those simple-salesforce makes without one.

    Its sign-in (``SalesforceLogin``) posts with no timeout: a login host
    that never answers would hold the API's test route (and a sync slice)
    until the Lambda timeout instead of answering ``unavailable``.
    """

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (CONNECT_TIMEOUT_SECONDS, TIMEOUT_SECONDS)
        return super().send(request, **kwargs)


class _Redirect(_Bounded):
    """Sends https://<host>.salesforce.com/... to a stand-in base URL, keeping the Host."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = urlsplit(base)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        if url.hostname and url.hostname.endswith(".salesforce.com"):
            request.headers["Host"] = url.netloc
            request.url = urlunsplit(
                (self.base.scheme, self.base.netloc, url.path, url.query, url.fragment)
            )
        return super().send(request, **kwargs)


class Client:
    """One connection's API session: counts calls and re-authenticates once."""

    def __init__(self, host: LoginHost, credentials: Credentials) -> None:
        self.host = host
        self.credentials = credentials
        self.calls = 0
        self.usage: tuple[int, int] | None = None
        self.session = requests.Session()
        self.session.hooks["response"].append(self._observe)
        endpoint = os.environ.get("SALESFORCE_ENDPOINT_URL")
        self.session.mount("https://", _Redirect(endpoint) if endpoint else _Bounded())
        self.session.mount("http://", _Bounded())
        self._sf: Salesforce | None = None

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.usage = (int(match[1]), int(match[2]))

    # ---------------------------------------------------------------- login
    def login(self) -> None:
        values = self.credentials.values
        try:
            if self.credentials.flow == "client_credentials":
                session_id, instance = SalesforceLogin(
                    session=self.session,
                    consumer_key=values["consumer_key"],
                    consumer_secret=values["consumer_secret"],
                    domain=self.host.domain,
                    sf_version=API_VERSION,
                )
            else:
                # The assertion's audience is login/test; a My Domain is
                # where the token is asked for (simple-salesforce's instance_url).
                session_id, instance = SalesforceLogin(
                    session=self.session,
                    consumer_key=values["consumer_key"],
                    privatekey=values["private_key"],
                    username=values["username"],
                    domain=self.host.audience,
                    instance_url=self.host.domain if self.host.is_my_domain else None,
                    sf_version=API_VERSION,
                )
        except SalesforceAuthenticationFailed as exc:
            raise SalesforceProblem(
                "bad_credentials",
                f"Salesforce refused the credentials: {exc.code}: {exc.message}",
            ) from None
        except (requests.RequestException, ValueError) as exc:
            raise SalesforceProblem(
                "unavailable", f"could not reach Salesforce to sign in: {type(exc).__name__}"
            ) from None
        self._sf = Salesforce(
            session_id=session_id, instance=instance, session=self.session, version=API_VERSION
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
            except requests.RequestException as exc:
                raise SalesforceProblem(
                    "unavailable", f"could not reach Salesforce: {type(exc).__name__}"
                ) from None
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- calls
    def describe(self, sobject: str) -> dict[str, Any]:
        return self._call(
            lambda sf: sf.restful(f"sobjects/{sobject}/describe", timeout=TIMEOUT_SECONDS)
        )

    def query(self, soql: str) -> dict[str, Any]:
        return self._call(lambda sf: sf.query(soql, timeout=TIMEOUT_SECONDS))

    def query_more(self, next_records_url: str) -> dict[str, Any]:
        return self._call(
            lambda sf: sf.query_more(next_records_url, identifier_is_url=True, timeout=30)
        )

    def count(self, soql: str) -> int:
        return int(self.query(soql)["totalSize"])

    def bulk_create(self, sobject: str, soql: str) -> str:
        job = self._call(lambda sf: _bulk(sf, sobject).create_job("query", soql))
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
