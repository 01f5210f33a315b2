"""Fixtures: the whole stack from template.yaml on moto, in-process.

`stack` is what tests talk to: HTTP requests routed by the template to the
real handlers, the sweeper schedule, TTL expiry and stream delivery.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

from insights import clock
from insights.local import geodb
from insights.local.cloud import LocalCloud
from insights.local.gateway import HttpResponse

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36"
)
LONDON_IP = "81.2.69.160"
MINUTE = 60
# Tests run on a frozen clock, so durations and deadlines are exact.
T0_MS = 1_795_867_200_000  # 2026-11-28T12:00:00Z


@pytest.fixture(scope="session", autouse=True)
def console_built() -> None:
    """The console's vendored Preact and htm (`make console` does the same): the
    stack serves GET / from them. A no-op once built for the committed lock."""
    from tools.console_vendor import vendor

    vendor()


@pytest.fixture(scope="session")
def geo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return geodb.build(tmp_path_factory.mktemp("geo") / "City.mmdb")


class Stack:
    """A test's handle on the local cloud, with shortcuts for the API."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud

    def account(self, name: str = "Acme", **settings: Any) -> Any:
        from insights.services.core.accounts import create_account

        created = create_account(name)
        if settings:
            response = self.patch_account(created, settings)
            assert response.status == 200, response.body
        return created

    def patch_account(self, account: Any, settings: dict[str, Any]) -> HttpResponse:
        return self.cloud.http("PATCH", "/v1/account", headers=self.auth(account), body=settings)

    @staticmethod
    def auth(account: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {account.secret_key}"}

    def send(
        self,
        account: Any,
        events: list[dict[str, Any]],
        *,
        ip: str = LONDON_IP,
        user_agent: str = CHROME,
        **body: Any,
    ) -> HttpResponse:
        payload = {"events": events, **body}
        payload.setdefault("context", {"ip": ip, "user_agent": user_agent})
        return self.cloud.http(
            "POST", "/v1/events", headers={"X-Insights-Key": account.write_key}, body=payload
        )

    def user(self, account: Any, uuid: str) -> HttpResponse:
        from urllib.parse import quote

        return self.cloud.http(
            "GET", f"/v1/users/{quote(uuid, safe='')}", headers=self.auth(account)
        )

    def standard(self, account: Any, uuid: str) -> dict[str, Any]:
        response = self.user(account, uuid)
        assert response.status == 200, response.body
        return response.json()["standard"]

    def advance(self, seconds: float) -> None:
        clock.advance(seconds)

    def sweep(self) -> dict[str, Any]:
        """Run the sweeper, then deliver the streams: it closes a window by deleting it."""
        result = self.cloud.run_schedules()["Sweep"]
        self.cloud.settle()
        return result

    def ttl(self) -> int:
        deleted = self.cloud.expire_ttl()
        self.cloud.settle()
        return deleted


@pytest.fixture
def stack(geo_db: Path) -> Iterator[Stack]:
    from insights.services.core import auth, enrich

    clock.freeze(T0_MS)
    with mock_aws():
        cloud = LocalCloud().deploy()
        os.environ["GEOIP_DATABASE_PATH"] = str(geo_db)
        enrich.geo.cache_clear()
        auth._cache.clear()  # a new stack is a new container: no key remembered
        auth._unknown.clear()
        yield Stack(cloud)
    clock.reset()


def iso(ms: int) -> str:
    from insights.domain.core.timefmt import format_time

    text = format_time(ms)
    assert text is not None
    return text


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # xdist hands out the first tests round-robin: the few long ones go first,
    # one to each worker, instead of one starting late and running alone.
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
