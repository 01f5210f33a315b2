"""The Salesforce stand-in every test of this room talks to (salesforce_fake.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from insights.services.salesforce import client as salesforce_client
from tests.conftest import T0_MS, Stack
from tests.salesforce.salesforce_fake import App, FakeSalesforce

DAY_MS = 86_400_000


@pytest.fixture
def salesforce(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce(start_ms=T0_MS - DAY_MS).start()
    fake.add_object("Contact")
    fake.apps["key-acme"] = App("key-acme", consumer_secret="secret-acme")
    monkeypatch.setenv("SALESFORCE_ENDPOINT_URL", fake.url)
    monkeypatch.setenv("SALESFORCE_BULK_POLL_SECONDS", "0")
    # A busy token endpoint is tried again at once here, not 0.5 s and 1 s later.
    monkeypatch.setattr(salesforce_client, "SIGN_IN_BACKOFF_SECONDS", 0.01, raising=False)
    yield fake
    fake.stop()
