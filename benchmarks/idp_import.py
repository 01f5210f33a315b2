"""IdP functions' cold start: import CPU of ScimFunction, OidcFunction, SamlFunction and
scim2-models.

    .venv/bin/python -m benchmarks.idp_import [--runs N]

scim2-models is measured alone to show why SCIM is hand-written;
OidcFunction's figure includes joserfc and cryptography, which ship with it;
SamlFunction's includes lxml (its handler imports it), and "+ signxml" what
its first verification adds (signxml and cryptography, imported then).

Each import runs in a fresh interpreter (CPU time, as part 2 measures cold
starts), paired with an ``import boto3`` right before it so that load on the
shared machine hits both sides of each ratio alike. scim2-models is a dev
dependency here (scim2-tester needs it); the Lambda layer does not ship it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks.ingest_cpu import ROOT, _import_seconds, compile_project, lambda_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = lambda_env()
    compile_project()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "scim2_models_only.py"
        models.write_text("import scim2_models\n")
        saml_first = Path(tmp) / "saml_first_verification.py"
        saml_first.write_text(
            "import sys\n"
            f"sys.path.insert(0, {str(ROOT / 'functions' / 'saml')!r})\n"
            "import app\n"
            "import signxml, cryptography.x509\n"
        )
        targets = {
            "ScimFunction handler": str(ROOT / "functions" / "scim" / "app.py"),
            "OidcFunction handler": str(ROOT / "functions" / "oidc" / "app.py"),
            "SamlFunction handler": str(ROOT / "functions" / "saml" / "app.py"),
            "SamlFunction handler + signxml": str(saml_first),
            "import scim2_models": str(models),
        }
        ratios: dict[str, list[float]] = {name: [] for name in targets}
        boto3_ms: list[float] = []
        for _ in range(args.runs):
            for name, target in targets.items():
                base = _import_seconds("boto3", env)
                seconds = _import_seconds(target, env)
                boto3_ms.append(base * 1000)
                ratios[name].append(seconds / base)
    runs = args.runs * len(targets)
    print(f"import boto3: median {statistics.median(boto3_ms):.0f} ms CPU ({runs} runs)")
    for name, values in ratios.items():
        print(
            f"{name}: median {statistics.median(values):.2f}x import boto3 "
            f"(min {min(values):.2f}, max {max(values):.2f}; goal for a handler: 1.5x)"
        )


if __name__ == "__main__":
    main()
