"""Location from the IP address and browser from the User-Agent, with warm caches.

The raw IP is looked up here and goes no further: only the country, region
and city leave this module.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from insights.domain.core.events import Context, normalized_ip
from insights.domain.core.limits import MAX_USER_AGENT_CHARS
from insights.domain.core.sessions import Enrichment

logger = Logger(child=True)
MAX_ADDRESS_CHARS = 45  # the longest IPv6 text (an IPv4-mapped one, fully written)


@dataclass(frozen=True, slots=True)
class Place:
    country: str | None = None
    region: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class Browser:
    name: str | None = None
    version: str | None = None


class GeoLookup:
    def __init__(self, path: str | None) -> None:
        self.path = path or ""
        self._reader = None
        self.available = False
        if self.path and os.path.exists(self.path):
            import geoip2.database

            self._reader = geoip2.database.Reader(self.path)
            self.available = True
        elif self.path:
            logger.warning(
                "GeoIP database not found; location attributes stay empty",
                extra={"path": self.path},
            )

    def lookup(self, ip: str | None) -> Place:
        if not ip or self._reader is None:
            return Place()
        # The doors already normalize context.ip (events.normalized_ip): the
        # cache is keyed by addresses. Whatever the caller, a key is short:
        # anything longer than an address's text, or with a scope id, is
        # normalized here (parsing costs a few µs; a hit costs 0.1 µs).
        key = ip
        if len(ip) > MAX_ADDRESS_CHARS or "%" in ip:
            try:
                key = normalized_ip(ip)
            except ValueError:
                return Place()
        return self._lookup(key)

    @functools.lru_cache(maxsize=8192)  # noqa: B019 - one instance per process
    def _lookup(self, ip: str) -> Place:
        import geoip2.errors

        try:
            city = self._reader.city(ip)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return Place()
        region = city.subdivisions.most_specific.name if city.subdivisions else None
        return Place(country=city.country.name, region=region, city=city.city.name)


@functools.cache
def _browsers() -> Any:
    """A parser of the browser rules only, built on first use.

    ua_parser's default parser compiles every rule set (browsers, operating
    systems, devices: 1,270 rules) before its first answer, ~155 ms of CPU on
    a new container; we read only the browser, whose 433 rules (loaded lazily,
    compiled by ua-parser-rs) cost about 70 ms (issue 26, benchmarks part 1).
    """
    import ua_parser
    from ua_parser.loaders import load_lazy_builtins

    browsers = load_lazy_builtins()[0]
    try:
        from ua_parser.regex import Resolver
    except ImportError:  # no ua-parser-rs wheel here: the pure-Python resolver
        from ua_parser.basic import Resolver  # type: ignore[assignment]
    return ua_parser.Parser(Resolver((browsers, [], [])))


@functools.lru_cache(maxsize=4096)
def parse_browser(user_agent: str | None) -> Browser:
    if not user_agent:
        return Browser()
    parsed = _browsers().parse_user_agent(user_agent)
    if parsed is None or parsed.family == "Other":
        return Browser()
    version = ".".join(part for part in (parsed.major, parsed.minor) if part) or None
    return Browser(name=parsed.family, version=version)


@functools.cache
def geo() -> GeoLookup:
    return GeoLookup(os.environ.get("GEOIP_DATABASE_PATH"))


def enrich(context: Context) -> Enrichment:
    place = geo().lookup(context.ip)
    # Truncated before the cache: its 4,096 entries stay small (~2 MB) whatever
    # a client sends. Real User-Agents are far shorter, and the browser name
    # and version are near the start of the string.
    user_agent = context.user_agent
    if user_agent is not None and len(user_agent) > MAX_USER_AGENT_CHARS:
        user_agent = user_agent[:MAX_USER_AGENT_CHARS]
    browser = parse_browser(user_agent)
    return Enrichment(
        country=place.country,
        region=place.region,
        city=place.city,
        browser_name=browser.name,
        browser_version=browser.version,
    )
