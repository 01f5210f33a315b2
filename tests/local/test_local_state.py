"""The running stack's state file: what a CLI reads to find the stack."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from insights.local import state


def test_a_reader_never_sees_a_half_written_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CLI started while the stack writes its state (serve starting, a key
    # rotated) must not read a partial file and take the stack for absent.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "home"))
    data_dir = tmp_path / "data"
    big = {"pid": 1, "api_url": "http://127.0.0.1:1", "padding": "x" * 200_000}
    state.write(data_dir, big)
    done = threading.Event()
    partial = 0

    def read() -> None:
        nonlocal partial
        while not done.is_set():
            try:
                json.loads((data_dir / state.STATE_NAME).read_text())
            except ValueError:
                partial += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(200):
            state.write(data_dir, {**big, "pid": n})
    finally:
        done.set()
        reader.join()
    assert partial == 0
    assert json.loads((data_dir / state.STATE_NAME).read_text())["pid"] == 199
    assert [p.name for p in data_dir.iterdir()] == [state.STATE_NAME]  # no temporary left
