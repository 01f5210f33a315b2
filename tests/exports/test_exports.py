"""Profiles for SQL: exports on the local stack, read with DuckDB as Athena reads them on AWS."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from insights import clock
from insights.domain.exports import day_of, four_questions, partition
from insights.local import sql
from tests.conftest import MINUTE, Stack
from tests.segments.segments_helpers import count, create
from tests.segments.test_segments_spec_questions import POPULATION, QUESTIONS, build

# The SQL's columns, in QUESTIONS' order.
COLUMNS = {
    "signed_up_last_week": "signed_up_last_week",
    "once_never_back": "signed_up_once_never_came_back",
    "recently_vip": "recently_upgraded_to_vip",
    "stopped_a_month_ago": "active_until_a_month_ago",
}


def export(stack: Stack, account: Any) -> dict[str, Any]:
    started = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(account))
    assert started.status == 202, started.body
    assert started.json()["status"] == "queued"
    stack.cloud.settle()
    job = stack.cloud.http(
        "GET", f"/v1/exports/{started.json()['id']}", headers=stack.auth(account)
    )
    assert job.status == 200, job.body
    return job.json()


def files(stack: Stack, root: Path) -> Path:
    sql.mirror(stack.cloud.s3, stack.cloud.deployment.buckets["ExportsBucket"], root)
    return root


def test_the_four_questions_in_sql_equal_the_segments_api(stack: Stack, tmp_path: Path) -> None:
    acme, rival = build(stack)
    ids = {name: create(stack, acme, rules, name) for name, rules in QUESTIONS.items()}
    api = {name: count(stack, acme, segment_id)["count"] for name, segment_id in ids.items()}
    job = export(stack, acme)
    visible = len(POPULATION) - 1  # the erased user is gone
    assert job["status"] == "succeeded", job
    assert job["users"] == visible and job["files"] >= 1
    account_id = acme.account.account_id
    assert job["partition"] == {"account": account_id, "dt": day_of(clock.now_ms())}
    root = files(stack, tmp_path)
    names, rows = sql.query(
        root, four_questions("insights.users", account_id, job["partition"]["dt"])
    )
    answered = dict(zip(names, rows[0], strict=True))
    assert {name: answered[column] for name, column in COLUMNS.items()} == api
    assert all(api.values())
    # Only Acme's users, each once; the rival's export is its own partition.
    _, uuids = sql.query(root, f"SELECT uuid FROM users WHERE account = '{account_id}'")
    assert sorted(u for (u,) in uuids) == sorted(u for u in POPULATION if u != "erased")
    assert export(stack, rival)["users"] == 3
    _, per_account = sql.query(
        root := files(stack, tmp_path), "SELECT account, count(*) FROM users GROUP BY 1 ORDER BY 2"
    )
    assert [n for _, n in per_account] == [3, visible]
    # Custom attributes keep their type and change time.
    _, plans = sql.query(
        root,
        "SELECT custom['plan'].value, custom['plan'].type, custom['plan'].source "
        f"FROM users WHERE account = '{account_id}' AND uuid = 'upgrader'",
    )
    assert plans == [("VIP", "string", "event")]


def test_a_partition_holds_one_export_and_the_daily_run_covers_every_account(
    stack: Stack, tmp_path: Path
) -> None:
    acme, rival = stack.account("Acme"), stack.account("Rival")
    for account in (acme, rival):
        stack.send(account, [{"uuid": "u1", "type": "click", "user_properties": {"plan": "free"}}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    first = export(stack, acme)
    stack.advance(1)  # the later export (two at the same millisecond are ordered by id)
    second = export(stack, acme)
    assert first["users"] == second["users"] == 1
    keys = [
        o["Key"]
        for o in stack.cloud.s3.list_objects_v2(
            Bucket=stack.cloud.deployment.buckets["ExportsBucket"],
            Prefix=partition(acme.account.account_id, second["partition"]["dt"]),
        )["Contents"]
    ]
    assert keys and all(second["id"] in key for key in keys)
    stack.cloud.run_schedules(["ExportFunction"])  # the daily export: every account
    stack.cloud.settle()
    root = files(stack, tmp_path)
    _, rows = sql.query(root, "SELECT account, uuid, total_sessions FROM users ORDER BY 1")
    assert rows == sorted([(acme.account.account_id, "u1", 1), (rival.account.account_id, "u1", 1)])
    # A file is gzipped JSON Lines, one visible user a line.
    path = next(root.rglob("*.json.gz"))
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert [json.loads(text)["uuid"] for text in lines] == ["u1"]


def test_an_account_runs_one_on_demand_export_at_a_time(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each export scans the whole users table: a client POSTing in a loop gets 409
    and the running job's id, not another scan; the account is free once it ends,
    or once a job that died stops renewing its lease."""
    from insights.services import exports as service
    from insights.storage import exports as export_store

    acme, rival = stack.account(), stack.account()
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(export_store, "send_slice", queued.append)
    first = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme))
    assert first.status == 202, first.body
    again = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme))
    assert again.status == 409, again.body
    assert again.json()["error"] == "export_running"
    assert again.json()["export_id"] == first.json()["id"]
    assert stack.cloud.http("POST", "/v1/exports", headers=stack.auth(rival)).status == 202
    # A slice renews the lease, so a long export keeps the account past one lease.
    stack.advance(service.LEASE_MS / 1000 - 60)
    replace_partitions = service._replace_partitions
    renewed: list[int] = []

    def at_the_slices_end(*args: Any) -> None:
        stack.advance(120)  # past the lease the POST took
        renewed.append(stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme)).status)
        replace_partitions(*args)

    monkeypatch.setattr(service, "_replace_partitions", at_the_slices_end)
    service.run({**queued[0], "positions": None}, lambda: True)
    assert renewed == [409]
    finished = stack.cloud.http(
        "GET", f"/v1/exports/{first.json()['id']}", headers=stack.auth(acme)
    )
    assert finished.json()["status"] == "succeeded"
    after = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme))
    assert after.status == 202, after.body  # the finished job let go
    # This one never runs (its invocation was lost): its lease lapses.
    assert stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme)).status == 409
    stack.advance(service.LEASE_MS / 1000 + 1)
    assert stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme)).status == 202


def test_export_jobs_are_the_accounts_own(stack: Stack) -> None:
    acme, rival = stack.account("Acme"), stack.account("Rival")
    job = export(stack, acme)
    assert job["status"] == "succeeded" and job["users"] == 0
    other = stack.cloud.http("GET", f"/v1/exports/{job['id']}", headers=stack.auth(rival))
    assert other.status == 404 and other.json()["error"] == "export_not_found"
    bad = stack.cloud.http("GET", "/v1/exports/nope", headers=stack.auth(acme))
    assert bad.status == 404
    anonymous = stack.cloud.http("POST", "/v1/exports")
    assert anonymous.status == 401


def test_the_exports_fast_decoding_reads_profiles_as_the_model_does(stack: Stack) -> None:
    from dataclasses import replace

    from insights.storage.core.models import UserItem
    from insights.storage.core.records import profile_from_item
    from insights.storage.exports import profile_of

    acme = stack.account()
    properties = {"plan": "VIP", "seats": 12, "ratio": 0.25, "trial": True, "big": 2**60}
    stack.send(acme, [{"uuid": "u1", "type": "click", "user_properties": properties}])
    stack.send(acme, [{"uuid": "u2", "type": "click"}])
    stack.advance(31 * MINUTE)
    stack.sweep()
    # seats resent unchanged: it keeps the time it changed ("c")
    stack.send(
        acme, [{"uuid": "u1", "type": "click", "user_properties": {"plan": "free", "seats": 12}}]
    )
    stack.advance(31 * MINUTE)
    stack.sweep()
    assert stack.cloud.http("DELETE", "/v1/users/u2", headers=stack.auth(acme)).status == 204
    raw = [
        item
        for item in stack.cloud.dynamodb.scan(TableName="UsersTable")["Items"]
        if item["sk"]["S"] == "profile"
    ]
    assert len(raw) == 2  # u1, and u2's erasure tombstone
    assert any("c" in v["M"] for item in raw for v in item.get("custom", {}).get("M", {}).values())
    for item in raw:
        model = profile_from_item(UserItem.from_raw_data(item)).profile
        assert profile_of(item) == replace(model, recent_sends=())


def test_two_exports_of_one_partition_at_once_leave_the_newer_one_whole(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two on-demand exports of a partition run side by side (the first's slice
    waited past its lease in Lambda's queue; or the daily run and a POST). Each
    removed, when done, every file of the partition that was not its own: the
    other's, written a moment before. Both said succeeded with every user, and
    the partition held none of them."""
    from insights.services import exports as service
    from insights.storage import exports as export_store

    acme = stack.account()
    uuids = ["u1", "u2", "u3"]
    stack.send(acme, [{"uuid": u, "type": "click"} for u in uuids])
    stack.advance(31 * MINUTE)
    stack.sweep()
    for waits in ("older", "newer"):
        queued: list[dict[str, Any]] = []
        monkeypatch.setattr(export_store, "send_slice", queued.append)
        jobs = []
        for _ in range(2):
            started = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme))
            assert started.status == 202, started.body
            jobs.append(started.json()["id"])
            stack.advance(service.LEASE_MS / 1000 + 1)  # the first's slice is late
        older, newer = queued
        first, second = (older, newer) if waits == "older" else (newer, older)
        monkeypatch.setattr(service, "_replace_partitions", _after_one_more(service, second))
        service.run(first, lambda: True)
        monkeypatch.undo()
        for job_id in jobs:
            job = stack.cloud.http("GET", f"/v1/exports/{job_id}", headers=stack.auth(acme))
            assert job.json()["status"] == "succeeded" and job.json()["users"] == 3, job.body
        root = files(stack, tmp_path / waits)
        _, rows = sql.query(root, "SELECT uuid FROM users ORDER BY 1")
        assert [u for (u,) in rows] == uuids, waits


def _after_one_more(service: Any, second: dict[str, Any]) -> Any:
    """_replace_partitions that, the first time, runs `second` whole before going on:
    the first job has written its files, the second finishes before it cleans up."""
    replace = service._replace_partitions
    calls: list[tuple[Any, ...]] = []

    def in_between(*args: Any) -> None:
        calls.append(args)
        if len(calls) == 1:
            service.run(second, lambda: True)
        replace(*args)

    return in_between


def test_sql_refresh_waits_for_a_running_export_then_exports_anew(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`insights sql --refresh` while the account's export runs: not a 409 traceback,
    but that export waited for and a fresh one made (the answer is as of now). Also
    when the job a 409 names is not saved yet (a 404 for a moment), and when
    another export starts meanwhile (a second 409)."""
    import io
    import urllib.error

    from insights.cli import data
    from insights.services import exports as service
    from insights.storage import exports as export_store

    acme = stack.account()
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(export_store, "send_slice", queued.append)
    running = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme)).json()["id"]

    gets: list[str] = []

    def api(state: dict[str, Any], method: str, path: str, key: str | None = None) -> Any:
        """The CLI's call, answered by the stack's handlers; a GET lets the queue run."""
        if method == "GET":
            gets.append(path)
            if len(gets) == 1:  # the job the 409 named, a moment before it is saved
                body = io.BytesIO(b'{"error": "export_not_found"}')
                raise urllib.error.HTTPError(path, 404, "", {}, body)
            if queued:
                service.run(queued.pop(0), lambda: True)
            if len(gets) == 2:  # someone else's export starts as the first one ends
                rival = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme))
                others.append(rival.json()["id"])
        answer = stack.cloud.http(method, path, headers={"Authorization": f"Bearer {key}"})
        if answer.status >= 400:
            body = io.BytesIO(answer.body.encode())
            raise urllib.error.HTTPError(path, answer.status, "", {}, body)
        return answer.json()

    others: list[str] = []
    monkeypatch.setattr(data, "_api", api)
    job = data.export_now({"api_url": ""}, acme.secret_key)
    assert job["status"] == "succeeded" and job["id"] not in (running, *others)
    assert len(others) == 1 and f"/v1/exports/{others[0]}" in gets  # waited for it too
    first = stack.cloud.http("GET", f"/v1/exports/{running}", headers=stack.auth(acme))
    assert first.json()["status"] == "succeeded"


def test_an_export_that_could_not_be_queued_does_not_hold_the_account(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease is taken before the job is saved and its first slice invoked: when
    the invoke fails (Lambda throttles, a network error), the POST fails, and the
    account must not answer 409 for half an hour naming a job that never runs."""
    from botocore.exceptions import ClientError

    from insights.services import exports as service
    from insights.storage import exports as export_store

    acme = stack.account()

    def throttled(message: dict[str, Any]) -> None:
        error = {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}
        raise ClientError(error, "Invoke")

    saved: list[str] = []
    save_job = export_store.save_job
    monkeypatch.setattr(export_store, "send_slice", throttled)
    monkeypatch.setattr(export_store, "save_job", lambda job: (saved.append(job.id), save_job(job)))
    with pytest.raises(ClientError):
        service.start(acme.account.account_id, clock.now_ms())
    lost = export_store.load_job(acme.account.account_id, saved[0])
    assert lost is not None and lost.status == "failed"
    assert "TooManyRequestsException" in (lost.error or "")
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(export_store, "send_slice", queued.append)
    again = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme))
    assert again.status == 202, again.body
    assert len(queued) == 1


def test_lambdas_retry_of_a_failed_slice_neither_scans_again_nor_revives_the_job(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ExportFunction's failed runs are retried twice (EventInvokeConfig). The job
    already said failed and let the account go, so the client may have started
    another: the retry must not run a second scan beside it, nor turn the failed
    job into a succeeded one."""
    from insights.services import exports as service
    from insights.storage import exports as export_store

    acme = stack.account()
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(export_store, "send_slice", queued.append)
    first = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme)).json()["id"]
    replace_partitions = service._replace_partitions

    def s3_down(*args: Any) -> None:
        raise OSError("S3 is down")

    monkeypatch.setattr(service, "_replace_partitions", s3_down)
    with pytest.raises(OSError):
        service.run(queued[0], lambda: True)
    monkeypatch.setattr(service, "_replace_partitions", replace_partitions)
    status = stack.cloud.http("GET", f"/v1/exports/{first}", headers=stack.auth(acme))
    assert status.json()["status"] == "failed"
    second = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme))
    assert second.status == 202, second.body  # the client starts another
    scans: list[int] = []
    scan = service._scan
    monkeypatch.setattr(
        service, "_scan", lambda segment, *rest: (scans.append(segment), scan(segment, *rest))[1]
    )
    stack.advance(60)
    service.run(queued[0], lambda: True)  # Lambda's retry of the failed slice's event
    assert scans == []
    status = stack.cloud.http("GET", f"/v1/exports/{first}", headers=stack.auth(acme))
    assert status.json()["status"] == "failed"
    running = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme))
    assert running.status == 409 and running.json()["export_id"] == second.json()["id"]


def test_a_post_as_the_running_export_ends_is_not_told_it_still_runs(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """take_lease reads who holds the lease after its put was refused; the holder
    may have finished in between, leaving a lapsed lease: the account is free, so
    the POST starts an export rather than answer 409 naming one that succeeded."""
    from insights.services import exports as service
    from insights.storage import exports as export_store

    acme = stack.account()
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(export_store, "send_slice", queued.append)
    first = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme)).json()["id"]
    lease_get = export_store.ExportLeaseItem.get

    def finished_meanwhile(pk: str, **kwargs: Any) -> Any:
        service.run(queued.pop(0), lambda: True)  # the running export ends now
        return lease_get(pk, **kwargs)

    monkeypatch.setattr(export_store.ExportLeaseItem, "get", finished_meanwhile)
    again = stack.cloud.http("POST", "/v1/exports", headers=stack.auth(acme))
    assert again.status == 202, again.body
    assert again.json()["id"] != first
