"""Hostile values for every door, and the check every door must pass.

The values are what an attacker or a careless client sends: numbers at and
past DynamoDB's range and 38-digit precision (a 41-digit integer is sent as
such in the JSON text), strings that look like numbers or constants, lone
surrogates, strings and names at every length cap and one past it, deep
nesting, odd IP addresses. Every door must answer them with a 4xx or a
per-item rejection, never a 5xx, and every value it reports as taken must be
readable on the user afterwards (``Taken.check``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.conftest import MINUTE, Stack

# Derandomized and bounded: the same examples on every run, fast enough for CI.
BOUNDED = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(BOUNDED, max_examples=3)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"d": value}
    return value


NUMBERS: list[Any] = [
    0,
    -0.0,
    7,
    10**38 - 1,  # 38 digits: the most DynamoDB keeps
    -(10**38 - 1),
    10**38,  # 39 digits
    10**40,  # read as a BigNumber, never an int
    -(10**300),
    1e-130,  # the smallest magnitude DynamoDB keeps
    9.99e-131,
    9.99e125,  # the largest
    1e126,
    1.7e308,
    5e-324,
    0.1,
]
STRINGS: list[Any] = [
    "",
    " ",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "null",
    "true",
    "2026-11-28",
    "\ud800",  # a lone surrogate (sent as its JSON escape)
    "a\udc00b",
    "\U0001f600" * 3,
    "x" * 1024,  # the string cap
    "x" * 1025,
    "\u00e9" * 1024,
    "\x00\x1f",
]
SHAPES: list[Any] = [None, True, False, [], ["a", 1], {}, nested(3), nested(63), nested(70)]
NAMES: list[str] = ["p", "n" * 128, "n" * 129, "a.b", "\ud800", "$", " "]
UUID_EDGES: list[str] = ["u" * 256, "u" * 257, "\udc00u", " "]
ODD_IPS: list[Any] = [
    "81.2.69.160",
    "::ffff:81.2.69.160",
    "fe80::1%eth0",
    "2001:db8::1",
    "127.0.0.1",
    "0.0.0.0",
    "256.1.1.1",
    "1.2.3",
    "",
    7,
]

scalars = st.one_of(
    st.sampled_from(NUMBERS + STRINGS),
    st.integers(min_value=-(10**45), max_value=10**45),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
values = st.one_of(scalars, st.sampled_from(SHAPES))
names = st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=20))
ips = st.sampled_from(ODD_IPS)
# How many attributes the user holds before (limits.MAX_CUSTOM_ATTRIBUTES is
# lowered for the room's modules, so the per-user caps are met at every ±1).
prefills = st.sampled_from([0, 0, 0, 2, 3, 4])


def same(read: Any, sent: Any) -> bool:
    """The value read back is the one taken (numbers as DynamoDB keeps them)."""
    if isinstance(sent, bool) or isinstance(read, bool):
        return read is sent
    if isinstance(sent, int | float) and isinstance(read, int | float):
        return math.isclose(read, sent, rel_tol=1e-15, abs_tol=0.0) or read == sent
    return bool(read == sent)


@dataclass
class Taken:
    """What the doors of one test reported as taken: (uuid, attribute, value)."""

    stack: Stack
    account: Any
    values: list[tuple[str, str, Any, str]] = field(default_factory=list)
    uuids: set[str] = field(default_factory=set)

    def add(self, uuid: str, name: str, value: Any, answer: str = "") -> None:
        """`answer`: the door's answer that said so, shown if the value is not there."""
        self.values.append((uuid, name, value, answer))
        self.uuids.add(uuid)

    def check(self) -> None:
        """Every value taken is readable on its user (after the user's first session)."""
        assert self.values, "no door took anything: the test checks nothing"
        uuids = sorted(self.uuids)
        for start in range(0, len(uuids), 500):
            events = [{"uuid": u, "type": "visit"} for u in uuids[start : start + 500]]
            answer = self.stack.send(self.account, events)
            assert answer.status == 200 and not answer.json()["rejected"], answer.body
        self.stack.advance(31 * MINUTE)
        self.stack.sweep()
        profiles: dict[str, dict[str, Any]] = {}
        for uuid, name, value, said in self.values:
            if uuid not in profiles:
                path = f"/v1/users/{quote(uuid, safe='')}"
                answer = self.stack.cloud.http("GET", path, headers=self.stack.auth(self.account))
                assert answer.status == 200, (uuid, answer.body)
                profiles[uuid] = answer.json()["custom"]
            held = profiles[uuid]
            assert name in held, (uuid, name, value, sorted(held), said)
            assert same(held[name]["value"], value), (uuid, name, value, held[name], said)


class Counter:
    """Fresh uuids, one per example."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n}"


def prefill(stack: Stack, account: Any, uuid: str, count: int) -> None:
    """`count` attributes on the user from another door, before the one under test."""
    if not count:
        return
    answer = stack.cloud.function_url(
        "TrackFunction",
        "POST",
        "/v1/identify",
        headers={"X-Insights-Key": account.secret_key},
        body={"userId": uuid, "traits": {f"pre{i}": i for i in range(count)}},
    )
    assert answer.status == 200 and answer.json()["rejected"] == [], answer.body
