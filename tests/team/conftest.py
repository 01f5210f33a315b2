"""A stack, a running OIDC provider and an account whose console signs in through it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.conftest import Stack
from tests.team import provider as provider_mock
from tests.team.helpers import REDIRECT_URI, Team, real_time


@pytest.fixture(scope="session")
def idp() -> Iterator[provider_mock.Provider]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with provider_mock.running() as running:
        running.user("ann@acme.com", email="ann@acme.com", name="Ann", groups=["insights-admins"])
        running.user("ed@acme.com", email="ed@acme.com", name="Ed", groups=["growth"])
        running.user("vi@acme.com", email="vi@acme.com", name="Vi", groups=[])
        running.user("mal@evil.example", email="mal@evil.example", groups=["insights-admins"])
        yield running


@pytest.fixture
def team(stack: Stack, idp: provider_mock.Provider) -> Team:
    from insights.services.team import sessions

    real_time()
    sessions._cache.clear()
    client_id, secret = idp.register(REDIRECT_URI)
    made = Team(stack, idp, stack.account(), client_id, secret)
    configured = made.configure()
    assert configured.status == 200, configured.body
    return made
