"""What each Lambda artifact installs is what pyproject.toml declares for it.

`sam build` installs a layer's or function's requirements.txt; tests and the
local stack install pyproject.toml's dependencies and extras. The two lists
must name the same packages with the same constraints.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# requirements file -> the pyproject list it mirrors (None: the core dependencies)
ARTIFACTS = {
    "layers/core/requirements.txt": None,
    "layers/salesforce/requirements.txt": "salesforce",
    "functions/oidc/requirements.txt": "idp",
    "functions/team/requirements.txt": "idp",
    "functions/saml/requirements.txt": "saml",
}


def constraints(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            found[re.split(r"[\[<>=!~ ]", line, maxsplit=1)[0].lower()] = line
    return found


@pytest.mark.parametrize("path", sorted(ARTIFACTS))
def test_the_artifact_installs_what_pyproject_declares(path: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = ARTIFACTS[path]
    declared = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    assert constraints(declared) == constraints((ROOT / path).read_text().splitlines())


def test_heavy_extras_stay_out_of_the_core_layer() -> None:
    core = constraints((ROOT / "layers/core/requirements.txt").read_text().splitlines())
    heavy = {"simple-salesforce", "joserfc", "signxml"}
    assert not heavy & set(core)
