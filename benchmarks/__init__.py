"""Insights benchmark suite (issue 6): `make bench` or `python -m benchmarks`.

Each part is a module with NAME, TITLE and ``run(Config) -> PartResult``.
Parts whose subject lands later (imports) are added by writing
such a module and listing it in PARTS.
"""

import os
from pathlib import Path

from insights.local.template import Template

# Lambda sets a function's environment before its handler module loads, and
# Powertools' Metrics read their namespace when a module creates them. The
# suite imports handler code before any LocalCloud deploys the template's
# environment, so the template's literal globals are set first: without a
# namespace, a batch of 100 closes failed locally at its 100th metric value.
_globals = Template.load(Path(__file__).resolve().parents[1] / "template.yaml").body["Globals"]
for _name, _value in _globals["Function"]["Environment"]["Variables"].items():
    if _name.startswith("POWERTOOLS_") and isinstance(_value, str):
        os.environ.setdefault(_name, _value)

PARTS = (
    "benchmarks.cost",  # 1: cost per million events
    "benchmarks.ingest_cpu",  # 2: ingest CPU and cold start
    "benchmarks.enrichment",  # 3: User-Agent and GeoIP enrichment
    "benchmarks.segments",  # 4: segments: items read per user returned, evaluation time
    "benchmarks.imports",  # 5: imports
    "benchmarks.closes",  # 6: write units per session close
    "benchmarks.console",  # 7: console read units per page view, write units per close
    "benchmarks.exports",  # 8: profiles for SQL: export cost and size, insights sql time
    "benchmarks.scale",  # 9: scale: capacity model from measured stage throughputs
)
