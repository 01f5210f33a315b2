"""Publishing a handler's custom metrics, and forgetting them when metrics are off.

Custom metrics cost $0.30 each a month, so a stack publishes them only with
monitoring on (template.yaml sets POWERTOOLS_METRICS_DISABLED unless
AlarmTopicArn or CreateDashboard is set). Powertools' switch stops the EMF
output but keeps what was added: its flush clears only what it printed, so
a warm container would grow a list per metric for its whole life. And its
`log_metrics` warns "No application metrics to publish" after every
invocation that added none, which for most reads (the console, the API) is
the normal case, not a mistake: the warning filled the local stack's output
and the functions' logs. Handlers use `@published(metrics)` instead of
`@metrics.log_metrics` for both reasons.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

Handler = Callable[[Any, Any], Any]

# Every Metrics() of a process shares one metric set, a plain dict that
# flushes itself when a metric reaches 100 values: threads that add to it
# (the sweeper's closes, an import's writes; in the local stack, both at
# once in one process) take this one lock, whichever module they are in.
# Pure code that may publish (domain/core/limits.report_dropped, inside a
# merge) runs under it too; it is CPU, which the GIL serialises anyway.
LOCK = threading.RLock()


def count(metrics: Metrics, name: str, value: int = 1) -> None:
    """Add to a Count metric from any thread."""
    with LOCK:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def published(metrics: Metrics) -> Callable[[Handler], Handler]:
    """Flush what the invocation measured (also when it raised), then forget it."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                try:
                    if metrics.provider.metric_set:
                        metrics.flush_metrics()  # prints nothing when metrics are off
                finally:
                    metrics.clear_metrics()

        return run

    return wrap
