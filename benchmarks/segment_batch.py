"""A Segment batch at the message cap: CPU of the track handler, and its DynamoDB requests.

Issue 24, point 10: one 500 KB Segment batch could hold ~14,000 tiny
messages and ran for minutes in one invocation (TrackFunction's timeout is
10 s). The cap is 500 messages a request (``domain.segment_api.MAX_MESSAGES``);
this measures requests at the cap in the shapes that cost most:

- ``browser``: 500 ``track`` messages of one user (one context);
- ``server``: 500 ``track`` messages of 500 users, each with its own IP and
  User-Agent (500 contexts: 500 geo lookups and User-Agent parses, the
  per-context ingest requests of ``services.segment_api``);
- ``identify``: 500 ``identify`` messages of 500 users, 30 traits each (the
  attribute path: admission and the profile merge of every user).

The real handler (functions/track/app.py, Powertools logger and metrics) runs
in a subprocess with the template's environment and the storage calls of the
track path replaced by an in-memory dict (``benchmarks.ingest_cpu._stub_storage``),
so the figure is the function's own CPU (``time.process_time``), not
DynamoDB's latency. The DynamoDB requests the same request makes are counted
as they would be sent (BatchGetItem takes 100 keys; one PutItem or
transaction per changed user), so their latency can be added: at ~5 ms each,
the ``server`` shape's 510 requests are ~2.6 s on AWS, as 500 users in one
``/v1/events`` request are.

Run: ``python -m benchmarks.segment_batch [repeats]``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
T0_MS = 1_795_867_200_000
MESSAGES = 500
SHAPES = ("browser", "server", "identify")
TRAITS = 30  # per identify: 500 of them fill most of the 500 KB a batch may take


def _batch(shape: str, round_: int) -> dict[str, Any]:
    from insights.domain.core.timefmt import format_time

    def user_agent(i: int) -> str:
        return (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) Chrome/{100 + i % 30}.0.{i}.{round_} Safari/537.36"
        )

    messages: list[dict[str, Any]] = []
    for i in range(MESSAGES):
        at = format_time(T0_MS + round_ * 60_000 + i)
        if shape == "browser":
            messages.append(
                {"type": "track", "userId": f"r{round_}-one", "event": "Clicked", "timestamp": at}
            )
        elif shape == "server":
            context = {
                "ip": f"81.{i % 250}.{round_ % 250}.{i % 200 + 1}",
                "userAgent": user_agent(i),
            }
            messages.append(
                {
                    "type": "track",
                    "userId": f"r{round_}-u{i}",
                    "event": "Clicked",
                    "timestamp": at,
                    "context": context,
                }
            )
        else:
            traits = {f"trait_{t:02d}": f"value {t}" for t in range(TRAITS)}
            messages.append(
                {"type": "identify", "userId": f"r{round_}-u{i}", "traits": traits, "timestamp": at}
            )
    return {"batch": messages, "sentAt": format_time(T0_MS + round_ * 60_000 + MESSAGES)}


def worker(shape: str, repeats: int) -> dict[str, Any]:
    import contextlib
    import importlib.util
    import os

    from benchmarks.ingest_cpu import _Context, _http_event, _stub_storage
    from insights import clock
    from insights.storage.core import store

    _stub_storage()
    calls = {"batch_get_keys": 0, "batch_gets": 0, "gets": 0, "writes": 0}
    get_sessions, get_profiles, commit = store.get_sessions, store.get_profiles, store.commit

    def counted_batch(read: Any) -> Any:
        def call(pks: Any, consistent: bool = False) -> Any:
            keys = list(dict.fromkeys(pks))
            calls["batch_get_keys"] += len(keys)
            calls["batch_gets"] += -(-len(keys) // 100)
            return read(keys, consistent=consistent)

        return call

    def counted_commit(writes: list[Any]) -> None:
        calls["writes"] += 1 if writes else 0
        commit(writes)

    store.get_sessions = counted_batch(get_sessions)
    store.get_profiles = counted_batch(get_profiles)
    store.commit = counted_commit
    spec = importlib.util.spec_from_file_location("track_app", ROOT / "functions/track/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler, context = module.handler, _Context()
    bodies = [json.dumps(_batch(shape, r)) for r in range(repeats + 1)]
    samples, walls, per_request = [], [], dict(calls)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for r, body in enumerate(bodies):  # the first round warms the imports and is not kept
            event = _http_event(body, T0_MS, "wk_" + "b" * 32)
            event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/batch"
            clock.freeze(T0_MS + r * 60_000 + MESSAGES + 10)
            before = dict(calls)
            started, wall = time.process_time(), time.perf_counter()
            response = handler(event, context)
            cpu, elapsed = time.process_time() - started, time.perf_counter() - wall
            answer = json.loads(response["body"])
            assert response["statusCode"] == 200 and answer["accepted"] == MESSAGES, answer
            if r:
                samples.append(cpu)
                walls.append(elapsed)
                per_request = {k: calls[k] - before[k] for k in calls}
    return {
        "cpu_s": samples,
        "wall_s": walls,
        "dynamodb": per_request,
        "body_bytes": len(bodies[0]),
    }


def main(repeats: int = 5) -> None:
    from benchmarks.enrichment import geo_database
    from benchmarks.ingest_cpu import lambda_env

    env = lambda_env()
    env["GEOIP_DATABASE_PATH"], geo_name = geo_database()
    print(f"Segment batch of {MESSAGES} messages, track handler, storage stubbed ({geo_name})")
    print(f"{'shape':<10} {'body KB':>8} {'CPU s (median, max)':>22} {'DynamoDB requests':>40}")
    for shape in SHAPES:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.segment_batch", "worker", shape, str(repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        data = json.loads(out.stdout.strip().splitlines()[-1])
        cpu = data["cpu_s"]
        db = data["dynamodb"]
        requests = (
            f"{db['batch_gets']} BatchGetItem ({db['batch_get_keys']} keys), {db['writes']} writes"
        )
        print(
            f"{shape:<10} {data['body_bytes'] / 1024:>8.0f} "
            f"{statistics.median(cpu):>13.3f}, {max(cpu):.3f} {requests:>40}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        print(json.dumps(worker(sys.argv[2], int(sys.argv[3]))))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
