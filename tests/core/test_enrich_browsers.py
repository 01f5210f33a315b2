"""The browser parser reads only the browser rules, and answers as ua_parser's full parser."""

from __future__ import annotations

import pytest
import ua_parser

from insights.local.demo import USER_AGENTS
from insights.services.core import enrich

OTHERS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.4.0",
    "not a browser at all",
]


@pytest.mark.parametrize("user_agent", USER_AGENTS + OTHERS)
def test_same_browser_as_the_full_parser(user_agent: str) -> None:
    full = ua_parser.parse_user_agent(user_agent)
    expected = (None, None)
    if full is not None and full.family != "Other":
        version = ".".join(p for p in (full.major, full.minor) if p) or None
        expected = (full.family, version)
    found = enrich.parse_browser(user_agent)
    assert (found.name, found.version) == expected


def test_only_the_browser_rules_are_built() -> None:
    """Operating systems and devices are never parsed here: their 837 rules are not built."""
    parsed = enrich._browsers().parse(OTHERS[0])
    assert parsed.user_agent is not None and parsed.user_agent.family == "Mobile Safari"
    assert parsed.os is None and parsed.device is None
