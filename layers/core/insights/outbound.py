"""Every call the service makes to the outside goes through ``fetch``: one set of rules.

OIDC discovery and JWKS (``services/idp/oidc.py``) call it directly; the
Salesforce client hands simple-salesforce a ``requests`` session whose
transport adapter calls it (``services/salesforce/client.py``). The rules,
checked on the configured URL and again on every hop:

- **https only.** Plain http only to a loopback address, and only on the
  local stack (``INSIGHTS_LOCAL_STACK=1``, which ``LocalCloud`` sets and the
  template never does, so a deployed function fails closed).
- **Addresses checked after resolution**, and the connection made to the
  address that was checked (no second lookup, so no DNS rebinding between
  the check and the connect): link-local (the instance metadata service,
  169.254.169.254 and fd00:ec2::254), private, shared, reserved, multicast,
  and loopback when deployed, are refused, also when written inside an
  IPv4-mapped, NAT64 or 6to4 IPv6 address. The Lambda runtime and extension
  APIs (``AWS_LAMBDA_RUNTIME_API``, ``localhost:9001/2018-06-01/...``) are
  refused everywhere.
- **No redirect to another origin**; a same-origin redirect is followed (at
  most ``MAX_REDIRECTS``) and its URL checked like the first.
- **Bounded**: one deadline for the whole call (connect, TLS, headers, body;
  a watchdog closes the socket when it passes, so a server trickling bytes
  cannot hold the function), and a body cap (a larger answer is refused
  without reading it all).
- **One failure**: ``OutboundFailed`` says the same thing whatever went
  wrong (refused address, closed port, timeout, TLS, oversize, redirect),
  so a caller cannot tell a closed port from a wrong answer; the precise
  ``reason`` is for the operator's logs. A URL refused by rule at
  configuration time is ``OutboundRefused``, which names the rule.

Standard library only (http.client): every function can use it without a
layer, and the pinned connect is a two-line override.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from functools import cache
from urllib.parse import urljoin, urlsplit

LOCAL_STACK_ENV = "INSIGHTS_LOCAL_STACK"
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The Lambda runtime API (2018-06-01), extensions API (2020-01-01) and
# telemetry/logs APIs (2020-08-15, 2022-07-01): served on a loopback address
# inside every Lambda sandbox.
LAMBDA_API_PATHS = ("/2018-06-01/", "/2020-01-01/", "/2020-08-15/", "/2022-07-01/")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
FAILED = "could not be reached or did not answer"
USER_AGENT = "insights-outbound/1"  # some IdPs' front doors refuse a request without one
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(ValueError):
    """A URL the rules refuse (at configuration time: the message says which rule)."""


class OutboundFailed(Exception):
    """A fetch that did not give an answer. ``str()`` is the same for every cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(FAILED)
        self.reason = reason  # for the operator's logs, never for the caller's answer


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    url: str  # the URL that answered (after same-origin redirects)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # as in the URL, without brackets
    port: int
    path: str  # path and query, as sent on the request line

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host.lower(), self.port)


def local_stack() -> bool:
    """True only where the local stack said so: anywhere else is deployed."""
    return os.environ.get(LOCAL_STACK_ENV) == "1"


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(text: str, *, local: bool) -> str | None:
    """Why the service may not connect to this address (None: it may)."""
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return address_problem(str(inner), local=local)
    if ip.is_loopback:
        return None if local else "a loopback address"
    if ip.is_link_local:
        return "a link-local address (the instance metadata service lives there)"
    if ip.is_multicast:
        return "a multicast address"
    if not ip.is_global:
        return "a private or reserved address"
    return None


def _is_loopback_host(host: str) -> bool:
    lowered = host.lower().rstrip(".")
    if lowered in LOOPBACK_NAMES or lowered.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(lowered.partition("%")[0]).is_loopback
    except ValueError:
        return False


def check_url(url: object) -> Target:
    """The rules a URL must pass before anything is fetched from it (OutboundRefused if not)."""
    if not isinstance(url, str) or not url:
        raise OutboundRefused("must be a URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unclosed IPv6 bracket, a port out of range
        raise OutboundRefused("is not a URL") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise OutboundRefused("must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("must not carry a user name or password")
    local = local_stack()
    loopback = _is_loopback_host(host)
    if parts.scheme == "http" and not (local and loopback):
        raise OutboundRefused("must be an https URL")
    port = port or (443 if parts.scheme == "https" else 80)
    runtime = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    if loopback and (
        any(parts.path.startswith(p) for p in LAMBDA_API_PATHS)
        or (runtime and runtime.rpartition(":")[2] == str(port))
    ):
        raise OutboundRefused("is the Lambda runtime API")
    if loopback and not local:
        raise OutboundRefused("must not point at this machine (a loopback address)")
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        pass  # a name: its addresses are checked when it is resolved
    else:
        problem = address_problem(host, local=local)
        if problem is not None:
            raise OutboundRefused(f"must not point at {problem}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path)


def resolve(host: str, port: int) -> list[str]:
    """The addresses a name resolves to (a seam the tests replace to play DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _pinned_address(target: Target) -> str:
    try:
        addresses = resolve(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        raise OutboundFailed(f"{target.host} did not resolve: {type(exc).__name__}") from None
    if not addresses:
        raise OutboundFailed(f"{target.host} resolved to no address")
    local = local_stack()
    for address in addresses:
        # Every address must pass: a name that also resolves to an inner
        # address is refused, not tried until one happens to be allowed.
        problem = address_problem(address, local=local)
        if problem is not None:
            raise OutboundFailed(f"{target.host} resolves to {problem}")
    return addresses[0]


@cache
def _tls() -> ssl.SSLContext:
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # the system's store
        return ssl.create_default_context()


class _Pinned(http.client.HTTPConnection):
    """Connects to the address that was checked; Host (and TLS SNI) stay the name."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedTls(_Pinned):
    def connect(self) -> None:
        super().connect()
        self.sock = _tls().wrap_socket(self.sock, server_hostname=self.host)


def _shut(connection: _Pinned) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in another thread


def _once(
    target: Target,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    *,
    deadline: float,
    connect_timeout: float,
    max_bytes: int,
) -> tuple[int, str, list[tuple[str, str]], bytes]:
    address = _pinned_address(target)
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutboundFailed("out of time before connecting")
    kind = _PinnedTls if target.scheme == "https" else _Pinned
    connection = kind(target, address, min(connect_timeout, left))
    watchdog = threading.Timer(left, _shut, args=(connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request(method, target.path, body=body, headers=headers)
        if connection.sock is not None:
            connection.sock.settimeout(max(0.001, deadline - time.monotonic()))
        response = connection.getresponse()
        declared = response.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise OutboundFailed(f"the answer declares {declared} bytes, over {max_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() >= deadline:
                raise OutboundFailed("out of time reading the answer")
            chunk = response.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise OutboundFailed(f"the answer is over {max_bytes} bytes")
            chunks.append(chunk)
        return response.status, response.reason, response.getheaders(), b"".join(chunks)
    except OutboundFailed:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        late = time.monotonic() >= deadline
        raise OutboundFailed(("out of time: " if late else "") + type(exc).__name__) from None
    finally:
        watchdog.cancel()
        connection.close()


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float,
    max_bytes: int,
    connect_timeout: float | None = None,
) -> Answer:
    """One call under the rules: the answer (any status), or OutboundFailed.

    `timeout` bounds the whole call, redirects included. A `Host` header in
    `headers` is sent as given (the Salesforce stand-in keeps the real host
    name); compressed answers are not asked for, so `max_bytes` is the size
    that reaches the caller.
    """
    deadline = time.monotonic() + timeout
    sent = {
        k: v
        for k, v in (headers or {}).items()
        if k.lower() not in ("accept-encoding", "connection")
    }
    sent["Accept-Encoding"] = "identity"
    sent["Connection"] = "close"  # one connection per call: it is pinned to a checked address
    if not any(k.lower() == "user-agent" for k in sent):
        sent["User-Agent"] = USER_AGENT
    current = url
    origin: tuple[str, str, int] | None = None
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            target = check_url(current)
        except OutboundRefused as exc:
            raise OutboundFailed(f"refused by rule: {exc}") from None
        if origin is not None and target.origin != origin:
            raise OutboundFailed("redirected to another origin")
        origin = target.origin
        status, reason, got, data = _once(
            target,
            method,
            sent,
            body,
            deadline=deadline,
            connect_timeout=connect_timeout or timeout,
            max_bytes=max_bytes,
        )
        location = next((v for k, v in got if k.lower() == "location"), None)
        if status not in REDIRECTS or location is None:
            return Answer(status, reason, got, data, current)
        current = urljoin(current, location)
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            sent.pop("Content-Type", None)
            sent.pop("Content-Length", None)
    raise OutboundFailed(f"more than {MAX_REDIRECTS} redirects")
