"""The one attribute path every source writes through (services.attributes)."""

from __future__ import annotations

from typing import Any

import pytest

from insights.domain.core.accounts import AccountSettings
from insights.domain.core.attributes import Row
from insights.domain.core.sessions import Stamped
from insights.services.core import attributes
from insights.storage.core.accounts import Account


def test_an_account_without_user_records_is_refused_before_any_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_store(*_: object, **__: object) -> None:
        raise AssertionError("the store must not be touched")

    monkeypatch.setattr(attributes, "apply_rows", no_store)
    account = Account("a1", "Acme", 0, AccountSettings(unique_user_ids=False))
    with pytest.raises(attributes.UserRecordsOff, match="unique_user_ids is off"):
        attributes.write_attributes(account, [Row(1, "u1", {"plan": Stamped("VIP", 1)})], "idp")


def test_an_account_with_user_records_applies_its_rows_with_the_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, list[Row], str, bool]] = []

    def apply(a: str, rows: list[Row], source: str, *, atomic: bool, always: frozenset) -> Any:
        calls.append((a, rows, source, atomic))
        return attributes.Written(1)

    monkeypatch.setattr(attributes, "apply_rows", apply)
    rows = [Row(1, "u1", {"plan": Stamped("VIP", 1)})]
    account = Account("a1", "Acme", 0, AccountSettings())
    assert attributes.write_attributes(account, rows, "salesforce").writes == 1
    assert calls == [("a1", rows, "salesforce", True)]
