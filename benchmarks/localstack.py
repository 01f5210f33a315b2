"""The local stack the count-based benchmark parts measure on: moto, a frozen clock, one account."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

T0_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z


@contextmanager
def benchmark_stack() -> Iterator[tuple[Any, Any]]:
    """(LocalCloud, the new account), with the clock frozen at T0_MS until the block ends."""
    from moto import mock_aws

    from benchmarks.cost import geo_database
    from insights import clock
    from insights.local.cloud import LocalCloud
    from insights.services.core import auth, enrich
    from insights.services.core.accounts import create_account

    clock.freeze(T0_MS)
    try:
        with mock_aws():
            cloud = LocalCloud().deploy()
            os.environ["GEOIP_DATABASE_PATH"] = str(geo_database())
            os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
            enrich.geo.cache_clear()
            auth._cache.clear()
            yield cloud, create_account("Benchmark")
    finally:
        clock.reset()
