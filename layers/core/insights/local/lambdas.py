"""Lambda, locally: handlers loaded from their code directories and invoked in-process.

Each function has its own concurrency bound (its ReservedConcurrentExecutions,
else DEFAULT_CONCURRENCY) and every AWS call an invocation makes is checked
against the function's policies in template.yaml (iam.py).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import importlib.util
import json
import sys
import threading
import time
import traceback
import uuid as uuidlib
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics

from insights.local.aws import ACCOUNT_ID, REGION
from insights.local.iam import AccessDenied
from insights.local.template import FunctionSpec

if TYPE_CHECKING:
    from insights.local.iam import PolicyChecker

# Concurrent invocations of one function a function has no reserved concurrency.
# AWS's bound is the account's (1,000); locally the machine is the bound.
DEFAULT_CONCURRENCY = 8

# The function whose invocation is running in this thread. Threads a handler
# starts (the sweeper's parallel scan) are checked as that function too: the
# executor's submit is patched to carry the caller's context (_install_policy_check).
_current: contextvars.ContextVar[tuple[LambdaRuntime, str] | None] = contextvars.ContextVar(
    "insights_local_invocation", default=None
)
_patched = False


def install_policy_check() -> None:
    """Check every botocore call made during an invocation against the policies."""
    global _patched
    if _patched:
        return
    import botocore.client
    from botocore.exceptions import ClientError

    original = botocore.client.BaseClient._make_api_call

    def checked(client: Any, operation: str, params: dict[str, Any]) -> Any:
        current = _current.get()
        if current is not None and not any(client is own for own in current[0].own_clients):
            cloud, function = current
            service = client.meta.service_model.service_name
            try:
                cloud.iam.check(function, service, operation, params, cloud.arn_of)
            except AccessDenied as exc:
                raise ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": str(exc)}}, operation
                ) from None
            if service == "lambda" and operation == "Invoke":
                return cloud.invoke_async(params)  # moto cannot run a function without Docker
        return original(client, operation, params)

    botocore.client.BaseClient._make_api_call = checked  # type: ignore[method-assign]

    submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit_in_context(pool: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return submit(pool, contextvars.copy_context().run, fn, *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit_in_context  # type: ignore[method-assign]
    _patched = True


# Powertools' logger keys (function_name, request id, cold_start, what a handler
# appends) live on the formatter, one dict per service name. On AWS a process
# runs one invocation at a time; here every function shares one process and one
# service name ("insights"), so side-by-side invocations wrote over each other's
# keys and one function's lines carried another's name. Each invocation keeps
# its own keys instead (install_invocation_logging).
_invocation_keys: contextvars.ContextVar[dict[Any, dict[str, Any]] | None] = contextvars.ContextVar(
    "insights_local_log_keys", default=None
)


class _KeysPerInvocation:
    """LambdaPowertoolsFormatter.log_format: the invocation's own copy while one runs.

    Outside invocations (module imports, Logger() at load time) it is the
    formatter's own dict, which each invocation starts from.
    """

    def __get__(self, formatter: Any, owner: Any = None) -> Any:
        if formatter is None:
            return self
        shared = formatter.__dict__.setdefault("log_format", {})
        mine = _invocation_keys.get()
        if mine is None:
            return shared
        if formatter not in mine:
            mine[formatter] = dict(shared)
        return mine[formatter]

    def __set__(self, formatter: Any, value: dict[str, Any]) -> None:
        mine = _invocation_keys.get()
        if mine is None:
            formatter.__dict__["log_format"] = value
        else:
            mine[formatter] = value


def install_invocation_logging() -> None:
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    if not isinstance(LambdaPowertoolsFormatter.__dict__.get("log_format"), _KeysPerInvocation):
        LambdaPowertoolsFormatter.log_format = _KeysPerInvocation()  # type: ignore[assignment]


class FakeLambdaContext:
    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name = spec.logical_id
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = spec.memory
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.logical_id}"
        )
        self.aws_request_id = str(uuidlib.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.logical_id}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LambdaRuntime:
    """LocalCloud's functions: load each handler once, invoke within its concurrency."""

    functions: dict[str, FunctionSpec]
    invocations: dict[str, int]
    own_clients: list[Any]
    iam: PolicyChecker
    arn_of: Callable[[str, str], str]
    _modules: dict[str, ModuleType]
    _slots: dict[str, threading.BoundedSemaphore]
    _running: threading.local
    _load_lock: threading.Lock
    _count_lock: threading.Lock

    function_names: dict[str, str]  # a function's name (FunctionName, else its id) -> its id
    async_pending: list[tuple[str, dict[str, Any]]]
    _on_error: Callable[[str], None]

    def invoke_async(self, params: dict[str, Any]) -> dict[str, Any]:
        """A function's `Invoke` of another (InvocationType Event): run when pumped."""
        from botocore.exceptions import ClientError

        name = str(params["FunctionName"]).rsplit(":function:", 1)[-1].split(":")[0]
        if name not in self.function_names:
            error = {"Code": "ResourceNotFoundException", "Message": f"Function not found: {name}"}
            raise ClientError({"Error": error}, "Invoke")
        if params.get("InvocationType") != "Event":
            # The service only ever invokes itself asynchronously (ExportFunction's
            # slices); a waiting call would hold a local worker for nothing.
            error = {
                "Code": "InvalidParameterValueException",
                "Message": f"the local cloud runs InvocationType Event only, not "
                f"{params.get('InvocationType', 'RequestResponse')}: {name}",
            }
            raise ClientError({"Error": error}, "Invoke")
        payload = json.loads(params.get("Payload") or b"{}")
        with self._count_lock:
            self.async_pending.append((self.function_names[name], payload))
        return {"StatusCode": 202}

    def pump_async(self) -> int:
        """Run the asynchronous invocations made so far (and those they make)."""
        done = 0
        while True:
            with self._count_lock:
                if not self.async_pending:
                    return done
                function, payload = self.async_pending.pop(0)
            done += 1
            try:
                self.invoke(function, payload)
            except Exception:
                self._on_error(
                    f"{function} failed on an asynchronous invocation:\n" + traceback.format_exc()
                )

    def handler(self, function: str) -> Callable[[dict, Any], Any]:
        with self._load_lock:  # concurrent first invocations import the module once
            return self._load(function)

    def _load(self, function: str) -> Callable[[dict, Any], Any]:
        module = self._modules.get(function)
        if module is None:
            spec = self.functions[function]
            module_file, _, attr = spec.handler.rpartition(".")
            path = spec.code_dir / f"{module_file}.py"
            loader = importlib.util.spec_from_file_location(f"insights_fn_{function}", path)
            assert loader is not None and loader.loader is not None
            module = importlib.util.module_from_spec(loader)
            sys.modules[loader.name] = module
            loader.loader.exec_module(module)
            self._modules[function] = module
        _, _, attr = self.functions[function].handler.rpartition(".")
        return getattr(module, attr)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run one event, waiting for a free slot of the function's concurrency.

        AWS would throttle a synchronous call over the reserved concurrency
        (and retry an asynchronous one); locally the call waits its turn. A
        nested invoke of a function this thread already runs (a test calling
        in) takes no second slot.
        """
        handler = self.handler(function)
        running: set[str] = self._running.__dict__.setdefault("functions", set())
        nested = function in running
        slot = self._slots.get(function)
        if slot is not None and not nested:
            slot.acquire()
        running.add(function)
        token = _current.set((self, function))
        keys = _invocation_keys.set({})  # threads the handler starts share them (submit)
        try:
            with self._count_lock:
                self.invocations[function] = self.invocations.get(function, 0) + 1
            return handler(event, FakeLambdaContext(self.functions[function]))
        finally:
            _invocation_keys.reset(keys)
            _current.reset(token)  # a nested invoke restores the caller
            if not nested:
                running.discard(function)
                if slot is not None:
                    slot.release()
            # Powertools skips the per-invocation flush when metrics are
            # disabled but still prints once 100 values pile up: drop them
            # as the flush would have.
            Metrics().clear_metrics()
