"""Insights benchmark suite (issue 6): `make bench` or `python -m benchmarks`.

Each part is a module with NAME, TITLE and ``run(Config) -> PartResult``.
Parts whose subject lands later (imports) are added by writing
such a module and listing it in PARTS.
"""

PARTS = (
    "benchmarks.cost",  # 1: cost per million events
    "benchmarks.ingest_cpu",  # 2: ingest CPU and cold start
    "benchmarks.enrichment",  # 3: User-Agent and GeoIP enrichment
    "benchmarks.segments",  # 4: segments: items read per user returned, evaluation time
    "benchmarks.imports",  # 5: imports
    "benchmarks.closes",  # 6: write units per session close
    "benchmarks.console",  # 7: console read units per page view, write units per close
    "benchmarks.scale",  # 8: scale: capacity model from measured stage throughputs
)
