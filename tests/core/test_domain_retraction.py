"""A source withdrawing what it set (a deleted Salesforce record): profile.merged_custom."""

from __future__ import annotations

from insights.domain.core.profile import CustomValue, merged_custom
from insights.domain.core.sessions import Retraction, Stamped


def test_a_retraction_clears_only_a_value_of_its_own_source_and_not_a_newer_one() -> None:
    held = {
        "plan": CustomValue("VIP", 1_000, "salesforce"),
        "role": CustomValue("CTO", 1_000, "import"),
        "seats": CustomValue(5, 9_000, "salesforce"),
    }
    gone = {name: Retraction(None, 5_000) for name in ("plan", "role", "seats", "absent")}

    merged = merged_custom(held, gone, "salesforce", erased_at=None)

    assert merged is not None
    assert merged["plan"] == CustomValue(None, 5_000, "salesforce")  # withdrawn
    assert merged["role"] == held["role"]  # another source's value stays
    assert merged["seats"] == held["seats"]  # set again after the deletion: newer wins
    assert "absent" not in merged  # nothing held, nothing written


def test_a_retraction_alone_writes_nothing_on_an_empty_record() -> None:
    assert (
        merged_custom({}, {"plan": Retraction(None, 5_000)}, "salesforce", erased_at=None) is None
    )
    # A plain null (SCIM's removed attribute) is still a value that is written.
    written = merged_custom({}, {"plan": Stamped(None, 5_000)}, "idp", erased_at=None)
    assert written == {"plan": CustomValue(None, 5_000, "idp")}
