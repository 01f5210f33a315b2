"""Every storage model shares the container's one DynamoDB client (storage/aws.py).

That client carries the service's timeouts and retries and is built once, in
INIT. A model left out of `share()` builds its own botocore client on its
first call in each container, with pynamodb's default timeouts and retries:
CPU on a request path, and a slow DynamoDB answer waited for far longer.
"""

from __future__ import annotations

import importlib
import pkgutil

from pynamodb.models import Model

import insights.storage
from insights.storage.aws import SharedConnection


def models() -> list[type[Model]]:
    found: dict[str, type[Model]] = {}
    for info in pkgutil.walk_packages(insights.storage.__path__, "insights.storage."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Model) and value is not Model:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_storage_model_uses_the_containers_dynamodb_client() -> None:
    found = models()
    assert len(found) >= 20  # the walk found the storage layer's models
    alone = [
        f"{m.__module__}.{m.__qualname__}"
        for m in found
        if not isinstance(m._get_connection().connection, SharedConnection)
    ]
    assert alone == []
