"""Publishing a handler's custom metrics, and forgetting them when metrics are off.

Custom metrics cost $0.30 each a month, so a stack publishes them only with
monitoring on (template.yaml sets POWERTOOLS_METRICS_DISABLED unless
AlarmTopicArn or CreateDashboard is set). Powertools' switch stops the EMF
output but keeps what was added: its flush clears only what it printed, so
a warm container would grow a list per metric for its whole life. Handlers
use `@published(metrics)` instead of `@metrics.log_metrics` for that reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics

Handler = Callable[[Any, Any], Any]


def published(metrics: Metrics) -> Callable[[Handler], Handler]:
    """Flush the invocation's metrics as `log_metrics` does, then forget them."""

    def wrap(handler: Handler) -> Handler:
        logged = metrics.log_metrics(handler)

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            try:
                return logged(event, context)
            finally:
                metrics.clear_metrics()

        return run

    return wrap
