"""File imports end to end on the local cloud: S3 drops, the upload API, job status."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError

from insights.storage.core import store
from insights.storage.core.records import user_pk
from insights.storage.core.store import PutProfile
from tests.conftest import MINUTE, Stack, iso

DAY = 24 * 3600


# ------------------------------------------------------------------ helpers
def bucket(stack: Stack) -> str:
    return stack.cloud.deployment.buckets["ImportsBucket"]


def put(stack: Stack, key: str, data: bytes) -> None:
    stack.cloud.s3.put_object(Bucket=bucket(stack), Key=key, Body=data)


def drop(stack: Stack, account: Any, name: str, data: bytes) -> dict[str, Any]:
    """Drop a file where a customer's system would, let the stack run, return the job."""
    put(stack, f"imports/{account.account.account_id}/{name}", data)
    stack.cloud.settle()
    return latest(stack, account)


def upload(
    stack: Stack, account: Any, filename: str, data: bytes, mapping: dict | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"filename": filename}
    if mapping is not None:
        body["mapping"] = mapping
    started = stack.cloud.http("POST", "/v1/imports", headers=stack.auth(account), body=body)
    assert started.status == 201, started.body
    assert started.json()["status"] == "pending"
    form = started.json()["upload"]
    sent = stack.cloud.post_object(form["url"], form["fields"], data, filename)
    assert sent.status == 204, sent.body
    stack.cloud.settle()
    return get_job(stack, account, started.json()["id"])


def latest(stack: Stack, account: Any) -> dict[str, Any]:
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(account))
    assert listed.status == 200, listed.body
    return listed.json()["imports"][0]


def get_job(stack: Stack, account: Any, import_id: str) -> dict[str, Any]:
    got = stack.cloud.http("GET", f"/v1/imports/{import_id}", headers=stack.auth(account))
    assert got.status == 200, got.body
    return got.json()


def report(job: dict[str, Any]) -> list[str]:
    """The error report through its presigned link, as a user would fetch it."""
    assert job["error_report"] is not None, job
    response = requests.get(job["error_report"]["url"], timeout=10)
    assert response.status_code == 200
    return response.text.splitlines()


def stored(account: Any, uuid: str) -> dict[str, tuple[Any, str]]:
    """A user's stored custom attributes (visible or not): name -> (value, source)."""
    found = store.get_profile(user_pk(account.account.account_id, uuid))
    if found is None:
        return {}
    return {name: (c.value, c.source) for name, c in found.profile.custom.items()}


def seen(stack: Stack, account: Any, *uuids: str, props: dict | None = None) -> None:
    """Give users a closed session, so their attributes are visible."""
    response = stack.send(account, [{"uuid": u, "user_properties": props or {}} for u in uuids])
    assert response.status == 200, response.body
    stack.advance(31 * MINUTE)
    stack.sweep()
    stack.cloud.settle()


def custom(stack: Stack, account: Any, uuid: str) -> dict[str, Any]:
    response = stack.user(account, uuid)
    assert response.status == 200, response.body
    return response.json()["custom"]


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


PEOPLE_CSV = (
    b"\xef\xbb\xbfuuid,role,plan,note\r\n"
    b'u1,admin,VIP,"says ""hi"", twice"\r\n'
    b'u2,viewer,,"line one\r\nline two"\r\n'
    b"u3,,free,\r\n"
    b"\r\n"
)
PEOPLE = [
    {"uuid": "u1", "role": "admin", "plan": "VIP", "note": 'says "hi", twice'},
    {"uuid": "u2", "role": "viewer", "plan": None, "note": "line one\r\nline two"},
    {"uuid": "u3", "role": "", "plan": "free"},
]
EXPECTED = {
    "u1": {"role": "admin", "plan": "VIP", "note": 'says "hi", twice'},
    "u2": {"role": "viewer", "note": "line one\r\nline two"},
    "u3": {"plan": "free"},
}
FORMATS = {
    "people.csv": PEOPLE_CSV,
    "people.csv.gz": gz(PEOPLE_CSV),
    "people.jsonl": jsonl(PEOPLE),
    "people.jsonl.gz": gz(jsonl(PEOPLE)),
}


# ------------------------------------------------------------- formats
@pytest.mark.parametrize("path", ["drop", "upload"])
def test_each_format_through_each_path(stack: Stack, path: str) -> None:
    # One stack, one account per format: deploying a stack per case costs more
    # than the imports themselves.
    for name, data in FORMATS.items():
        acme = stack.account(name)
        seen(stack, acme, "u1", "u2", "u3", props={"role": "old", "note": "old"})
        if path == "drop":
            job = drop(stack, acme, name, data)
            source = "s3"
        else:
            job = upload(stack, acme, name, data)
            source = "csv"
        assert job["status"] == "succeeded", (name, job)
        assert job["rows"] == {"total": 3, "read": 3, "imported": 3, "rejected": 0}, name
        assert job["error"] is None and job["error_report"] is None, name
        assert job["source"] == source and job["filename"] == name
        for uuid, values in EXPECTED.items():
            got = custom(stack, acme, uuid)
            for attr, value in values.items():
                assert got[attr]["value"] == value and got[attr]["source"] == source, name
        # An empty cell leaves the attribute unchanged.
        assert custom(stack, acme, "u3")["role"]["value"] == "old", name
        assert custom(stack, acme, "u3")["note"]["value"] == "old", name


def test_rows_for_users_not_seen_yet_wait_hidden_until_their_first_session(
    stack: Stack,
) -> None:
    acme = stack.account()
    job = drop(stack, acme, "people.csv", PEOPLE_CSV)
    assert job["status"] == "succeeded"
    assert stack.user(acme, "u1").status == 404
    assert stored(acme, "u1")["plan"] == ("VIP", "s3")
    seen(stack, acme, "u1")
    assert custom(stack, acme, "u1")["plan"]["value"] == "VIP"
    assert stack.standard(acme, "u1")["total_sessions"] == 1


def test_expired_users_get_no_record_beyond_a_hidden_fresh_one(stack: Stack) -> None:
    acme = stack.account()
    seen(stack, acme, "u1", props={"name": "Ada"})
    stack.advance(181 * DAY)
    drop(stack, acme, "late.csv", b"uuid,plan\nu1,VIP\n")
    assert stack.user(acme, "u1").status == 404  # still expired, still hidden
    assert stored(acme, "u1") == {"plan": ("VIP", "s3")}  # the old record is not revived
    seen(stack, acme, "u1")
    standard = stack.standard(acme, "u1")
    assert standard["total_sessions"] == 1  # a fresh record, first_seen reset
    assert set(custom(stack, acme, "u1")) == {"plan"}


# ---------------------------------------------------------------- mapping
def test_mapping_renames_subsets_types_and_timestamp_column(stack: Stack) -> None:
    acme = stack.account()
    seen(stack, acme, "a-1")
    data = (
        b"User ID,Job Title,Age,Member,Signed Up,Secret,updated\n"
        b"a-1,Engineer,41,yes,2026-01-02,x,2026-03-01T12:00:00Z\n"
    )
    mapping = {
        "uuid": "User ID",
        "columns": ["Job Title", "Age", "Member", "Signed Up"],
        "rename": {"Job Title": "role", "Signed Up": "signup"},
        "types": {"Age": "number", "Member": "boolean", "Signed Up": "date"},
        "timestamp": "updated",
    }
    job = upload(stack, acme, "crm.csv", data, mapping)
    assert job["status"] == "succeeded" and job["mapping"] == mapping
    got = custom(stack, acme, "a-1")
    assert set(got) == {"role", "Age", "Member", "signup"}
    assert got["role"] == {
        "value": "Engineer",
        "updated_at": "2026-03-01T12:00:00.000Z",
        "source": "csv",
    }
    assert got["Age"]["value"] == 41
    assert got["Member"]["value"] is True
    assert got["signup"]["value"] == "2026-01-02T00:00:00.000Z"


def test_an_accounts_mapping_json_applies_to_its_drops(stack: Stack) -> None:
    acme = stack.account()
    seen(stack, acme, "u1")
    account_id = acme.account.account_id
    put(
        stack,
        f"imports/{account_id}/mapping.json",
        json.dumps(
            {"uuid": "id", "rename": {"Job Title": "role"}, "types": {"score": "number"}}
        ).encode(),
    )
    job = drop(stack, acme, "crm.csv", b"id,Job Title,score\nu1,CTO,9.5\n")
    assert job["status"] == "succeeded"
    assert (
        len(stack.cloud.http("GET", "/v1/imports", headers=stack.auth(acme)).json()["imports"]) == 1
    )
    got = custom(stack, acme, "u1")
    assert got["role"]["value"] == "CTO" and got["score"]["value"] == 9.5


def test_a_bad_mapping_json_fails_the_drop_with_its_reason(stack: Stack) -> None:
    acme = stack.account()
    put(stack, f"imports/{acme.account.account_id}/mapping.json", b'{"types": {"a": "int"}}')
    job = drop(stack, acme, "x.csv", b"uuid,a\nu1,1\n")
    assert job["status"] == "failed"
    assert (
        job["error"]
        == "mapping.json: mapping.types['a'] must be one of string, number, date, boolean"
    )


def test_most_recent_wins_against_events_by_row_timestamp(stack: Stack) -> None:
    acme = stack.account()
    seen(stack, acme, "u1", "u2", props={"role": "from-event"})
    event_time = (
        store.get_profile(user_pk(acme.account.account_id, "u1")).profile.custom["role"].updated_at
    )
    older, newer = iso(event_time - 60_000), iso(event_time + 60_000)
    drop(
        stack,
        acme,
        "roles.csv",
        f"uuid,role,timestamp\nu1,old-file,{older}\nu2,new-file,{newer}\n".encode(),
    )
    assert custom(stack, acme, "u1")["role"]["value"] == "from-event"
    assert custom(stack, acme, "u2")["role"] == {
        "value": "new-file",
        "updated_at": newer,
        "source": "s3",
    }


# ------------------------------------------------------- whole-file failures
WHOLE_FILE_FAILURES = [
    (
        "a.csv",
        b"id,role\nu1,admin\n",
        "no 'uuid' column in the header: it identifies the users",
    ),
    ("a.csv", b"uuid,role,role\nu1,a,b\n", "duplicate column name in the header: 'role'"),
    (
        "a.csv",
        b"uuid,role\nu1,admin\nu2,caf\xe9\n",
        "not valid UTF-8: byte 25 (save the file as UTF-8)",
    ),
    (
        "a.csv",
        b'uuid,role\nu1,admin\nu2,"unclosed\n',
        "row 3 is not valid CSV: unexpected end of data",
    ),
    ("a.csv", b"", "the file is empty: the first row must name the columns"),
    (
        "a.jsonl",
        b'{"uuid": "u1", "role": "admin"}\nnot json\n',
        "line 2 is not valid JSON: Expecting value",
    ),
    (
        "a.jsonl",
        b'{"id": "u1", "role": "admin"}\n',
        "no line has a 'uuid' key: it identifies the users",
    ),
    (
        "a.csv.gz",
        b"\x1f\x8b\x08\x00garbage",
        "not a valid gzip file: it is damaged or cut short",
    ),
    (
        "a.xlsx",
        b"PK\x03\x04",
        "unsupported file type: the name must end in .csv, .csv.gz, .jsonl or .jsonl.gz",
    ),
]


def test_whole_file_failures_change_nothing(stack: Stack) -> None:
    for n, (name, data, reason) in enumerate(WHOLE_FILE_FAILURES):
        acme = stack.account(f"Case {n}")
        job = drop(stack, acme, name, data)
        assert job["status"] == "failed", (name, data)
        assert job["error"] == reason
        assert job["rows"]["imported"] == 0 and job["error_report"] is None
        assert stored(acme, "u1") == {}  # the good first row was not applied either


# ------------------------------------------------------- row-level rejections
def test_bad_rows_are_rejected_into_the_report_and_good_rows_go_through(stack: Stack) -> None:
    acme = stack.account()
    long_value = "x" * 1025
    long_uuid = "u" * 257
    data = (
        "uuid,age,vip,since,name,timestamp\n"
        "good-1,41,yes,2026-01-01,Ada,\n"
        ",1,no,,,\n"
        "bad-age,forty,,,,\n"
        "bad-vip,,perhaps,,,\n"
        "bad-date,,,01/02/2026,,\n"
        f"bad-long,,,,{long_value},\n"
        f"{long_uuid},,,,,\n"
        "bad-ts,,,,,yesterday\n"
        "bad-width,,,,,,extra\n"
        "good-2,7,,,,\n"
    ).encode()
    mapping = {"types": {"age": "number", "vip": "boolean", "since": "date"}}
    job = upload(stack, acme, "rows.csv", data, mapping)
    assert job["status"] == "partially_succeeded"
    assert job["rows"] == {"total": 10, "read": 10, "imported": 2, "rejected": 8}
    assert report(job) == [
        "row,column,reason",
        "3,uuid,empty uuid",
        "4,age,not a number",
        '5,vip,"not a boolean (true/false, yes/no, 1/0)"',
        "6,since,not a date: '01/02/2026'",
        "7,name,string longer than 1024 characters",
        "8,uuid,uuid longer than 256 characters",
        "9,timestamp,not an ISO-8601 timestamp: 'yesterday'",
        "10,,the row has 7 fields; the header has 6",
    ]
    assert job["error_report"]["lines"] == 8
    parts = f"reports/{acme.account.account_id}/{job['id']}/parts/"
    listed = stack.cloud.s3.list_objects_v2(Bucket=bucket(stack), Prefix=parts)
    assert listed.get("KeyCount") == 0  # the per-slice parts are cleaned up
    assert stored(acme, "good-1") == {
        "age": (41, "csv"),
        "vip": (True, "csv"),
        "since": ("2026-01-01T00:00:00.000Z", "csv"),
        "name": ("Ada", "csv"),
    }
    assert stored(acme, "good-2") == {"age": (7, "csv")}
    assert stored(acme, "bad-age") == {}


def test_a_file_where_every_row_is_bad_fails_with_its_report(stack: Stack) -> None:
    acme = stack.account()
    job = drop(stack, acme, "bad.jsonl", jsonl([{"uuid": ""}, {"uuid": "u", "x": [1]}]))
    assert job["status"] == "failed"
    assert job["error"] == "every row was rejected: see the error report"
    assert report(job)[1:] == ["1,uuid,empty uuid", '2,x,"must be a string, number or boolean"']


# ------------------------------------------------ continuation and retries
def _big_csv(n: int) -> bytes:
    lines = ["uuid,score,team"]
    for i in range(n):
        lines.append(f'user-{i % 17},{i},"team {i % 5}, ""x"""' if i % 9 else f",{i},bad")
    return ("\r\n".join(lines) + "\r\n").encode()


def _outcome(stack: Stack, account: Any, job: dict[str, Any]) -> dict[str, Any]:
    users = {f"user-{i}": stored(account, f"user-{i}") for i in range(17)}
    users = {u: {k: v[0] for k, v in attrs.items()} for u, attrs in users.items()}
    return {"rows": job["rows"], "status": job["status"], "report": report(job), "users": users}


@pytest.mark.parametrize("name", ["big.csv", "big.csv.gz"])
def test_a_file_across_many_invocations_gives_the_same_result_as_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    data = _big_csv(20)
    data = gz(data) if name.endswith(".gz") else data
    # Timestamps make both runs' values comparable: same file, same times.
    one = stack.account("One")
    job_one = drop(stack, one, name, data)
    assert job_one["invocations"] == 2  # validate, apply
    many = stack.account("Many")
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "4")
    monkeypatch.setenv("IMPORT_RESERVE_MS", str(10**9))  # always "low on time"
    job_many = drop(stack, many, name, data)
    assert job_many["invocations"] >= 10
    assert _outcome(stack, many, job_many) == _outcome(stack, one, job_one)
    assert job_many["rows"] == {"total": 20, "read": 20, "imported": 17, "rejected": 3}


def test_the_same_notification_twice_runs_the_import_once(stack: Stack) -> None:
    acme = stack.account()
    job = drop(stack, acme, "people.csv", PEOPLE_CSV)
    invocations = stack.cloud.invocations["ImportFunction"]
    notification = stack.cloud.s3_deliveries[-1]
    stack.cloud.invoke("ImportFunction", json.loads(json.dumps(notification)))
    stack.cloud.settle()
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(acme)).json()["imports"]
    assert len(listed) == 1 and listed[0] == job
    assert stack.cloud.invocations["ImportFunction"] == invocations + 1  # the duplicate only


def test_the_same_file_again_is_a_new_import_that_writes_nothing(stack: Stack) -> None:
    acme = stack.account()
    data = b"uuid,plan,timestamp\nu1,VIP,2026-01-01T00:00:00Z\n"
    drop(stack, acme, "a.csv", data)
    before = store.get_profile(user_pk(acme.account.account_id, "u1"))
    again = drop(stack, acme, "a.csv", data)
    assert again["status"] == "succeeded" and again["rows"]["imported"] == 1
    after = store.get_profile(user_pk(acme.account.account_id, "u1"))
    assert after.version == before.version  # a row that changes nothing writes nothing


def test_a_slice_that_crashes_is_retried_and_counters_stay_true(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = stack.account()
    monkeypatch.setenv("IMPORT_BATCH_ROWS", "2")
    real = store.commit
    calls = {"n": 0}

    def flaky(writes: list[Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the Lambda died here")
        real(writes)

    monkeypatch.setattr(store, "commit", flaky)
    data = "uuid,n\n" + "".join(f"u{i},{i}\n" for i in range(6))
    stack.cloud._on_error = lambda text: None  # the crash is expected
    job = drop(stack, acme, "a.csv", data.encode())
    assert calls["n"] > 6  # the crashed slice ran again
    assert job["status"] == "succeeded"
    assert job["rows"] == {"total": 6, "read": 6, "imported": 6, "rejected": 0}
    assert all(stored(acme, f"u{i}") == {"n": (str(i), "s3")} for i in range(6))


def test_throttled_writes_are_retried_and_counted_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = stack.account()
    real = store.commit
    throttled = {"n": 0}

    def slow(writes: list[Any]) -> None:
        if throttled["n"] < 3:
            throttled["n"] += 1
            cause = ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "PutItem",
            )
            raise PutError("throttled", cause)
        real(writes)

    monkeypatch.setattr(store, "commit", slow)
    job = drop(stack, acme, "a.csv", b"uuid,n\nu1,1\nu2,2\n")
    assert throttled["n"] == 3
    assert job["rows"] == {"total": 2, "read": 2, "imported": 2, "rejected": 0}
    assert stored(acme, "u1") == {"n": ("1", "s3")} and stored(acme, "u2") == {"n": ("2", "s3")}


@pytest.mark.parametrize("row_is_newer", [True, False])
def test_an_import_racing_a_session_close_keeps_the_most_recent_value(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, row_is_newer: bool
) -> None:
    acme = stack.account()
    sent = stack.send(acme, [{"uuid": "u1", "user_properties": {"role": "from-event"}}])
    assert sent.status == 200
    stack.advance(31 * MINUTE)  # the session is due; the sweeper has not run yet
    from insights import clock

    event_time = clock.now_ms() - 31 * MINUTE * 1000
    row_time = event_time + (60_000 if row_is_newer else -60_000)
    real = store.commit
    raced: list[str] = []

    def racing(writes: list[Any]) -> None:
        import_write = any(
            isinstance(w, PutProfile) and any(c.source == "s3" for c in w.profile.custom.values())
            for w in writes
        )
        if import_write and not raced:
            raced.append("close")
            stack.sweep()  # the session closes between the import's read and its write
        real(writes)

    monkeypatch.setattr(store, "commit", racing)
    job = drop(
        stack, acme, "r.csv", f"uuid,role,timestamp\nu1,from-file,{iso(row_time)}\n".encode()
    )
    assert raced == ["close"] and job["status"] == "succeeded"
    assert stack.standard(acme, "u1")["total_sessions"] == 1  # the close was not lost
    role = custom(stack, acme, "u1")["role"]
    assert role["value"] == ("from-file" if row_is_newer else "from-event")


# -------------------------------------------------------- upload API, access
def test_an_upload_to_another_accounts_prefix_is_refused(stack: Stack) -> None:
    acme, other = stack.account("Acme"), stack.account("Other")
    started = stack.cloud.http(
        "POST", "/v1/imports", headers=stack.auth(acme), body={"filename": "x.csv"}
    ).json()
    fields = dict(started["upload"]["fields"])
    own_key = fields["key"]
    assert own_key.startswith(f"imports/{acme.account.account_id}/uploads/{started['id']}/")
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert {"key": own_key} in policy["conditions"]
    fields["key"] = f"imports/{other.account.account_id}/evil.csv"
    refused = stack.cloud.post_object(started["upload"]["url"], fields, b"uuid,role\nu1,owned\n")
    assert refused.status == 403 and "Policy Condition failed" in refused.body
    stack.cloud.settle()
    assert stored(other, "u1") == {}
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(other)).json()
    assert listed == {"imports": [], "next": None}
    # The API never takes a key or a path from the client.
    for body in (
        {"filename": f"../{other.account.account_id}/x.csv"},
        {"filename": "x.csv", "key": f"imports/{other.account.account_id}/x.csv"},
        {"filename": "x.csv", "account_id": other.account.account_id},
    ):
        response = stack.cloud.http("POST", "/v1/imports", headers=stack.auth(acme), body=body)
        assert response.status == 400 and response.json()["error"] == "invalid_import"


def test_uploads_over_the_size_cap_are_refused(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPORT_MAX_UPLOAD_BYTES", "20")
    acme = stack.account()
    started = stack.cloud.http(
        "POST", "/v1/imports", headers=stack.auth(acme), body={"filename": "x.csv"}
    ).json()
    assert started["upload"]["max_bytes"] == 20
    form = started["upload"]
    refused = stack.cloud.post_object(form["url"], form["fields"], b"uuid\n" + b"u1\n" * 10)
    assert refused.status == 403 and "exceeds the maximum allowed size" in refused.body


def test_imports_api_auth_listing_and_other_accounts(stack: Stack) -> None:
    acme, other = stack.account("Acme"), stack.account("Other")
    assert stack.cloud.http("GET", "/v1/imports").status == 401
    write_key = {"Authorization": f"Bearer {acme.write_key}"}
    assert stack.cloud.http("GET", "/v1/imports", headers=write_key).status == 403
    first = drop(stack, acme, "one.csv", b"uuid,a\nu1,1\n")
    stack.advance(1)
    second = drop(stack, acme, "two.csv", b"uuid,a\nu1,2\n")
    listed = stack.cloud.http("GET", "/v1/imports?limit=5", headers=stack.auth(acme)).json()
    assert [j["id"] for j in listed["imports"]] == [second["id"], first["id"]]
    assert listed["next"] is None
    page = stack.cloud.http("GET", "/v1/imports?limit=1", headers=stack.auth(acme)).json()
    assert [j["id"] for j in page["imports"]] == [second["id"]] and page["next"] == second["id"]
    page = stack.cloud.http(
        "GET", f"/v1/imports?limit=1&after={page['next']}", headers=stack.auth(acme)
    ).json()
    assert [j["id"] for j in page["imports"]] == [first["id"]] and page["next"] is None
    assert first["started_at"] and first["finished_at"] and first["duration_seconds"] >= 0
    hidden = stack.cloud.http("GET", f"/v1/imports/{first['id']}", headers=stack.auth(other))
    assert hidden.status == 404 and hidden.json()["error"] == "import_not_found"
    bad = stack.cloud.http(
        "POST",
        "/v1/imports",
        headers=stack.auth(acme),
        body={"filename": "x.csv", "mapping": {"types": {"a": "int"}}},
    )
    assert bad.status == 400
    assert (
        bad.json()["message"] == "mapping.types['a'] must be one of string, number, date, boolean"
    )


def test_accounts_without_user_records_refuse_imports(stack: Stack) -> None:
    acme = stack.account(unique_user_ids=False)
    refused = stack.cloud.http(
        "POST", "/v1/imports", headers=stack.auth(acme), body={"filename": "x.csv"}
    )
    assert refused.status == 400 and "unique_user_ids is off" in refused.json()["message"]
    job = drop(stack, acme, "x.csv", b"uuid,a\nu1,1\n")
    assert job["status"] == "failed" and "unique_user_ids is off" in job["error"]
    assert stored(acme, "u1") == {}


def test_processed_files_are_tagged_for_the_lifecycle_rule_and_mapping_json_is_not(
    stack: Stack,
) -> None:
    acme = stack.account()
    prefix = f"imports/{acme.account.account_id}"
    put(stack, f"{prefix}/mapping.json", b"{}")
    drop(stack, acme, "a.csv", b"uuid,a\nu1,1\n")
    s3 = stack.cloud.s3

    def tags(key: str) -> list[dict[str, str]]:
        return s3.get_object_tagging(Bucket=bucket(stack), Key=key)["TagSet"]

    assert tags(f"{prefix}/a.csv") == [{"Key": "insights-import", "Value": "processed"}]
    assert tags(f"{prefix}/mapping.json") == []


def test_a_slice_that_dies_before_queueing_the_next_one_is_picked_up_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from insights.storage.imports import objects

    acme = stack.account()
    real = objects.send_continuation
    sent = {"n": 0}

    def lossy(message: dict[str, Any], **kw: Any) -> None:
        sent["n"] += 1
        if sent["n"] == 2:  # the first slice advanced the job, then the Lambda died
            raise RuntimeError("network gone")
        real(message, **kw)

    monkeypatch.setattr(objects, "send_continuation", lossy)
    stack.cloud._on_error = lambda text: None
    job = drop(stack, acme, "a.csv", b"uuid,n\nu1,1\n")
    assert job["status"] == "succeeded" and job["rows"]["imported"] == 1
    assert stored(acme, "u1") == {"n": ("1", "s3")}


def test_report_cells_cannot_run_as_spreadsheet_formulas(stack: Stack) -> None:
    acme = stack.account()
    job = upload(stack, acme, "f.csv", b"uuid,=SUM(A1)\nu1,x\n", {"types": {"=SUM(A1)": "number"}})
    assert report(job) == ["row,column,reason", "2,'=SUM(A1),not a number"]


def test_a_slice_that_keeps_failing_fails_its_import_instead_of_hanging(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = stack.account()

    def broken(writes: list[Any]) -> None:
        raise RuntimeError("DynamoDB is having a bad day")

    monkeypatch.setattr(store, "commit", broken)
    stack.cloud._on_error = lambda text: None
    job = drop(stack, acme, "a.csv", b"uuid,n\nu1,1\nu2,2\n")
    assert job["status"] == "failed"
    assert job["error"] == "the import stopped after 5 failed attempts at row 2"
    assert job["invocations"] == 2  # the validation slice, then the last failed attempt


def test_imported_attributes_feed_segments_and_hidden_users_stay_out(stack: Stack) -> None:
    acme = stack.account()
    seen(stack, acme, "u1", "u2")
    drop(stack, acme, "plans.csv", b"uuid,plan\nu1,VIP\nu2,free\nu3,VIP\n")
    rules = {"all": [{"attribute": "custom.plan", "op": "equals", "value": "VIP"}]}
    preview = stack.cloud.http(
        "POST", "/v1/segments/preview", headers=stack.auth(acme), body={"rules": rules}
    )
    assert preview.status == 200, preview.body
    assert preview.json()["count"] == 1  # u3 is not seen yet: stored, not a member
    assert [u["uuid"] for u in preview.json()["users"]] == ["u1"]


def test_files_outside_a_known_accounts_prefix_import_nothing_and_expire(stack: Stack) -> None:
    acme = stack.account()
    for key in ("imports/acc_nobody/x.csv", "imports/stray.csv"):
        put(stack, key, b"uuid,plan\nu1,VIP\n")
    stack.cloud.settle()
    assert stack.cloud.items("ImportsTable") == []
    assert stack.cloud.items("UsersTable") == []
    for key in ("imports/acc_nobody/x.csv", "imports/stray.csv"):
        tags = stack.cloud.s3.get_object_tagging(Bucket=bucket(stack), Key=key)["TagSet"]
        assert tags == [{"Key": "insights-import", "Value": "processed"}]
    listed = stack.cloud.http("GET", "/v1/imports", headers=stack.auth(acme)).json()
    assert listed == {"imports": [], "next": None}
