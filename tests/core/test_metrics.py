"""Custom metrics: published only when someone watches, and never kept when off."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights.metrics import published


def handler_adding_a_metric() -> tuple[Metrics, object]:
    metrics = Metrics(namespace="Test", service="test")

    @published(metrics)
    def handler(event: dict, context: object) -> str:
        metrics.add_metric(name="Things", unit=MetricUnit.Count, value=1)
        return "done"

    return metrics, handler


def test_metrics_off_prints_nothing_and_keeps_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics, handler = handler_adding_a_metric()
    for _ in range(3):
        assert handler({}, None) == "done"
        # Powertools' own flush keeps a disabled set: a warm container would grow it.
        assert metrics.provider.metric_set == {}
    assert '"_aws"' not in capsys.readouterr().out


def test_metrics_on_are_printed_once_per_invocation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics, handler = handler_adding_a_metric()
    handler({}, None)
    handler({}, None)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    # One value per line: nothing carried over from the invocation before.
    assert [line["Things"] in (1.0, [1.0]) for line in lines] == [True, True]
    assert metrics.provider.metric_set == {}
