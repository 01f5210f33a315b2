"""Part 3: User-Agent and GeoIP enrichment.

User-Agent: ua-parser 1.0 with its pure-Python resolver
(``ua_parser.BasicResolver`` over ``load_builtins()``) and with the native
one from ua-parser-rs (``ua_parser.regex.Resolver``, what the
``ua-parser[regex]`` extra installs): set-up time in a fresh interpreter
(what a cold start pays), uncached parse time (no cache in front of the
resolver), and the cached time insights.services.core.enrich pays on a hit.
GeoIP: ``GeoLookup`` uncached (the reader) and cached.
Hit rates: insights.services.core.enrich's caches, empty at first, on the contexts the
demo (insights.local.demo.plan_users) sends: one request per session, as
``insights demo`` does, all through one warm container.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.core import Config, Figure, PartResult, Table, fmt

NAME = "enrichment"
TITLE = "Part 3: User-Agent and GeoIP enrichment"
ROOT = Path(__file__).resolve().parents[1]

SETUP_SNIPPET = """
import json, sys, time
started = time.perf_counter()
import ua_parser
from ua_parser import Domain
if sys.argv[1] == "basic":
    resolver = ua_parser.BasicResolver(ua_parser.load_builtins())
else:
    from ua_parser.regex import Resolver
    resolver = Resolver(ua_parser.load_lazy_builtins())
resolver(sys.argv[2], Domain.USER_AGENT)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def geo_database() -> tuple[str, str]:
    """(path, description): as `insights serve` picks one, else the bundled sample."""
    explicit = os.environ.get("INSIGHTS_GEOIP_DATABASE")
    if explicit:
        return explicit, f"{explicit} (INSIGHTS_GEOIP_DATABASE)"
    try:  # maxminddb-geolite2: a GeoLite2-City database of 2018
        from _maxminddb_geolite2 import geolite2_database

        if Path(geolite2_database()).exists():
            return geolite2_database(), "GeoLite2-City 2018 (PyPI maxminddb-geolite2)"
    except ImportError:
        pass
    from benchmarks.cost import geo_database as sample

    return str(
        sample()
    ), "bundled sample of MaxMind test networks (install maxminddb-geolite2 for a real one)"


def _per_call_us(fn: Any, inputs: list[Any], rounds: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(rounds):
        for value in inputs:
            fn(value)
    return (time.perf_counter_ns() - started) / 1000 / (rounds * len(inputs))


def _setup_seconds(kind: str, user_agent: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SETUP_SNIPPET, kind, user_agent],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def hit_rates(users: int, seed: int) -> dict[str, float]:
    from insights.domain.core.events import Context
    from insights.local.demo import plan_users
    from insights.services.core import enrich

    enrich.parse_browser.cache_clear()
    enrich.geo()._lookup.cache_clear()
    for user in plan_users(users, 1_795_867_200_000, seed=seed):
        for _session in user.sessions:  # the demo sends one request per session
            enrich.enrich(Context(ip=user.ip, user_agent=user.user_agent))
    ua, geo = enrich.parse_browser.cache_info(), enrich.geo()._lookup.cache_info()
    return {
        "ua": ua.hits / max(1, ua.hits + ua.misses),
        "geo": geo.hits / max(1, geo.hits + geo.misses),
        "requests": ua.hits + ua.misses,
    }


def run(config: Config) -> PartResult:
    import ua_parser
    from ua_parser import Domain
    from ua_parser.regex import Resolver as RegexResolver

    from insights.local.demo import USER_AGENTS, make_ip
    from insights.services.core import enrich

    runs = 2 if config.smoke else config.runs
    rounds = 2 if config.smoke else 30
    basic = ua_parser.BasicResolver(ua_parser.load_builtins())
    native = RegexResolver(ua_parser.load_lazy_builtins())
    agents = list(USER_AGENTS)
    # Both parse the same: the benchmark compares like with like.
    for agent in agents:
        a, b = basic(agent, Domain.USER_AGENT), native(agent, Domain.USER_AGENT)
        assert a.user_agent == b.user_agent, (agent, a, b)

    path, described = geo_database()
    os.environ["GEOIP_DATABASE_PATH"] = path
    enrich.geo.cache_clear()
    lookup = enrich.geo()
    import random

    rng = random.Random(7)
    ips = [make_ip(rng) for _ in range(200)] + [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(200)
    ]
    uncached_geo = type(lookup)._lookup.__wrapped__  # the reader, without the lru cache

    samples: dict[str, list[float]] = {
        k: []
        for k in (
            "ua.basic_setup_ms",
            "ua.native_setup_ms",
            "ua.basic_uncached_us",
            "ua.native_uncached_us",
            "ua.cached_us",
            "geo.uncached_us",
            "geo.cached_us",
            "hit_rate.ua",
            "hit_rate.geo",
        )
    }
    for r in range(runs):
        samples["ua.basic_setup_ms"].append(_setup_seconds("basic", agents[r % len(agents)]) * 1000)
        samples["ua.native_setup_ms"].append(
            _setup_seconds("regex", agents[r % len(agents)]) * 1000
        )
        samples["ua.basic_uncached_us"].append(
            _per_call_us(lambda ua: basic(ua, Domain.USER_AGENT), agents, max(1, rounds // 10))
        )
        samples["ua.native_uncached_us"].append(
            _per_call_us(lambda ua: native(ua, Domain.USER_AGENT), agents, rounds)
        )
        for agent in agents:
            enrich.parse_browser(agent)
        samples["ua.cached_us"].append(_per_call_us(enrich.parse_browser, agents, rounds * 10))
        samples["geo.uncached_us"].append(
            _per_call_us(lambda ip: uncached_geo(lookup, ip), ips, max(1, rounds // 3))
        )
        for ip in ips:
            lookup.lookup(ip)
        samples["geo.cached_us"].append(_per_call_us(lookup.lookup, ips, rounds))
        rates = hit_rates(40 if config.smoke else 200, seed=42 + r)
        samples["hit_rate.ua"].append(rates["ua"] * 100)
        samples["hit_rate.geo"].append(rates["geo"] * 100)

    labels = {
        "ua.basic_setup_ms": (
            "UA resolver set-up + first parse, pure Python (fresh interpreter)",
            "ms",
        ),
        "ua.native_setup_ms": ("UA resolver set-up + first parse, native ua-parser-rs", "ms"),
        "ua.basic_uncached_us": ("UA parse uncached, pure Python BasicResolver", "µs"),
        "ua.native_uncached_us": ("UA parse uncached, native ua-parser-rs", "µs"),
        "ua.cached_us": ("UA parse cached (insights.services.core.enrich.parse_browser hit)", "µs"),
        "geo.uncached_us": ("GeoIP lookup uncached", "µs"),
        "geo.cached_us": ("GeoIP lookup cached", "µs"),
        "hit_rate.ua": ("UA cache hit rate on the demo's traffic", "%"),
        "hit_rate.geo": ("GeoIP cache hit rate on the demo's traffic", "%"),
    }
    figures = [
        Figure(f"enrichment.{key}", labels[key][0], labels[key][1], values)
        for key, values in samples.items()
    ]
    basic_us = statistics.median(samples["ua.basic_uncached_us"])
    native_us = statistics.median(samples["ua.native_uncached_us"])
    winner = "native ua-parser-rs" if native_us < basic_us else "pure-Python BasicResolver"
    default = ua_parser.BestAvailableResolver.__module__
    result = PartResult(NAME, TITLE, figures)
    result.parameters = {"geoip_database": described, "user_agents": len(agents), "ips": len(ips)}
    result.tables = [
        Table(
            "User-Agent parsing (median)",
            ["resolver", "set-up + first parse ms", "uncached µs", "cached µs"],
            [
                [
                    "pure Python (BasicResolver)",
                    fmt(statistics.median(samples["ua.basic_setup_ms"])),
                    fmt(basic_us),
                    fmt(statistics.median(samples["ua.cached_us"])),
                ],
                [
                    "native (ua-parser-rs)",
                    fmt(statistics.median(samples["ua.native_setup_ms"])),
                    fmt(native_us),
                    fmt(statistics.median(samples["ua.cached_us"])),
                ],
            ],
        )
    ]
    result.notes = [
        f"Winner: {winner} ({basic_us / native_us:.0f}x faster uncached). ua_parser's default "
        f"parser here uses {default}; the Lambda layer installs ua-parser[regex] "
        "(layers/core/requirements.txt), whose ua-parser-rs has an abi3 manylinux2014_aarch64 "
        "wheel, so the native resolver is the default in the Lambda build too.",
        f"GeoIP database: {described}.",
        "Hit rates are for one warm container that sees all the demo's requests: an upper "
        "bound; each concurrent Lambda container has its own caches.",
    ]
    return result
