"""The dated us-east-1 list prices the suite prices usage with (benchmarks/prices.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).with_name("prices.json")


def load_prices(path: Path = PRICES_PATH) -> dict[str, Any]:
    prices = json.loads(path.read_text())
    for key in ("date", "source", "dynamodb", "lambda", "api_gateway_http", "scheduler", "s3"):
        if key not in prices:
            raise ValueError(f"{path}: missing {key!r}")
    return prices
