"""OIDC discovery and JWKS through the one outbound fetcher (insights.outbound), on the local stack.

Issue 24.5: redirects, the Lambda runtime API, inner addresses, huge and slow
answers, and error texts that told a closed port from a wrong answer. No test
here sends a packet off this machine: names are resolved by a stand-in for
DNS, and every connect is watched (`guard`) and refused unless it is to
loopback.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from insights import outbound
from insights.services.idp import oidc
from tests.conftest import Stack
from tests.idp.test_oidc import LocalIdp, register, sign_in

UNREACHABLE = "the issuer could not be reached or did not answer as an OIDC issuer"
Behaviour = Callable[[BaseHTTPRequestHandler], None]


class Scripted:
    """A loopback HTTP server whose answer to each path is a test's function."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.hits: list[tuple[str, str]] = []  # (Host header, path)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append((self.headers.get("Host", ""), self.path))
                behaviour(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def scripted() -> Iterator[Callable[[Behaviour], Scripted]]:
    servers: list[Scripted] = []

    def start(behaviour: Behaviour) -> Scripted:
        servers.append(Scripted(behaviour))
        return servers[-1]

    oidc._keys.clear()
    yield start
    for server in servers:
        server.close()


@pytest.fixture
def idp() -> Iterator[LocalIdp]:
    oidc._keys.clear()
    server = LocalIdp()
    yield server
    server.close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names the test resolves itself (name -> addresses, taken in turn); others as usual."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in table:
            addresses = table[host]
            address = addresses.pop(0) if len(addresses) > 1 else addresses[0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address a connect was attempted to; anything but loopback is refused unsent."""
    attempted: list[str] = []
    real = socket.create_connection

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        host = str(address[0])
        attempted.append(host)
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ConnectionRefusedError(f"the test refuses a connect to {host}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempted


def deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Play a deployed function: the local stack's flag is absent."""
    monkeypatch.delenv(outbound.LOCAL_STACK_ENV, raising=False)


def store_config(account: Any, **config: Any) -> None:
    """A registration saved before today's checks (as an older deployment could have)."""
    from insights.storage.idp import items as idp_store

    raw = {"issuer": "https://idp.example.com", "audience": "app", **config}
    idp_store.put_config(account.account_id, oidc.CONFIG_ITEM, raw, 0)


def refused_as_unreachable(response: Any) -> None:
    assert response.status == 502, response.body
    assert response.json() == {"error": "id_token_not_used", "message": UNREACHABLE}


# --------------------------------------------------------------- redirects
def test_a_redirect_from_loopback_to_a_plain_http_host_is_not_followed(
    stack: Stack, idp: LocalIdp, scripted: Any, dns: dict[str, list[str]], guard: list[str]
) -> None:
    """The issue's case: a loopback discovery URL answering 302 to plain http elsewhere."""
    dns["idp.attacker.test"] = ["127.0.0.1"]  # where the attacker's copy of the IdP answers
    elsewhere = idp.issuer.replace("127.0.0.1", "idp.attacker.test")
    redirecting = scripted(
        lambda h: answer(h, 302, b"", Location=f"{elsewhere}/.well-known/openid-configuration")
    )
    account = stack.account()
    discovery = f"{redirecting.url}/.well-known/openid-configuration"
    assert register(stack, account, idp, discovery_url=discovery).status == 200

    response = sign_in(stack, account, idp.token())

    refused_as_unreachable(response)
    assert idp.fetches == {"discovery": 0, "jwks": 0}  # the other host was never asked


def test_a_redirect_loop_stops_after_a_few_hops_with_the_same_answer(
    stack: Stack, idp: LocalIdp, scripted: Any
) -> None:
    looping = scripted(lambda h: answer(h, 302, b"", Location=h.path))
    account = stack.account()
    assert register(stack, account, idp, discovery_url=looping.url + "/again").status == 200

    refused_as_unreachable(sign_in(stack, account, idp.token()))
    assert len(looping.hits) == outbound.MAX_REDIRECTS + 1


def test_a_same_origin_redirect_is_followed(stack: Stack, idp: LocalIdp, scripted: Any) -> None:
    document = json.dumps({"issuer": idp.issuer, "jwks_uri": idp.issuer + "/keys"}).encode()

    def moved_once(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/old":
            answer(handler, 301, b"", Location="/new")
        else:
            answer(handler, 200, document)

    moved = scripted(moved_once)
    account = stack.account()
    assert register(stack, account, idp, discovery_url=moved.url + "/old").status == 200
    assert sign_in(stack, account, idp.token()).status == 200
    assert [path for _host, path in moved.hits] == ["/old", "/new"]


# ------------------------------------------------------- the runtime API
def test_the_lambda_runtime_api_is_refused_at_configuration(stack: Stack, idp: LocalIdp) -> None:
    runtime = "http://localhost:9001/2018-06-01/runtime/invocation/next"
    account = stack.account()
    response = register(stack, account, idp, discovery_url=runtime)
    assert response.status == 400, response.body
    assert response.json()["field"] == "discovery_url"
    assert "Lambda runtime API" in response.json()["message"]
    response = register(stack, account, idp, issuer="http://127.0.0.1:9001/2018-06-01/runtime")
    assert response.status == 400 and response.json()["field"] == "issuer"


def test_the_lambda_runtime_api_is_refused_at_fetch_time_when_deployed(
    stack: Stack, idp: LocalIdp, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = scripted(lambda h: answer(h, 200, b'{"issuer": "x"}'))
    account = stack.account()
    store_config(account, discovery_url=f"http://localhost:{runtime.port}/2018-06-01/runtime/x")
    deployed(monkeypatch)
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", f"127.0.0.1:{runtime.port}")

    refused_as_unreachable(sign_in(stack, account, idp.token()))
    assert runtime.hits == []


def test_loopback_is_refused_when_deployed_at_configuration_and_fetch_time(
    stack: Stack, idp: LocalIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = stack.account()
    store_config(account, issuer=idp.issuer, audience="0oa-insights-app", uuid_claim="email")
    deployed(monkeypatch)
    response = register(stack, account, idp)
    assert response.status == 400 and response.json()["field"] == "issuer"
    refused_as_unreachable(sign_in(stack, account, idp.token()))
    assert idp.fetches == {"discovery": 0, "jwks": 0}


# ------------------------------------------------------- inner addresses
@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/.well-known/openid-configuration",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[::ffff:192.168.1.1]/x",
        "https://100.64.0.1/x",
    ],
)
def test_an_inner_address_is_refused_at_configuration(
    stack: Stack, idp: LocalIdp, url: str
) -> None:
    response = register(stack, stack.account(), idp, discovery_url=url)
    assert response.status == 400, response.body
    assert response.json()["field"] == "discovery_url"


@pytest.mark.parametrize("inner", ["10.0.0.5", "169.254.169.254", "fd00:ec2::254", "172.16.3.4"])
def test_a_name_that_resolves_to_an_inner_address_is_refused_before_any_connect(
    stack: Stack,
    idp: LocalIdp,
    dns: dict[str, list[str]],
    guard: list[str],
    monkeypatch: pytest.MonkeyPatch,
    inner: str,
) -> None:
    dns["idp.corp.example"] = [inner]
    account = stack.account()
    deployed(monkeypatch)
    assert register(stack, account, idp, issuer="https://idp.corp.example").status == 200

    refused_as_unreachable(sign_in(stack, account, idp.token()))
    assert guard == []  # refused after resolution, before connecting


def test_the_connection_goes_to_the_address_that_was_checked(
    idp: LocalIdp, dns: dict[str, list[str]], guard: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lookup per fetch: a name that answers loopback, then an inner address
    (DNS rebinding) is connected to where it was checked."""
    monkeypatch.setenv(outbound.LOCAL_STACK_ENV, "1")
    port = idp.server.server_address[1]
    dns["localhost"] = ["127.0.0.1", "10.0.0.9"]
    got = outbound.fetch(
        f"http://localhost:{port}/.well-known/openid-configuration",
        timeout=3,
        max_bytes=4096,
    )
    assert got.status == 200 and json.loads(got.body)["issuer"] == idp.issuer
    assert guard == ["127.0.0.1"]
    with pytest.raises(outbound.OutboundFailed) as failed:
        outbound.fetch(f"http://localhost:{port}/keys", timeout=3, max_bytes=4096)
    assert "private" in failed.value.reason and str(failed.value) == outbound.FAILED
    assert guard == ["127.0.0.1"]


# --------------------------------------------------------- size and time
def test_a_huge_answer_is_refused_without_reading_it_all(
    stack: Stack, idp: LocalIdp, scripted: Any
) -> None:
    sent: list[int] = []

    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()  # no Content-Length: the body ends when the server stops
        try:
            for _ in range(2000):  # at most 128 MB offered, 64 KB a write
                handler.wfile.write(b" " * 65536)
                sent.append(65536)
        except OSError:
            pass

    huge = scripted(endless)
    declared = scripted(lambda h: answer(h, 200, b"{}" + b" " * (oidc.MAX_DOCUMENT_BYTES + 1)))
    account = stack.account()
    for server in (huge, declared):
        assert register(stack, account, idp, discovery_url=server.url + "/d").status == 200
        oidc._keys.clear()
        started = time.monotonic()
        refused_as_unreachable(sign_in(stack, account, idp.token()))
        assert time.monotonic() - started < 5
    assert sum(sent) < 2000 * 65536  # the reader stopped; the writer was cut off


def test_a_slow_answer_is_cut_at_the_deadline(
    stack: Stack, idp: LocalIdp, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        try:
            for _ in range(40):  # one byte every 0.25 s: 10 s at most
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.25)
        except OSError:
            pass

    slow = scripted(trickle)
    monkeypatch.setattr(oidc, "FETCH_TIMEOUT_SECONDS", 1.0)
    account = stack.account()
    assert register(stack, account, idp, discovery_url=slow.url + "/d").status == 200

    started = time.monotonic()
    refused_as_unreachable(sign_in(stack, account, idp.token()))
    assert time.monotonic() - started < 3


# ------------------------------------------------------------- the text
def test_a_closed_port_and_a_wrong_answer_read_the_same(
    stack: Stack, idp: LocalIdp, scripted: Any
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    not_found = scripted(lambda h: answer(h, 404, b"Not Found"))
    other_issuer = scripted(lambda h: answer(h, 200, json.dumps({"issuer": "x"}).encode()))
    not_json = scripted(lambda h: answer(h, 200, b"<html>hello</html>"))
    account = stack.account()
    timings: dict[str, float] = {}
    for name, url in [
        ("closed", f"http://127.0.0.1:{closed_port}/d"),
        ("404", not_found.url + "/d"),
        ("issuer", other_issuer.url + "/d"),
        ("html", not_json.url + "/d"),
    ]:
        assert register(stack, account, idp, discovery_url=url).status == 200
        oidc._keys.clear()
        started = time.monotonic()
        refused_as_unreachable(sign_in(stack, account, idp.token()))
        timings[name] = time.monotonic() - started
    assert max(timings.values()) < 2, timings  # all fail fast: no retry on one kind only


# ------------------------------------------------------------ the caches
def test_the_key_cache_is_bounded(
    stack: Stack, idp: LocalIdp, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin changing the discovery URL again and again cannot grow the cache."""
    document = json.dumps({"issuer": idp.issuer, "jwks_uri": idp.issuer + "/keys"}).encode()
    anywhere = scripted(lambda h: answer(h, 200, document))
    monkeypatch.setattr(oidc, "MAX_CACHED_ISSUERS", 3)
    account = stack.account()
    for n in range(7):
        url = f"{anywhere.url}/discovery/{n}"
        assert register(stack, account, idp, discovery_url=url).status == 200
        assert sign_in(stack, account, idp.token()).status == 200
        assert len(oidc._keys) <= 3


def test_the_template_never_sets_the_local_stack_flag() -> None:
    from pathlib import Path

    template = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    assert outbound.LOCAL_STACK_ENV not in template


@pytest.mark.parametrize(
    ("address", "local", "refused"),
    [
        ("93.184.216.34", False, False),
        ("2606:4700::1111", False, False),
        ("127.0.0.1", True, False),  # the local stack's test servers
        ("127.0.0.1", False, True),
        ("::ffff:127.0.0.1", False, True),
        ("169.254.169.254", True, True),
        ("fd00:ec2::254", True, True),
        ("64:ff9b::a9fe:a9fe", False, True),  # NAT64 of the metadata address
        ("2002:a00:1::1", False, True),  # 6to4 of 10.0.0.1
        ("100.64.1.1", False, True),
        ("224.0.0.1", False, True),
        ("0.0.0.0", False, True),
    ],
)
def test_which_addresses_the_service_may_connect_to(address: str, local: bool, refused: bool):
    assert (outbound.address_problem(address, local=local) is not None) == refused
