"""Custom attributes remember when their value last changed, not only when it was last sent."""

from __future__ import annotations

from insights.domain.core.profile import Profile, merge_custom, same_value
from insights.domain.core.sessions import Stamped

T0 = 1_790_000_000_000


def test_resending_the_same_value_keeps_the_change_time() -> None:
    p = Profile(account_id="a", uuid="u", created_at=T0)
    p = merge_custom(p, {"plan": Stamped("free", T0)}, "event")
    p = merge_custom(p, {"plan": Stamped("VIP", T0 + 10)}, "event")
    p = merge_custom(p, {"plan": Stamped("VIP", T0 + 20)}, "event")
    plan = p.custom["plan"]
    assert plan.value == "VIP" and plan.updated_at == T0 + 20 and plan.changed_since == T0 + 10


def test_a_new_value_moves_the_change_time_and_an_older_one_is_ignored() -> None:
    p = Profile(account_id="a", uuid="u", created_at=T0)
    p = merge_custom(p, {"plan": Stamped("VIP", T0 + 50)}, "event")
    p = merge_custom(p, {"plan": Stamped("free", T0 + 5)}, "import")
    assert p.custom["plan"].value == "VIP" and p.custom["plan"].changed_since == T0 + 50


def test_same_value_is_strict_about_json_types() -> None:
    assert same_value(1, 1.0) and same_value("a", "a") and same_value(True, True)
    assert not same_value(True, 1) and not same_value("1", 1) and not same_value(None, "")
