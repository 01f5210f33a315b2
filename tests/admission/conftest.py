"""The admission room: one local stack per test module (the tests only add users)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from insights import clock
from insights.local.cloud import LocalCloud
from tests.conftest import T0_MS, Stack


@pytest.fixture(scope="module")
def shared(geo_db: Path) -> Iterator[Stack]:
    """A stack shared by a module's tests: each example writes users of its own."""
    from insights.services.core import auth, enrich

    clock.freeze(T0_MS)
    with mock_aws():
        cloud = LocalCloud().deploy()
        os.environ["GEOIP_DATABASE_PATH"] = str(geo_db)
        enrich.geo.cache_clear()
        auth._cache.clear()
        yield Stack(cloud)
    clock.reset()
