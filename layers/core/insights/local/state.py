"""Where the local stack keeps its data, and how a command finds the running stack.

The data directory is `.insights/` in the project (beside template.yaml),
whatever directory `insights serve` was started from; `INSIGHTS_HOME` or
`insights serve --data-dir` put it elsewhere. A running stack writes
`local.json` there (its URLs, pid and the demo account's keys) and the same
file at a per-user place (`$XDG_STATE_HOME/insights/running.json`, by default
`~/.local/state/...`), so `insights demo`, `import` and `accounts` find it
from any directory, and from a stack started with another data directory.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[4]  # the directory holding template.yaml
STATE_NAME = "local.json"
START_HINT = "start it with `make run` (in the project directory) or `insights serve`"


class StackNotRunning(SystemExit):
    """A command needs the local stack and none is running: one line, no traceback."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"error: the local stack is not running{detail}; {START_HINT}")


def default_data_dir() -> Path:
    home = os.environ.get("INSIGHTS_HOME")
    return Path(home).expanduser() if home else PROJECT / ".insights"


def user_state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "insights" / "running.json"


def candidates(start: Path | None = None) -> list[Path]:
    """State files a command looks at, in order."""
    found: list[Path] = []
    if os.environ.get("INSIGHTS_HOME"):
        found.append(default_data_dir() / STATE_NAME)
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        found.append(directory / ".insights" / STATE_NAME)
    found += [PROJECT / ".insights" / STATE_NAME, user_state_file()]
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _alive(state: dict[str, Any]) -> bool:
    pid = state.get("pid")
    # A process of ours that is alive is given time to answer: a busy stack
    # answers slowly, and passing it over would pick another stack's file.
    timeout = 3.0
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
            timeout = 30.0
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: ask it over HTTP
    try:
        with urllib.request.urlopen(
            f"{state['api_url']}/_local/health", timeout=timeout
        ) as response:
            return bool(response.status == 200)
    except (OSError, KeyError, urllib.error.URLError):
        return False


def find_running(start: Path | None = None) -> tuple[dict[str, Any] | None, list[Path]]:
    """(the running stack's state or None, stale state files seen on the way)."""
    stale: list[Path] = []
    for path in candidates(start):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(state):
            return state, stale
        stale.append(path)
    return None, stale


def running_in(data_dir: Path) -> dict[str, Any] | None:
    """The state of a live stack using this data directory, if any."""
    try:
        found = json.loads((data_dir / STATE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return found if _alive(found) else None


def require_running(start: Path | None = None) -> dict[str, Any]:
    state, stale = find_running(start)
    if state is None:
        detail = f" (stale {stale[0]} left by a stopped stack)" if stale else ""
        raise StackNotRunning(detail)
    return state


def state_file_of_running() -> Path:
    """The running stack's state file, or a path that does not exist (for `import`)."""
    for path in candidates():
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(state):
            return path
    return default_data_dir() / "not-running.json"


def write(data_dir: Path, state: dict[str, Any]) -> None:
    text = json.dumps(state, indent=2)
    for path in (data_dir / STATE_NAME, user_state_file()):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Whole or not at all: a CLI reading while the stack starts must
            # never see a half-written file and take the stack for absent.
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            partial.write_text(text)
            os.replace(partial, path)
        except OSError:
            continue  # an unwritable home directory: the data dir's copy is enough


def remove(data_dir: Path, pid: int) -> None:
    for path in (data_dir / STATE_NAME, user_state_file()):
        try:
            if json.loads(path.read_text()).get("pid") == pid:
                path.unlink()
        except (OSError, ValueError):
            continue
