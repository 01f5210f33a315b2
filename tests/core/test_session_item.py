"""The session item: a window survives storage exactly, and stays under 1 KB at its bound."""

from __future__ import annotations

from benchmarks.capacity import item_size
from insights.domain.core.sessions import (
    MAX_RUNS,
    SENT_MEMORY,
    Enrichment,
    Session,
    Stamped,
    Window,
)
from insights.storage.core.records import session_from_stream_image, session_to_item

T0 = 1_795_867_200_000
LONDON = Enrichment(T0, "United Kingdom", "England", "London", "Chrome", "120.0.6099.109")


def roundtrip(window: Window) -> Window:
    item = session_to_item("acc_0123456789abcdef#u", window, 1_800_000, 7)
    record = session_from_stream_image(item.serialize())
    assert record.version == 7 and record.timeout_ms == 1_800_000
    assert record.deadline == window.due_at(1_800_000)
    return record.window


def test_a_window_of_several_runs_survives_storage() -> None:
    paris = Enrichment(T0 + 5, "France", None, "Paris", None, None)
    window = Window(
        runs=(
            Session(T0, T0 + 60_000, True, {"role": Stamped("admin", T0 + 1)}, LONDON, T0 + 9),
            Session(T0 + 7_200_000, T0 + 7_200_000, False, {}, None, T0 + 12),
            Session(T0 + 9_000_000, T0 + 9_500_000, True, {"n": Stamped(3, T0 + 9_000_000)}, paris),
        ),
        seen=T0 + 20,
        prev_end=T0 - 1,
        late_props={"plan": Stamped("vip", T0 - 100)},
        sent=((T0 + 20, 150), (T0 - 3_000, -40)),
    )
    assert roundtrip(window) == window


def test_the_largest_window_stays_under_one_write_unit() -> None:
    runs = tuple(
        Session(
            T0 + n * 7_200_000,
            T0 + n * 7_200_000 + 600_000,
            True,
            {"plan": Stamped("pro", T0 + n * 7_200_000), "role": Stamped("admin", T0)},
            LONDON,
            T0 + n,
        )
        for n in range(MAX_RUNS)
    )
    sent = tuple((T0 + 50_000 + n * 997, 120 + n) for n in range(SENT_MEMORY))
    window = Window(runs=runs, seen=T0 + 60_000, prev_end=T0 - 1, sent=sent)
    item = session_to_item("acc_0123456789abcdef#user-0001", window, 1_800_000, 41)
    assert item_size(item.serialize()) < 1024
    assert roundtrip(window) == window
