"""Custom metrics: published only when someone watches, and never kept when off."""

from __future__ import annotations

import json
import warnings

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from insights.metrics import published
from tests.conftest import Stack


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


@pytest.mark.parametrize("disabled", ["true", "false"])
def test_an_invocation_that_measured_nothing_publishes_and_warns_nothing(
    disabled: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Most reads add no metric: nothing to publish is normal, not worth a warning
    # (Powertools' log_metrics warns "No application metrics to publish" each time).
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", disabled)
    metrics = Metrics(namespace="Test", service="test")

    @published(metrics)
    def handler(event: dict, context: object) -> str:
        return "done"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert handler({}, None) == "done"
    assert [str(w.message) for w in caught] == []
    assert '"_aws"' not in capsys.readouterr().out


def test_the_stack_warns_nothing_on_requests_that_measure_nothing(stack: Stack) -> None:
    acme = stack.account()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert stack.cloud.http("GET", "/v1/account", headers=stack.auth(acme)).status == 200
        assert stack.cloud.http("GET", "/v1/segments", headers=stack.auth(acme)).status == 200
        stack.sweep()
    assert [str(w.message) for w in caught if "metrics" in str(w.message)] == []


def test_metrics_added_before_an_error_are_still_published(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics = Metrics(namespace="Test", service="test")

    @published(metrics)
    def handler(event: dict, context: object) -> str:
        metrics.add_metric(name="Things", unit=MetricUnit.Count, value=1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        handler({}, None)
    assert any('"Things"' in line for line in capsys.readouterr().out.splitlines())
    assert metrics.provider.metric_set == {}
