"""Salesforce syncs and the admission rules (issue 24, point 2): the sync report says
what was refused, and nothing is counted as imported that the user does not hold."""

from __future__ import annotations

from typing import Any

import pytest

from insights.domain.core import limits
from insights.storage.core import store
from insights.storage.core.records import user_pk
from tests.conftest import Stack
from tests.salesforce.salesforce_fake import FakeSalesforce
from tests.salesforce.test_salesforce import connect, report, sync_now


def held(account: Any, uuid: str) -> dict[str, Any]:
    record = store.get_profile(user_pk(account.account_id, uuid), consistent=True)
    return {} if record is None else {k: v.value for k, v in record.profile.custom.items()}


def test_records_past_the_per_user_caps_or_not_unicode_are_in_the_sync_report(
    stack: Stack, salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_CUSTOM_ATTRIBUTES", 4)
    account = stack.account()
    answer = stack.cloud.function_url(
        "TrackFunction",
        "POST",
        "/v1/identify",
        headers={"X-Insights-Key": account.write_key},
        body={"userId": "full", "traits": {"a": 1, "b": 2, "c": 3}},
    )
    assert answer.status == 200 and answer.json()["rejected"] == []
    full = salesforce.add_record("Contact", External_Id__c="full", Title="CTO", Plan__c="Pro")
    salesforce.add_record("Contact", External_Id__c="fine", Title="CEO", Plan__c="Pro")
    broken = salesforce.add_record("Contact", External_Id__c="odd", Title="T\ud800")
    connect(stack, account)

    result = sync_now(stack, account)

    assert result["status"] == "partially_succeeded"
    assert result["rows"] == {"total": 3, "read": 3, "imported": 1, "rejected": 2, "deleted": 0}
    lines = report(result).splitlines()
    assert lines[1] == (
        f"1,,record {full}: the user would hold 5 custom attributes; at most 4 per user"
    )
    assert lines[2].startswith(f"3,Title,record {broken}: ") and "surrogate" in lines[2]
    assert held(account, "full") == {"a": 1, "b": 2, "c": 3}
    assert held(account, "fine") == {"role": "CEO", "plan": "Pro"}
    assert held(account, "odd") == {}
