"""The local stack's data across restarts: tables, files, queued messages, clock.

`insights serve` saves a snapshot into `<data dir>/snapshot/` when it stops
(Ctrl-C, SIGTERM, SIGHUP) and every minute while something changes, and
restores it on the next start. Plain files, readable with any tool:

- `dynamodb/<table>.jsonl`: one item per line, in DynamoDB's typed JSON;
- `s3/<bucket>/<key>`: each object's bytes;
- `sqs/<queue>.jsonl`: messages waiting in the template's queues (an import
  interrupted half-way resumes);
- `meta.json`: the stack clock's offset (`/_local/clock?advance=`), the demo
  account's keys (stored hashed in the tables; kept here so the banner can
  show them again) and when the snapshot was taken.

Tables are restored straight into moto's backend, with no stream records
(the consumers already saw those writes before the restart); objects are
put through S3 and their notifications dropped (their imports already ran);
messages are sent again.

moto has no persistence of its own, and pickling its backends would tie the
data to moto's internal classes; this format outlives a moto upgrade.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from insights import clock
from insights.local import motopatch

if TYPE_CHECKING:
    from insights.local.cloud import LocalCloud

FORMAT = 1
SAVE_CHUNK = 2_000  # items serialized per hold of moto's lock


def save(cloud: LocalCloud, data_dir: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write a complete snapshot beside the old one, then swap them."""
    target = data_dir / "snapshot"
    fresh = data_dir / "snapshot.new"
    shutil.rmtree(fresh, ignore_errors=True)
    (fresh / "dynamodb").mkdir(parents=True)
    backend = motopatch.backend()
    counts: dict[str, int] = {}
    for logical, table_name in cloud.deployment.tables.items():
        with motopatch.LOCK:
            table = backend.tables[table_name]
            items = table.all_items()
        counts[logical] = 0
        with (fresh / "dynamodb" / f"{logical}.jsonl").open("w") as out:
            # In chunks, so requests go on meanwhile; each key is written as it
            # is at that moment (one deleted since the listing is left out).
            for start in range(0, len(items), SAVE_CHUNK):
                with motopatch.LOCK:
                    now = [
                        table.get_item(item.hash_key, item.range_key)
                        for item in items[start : start + SAVE_CHUNK]
                    ]
                    lines = [
                        json.dumps(item.to_json()["Attributes"], separators=(",", ":"))
                        for item in now
                        if item is not None
                    ]
                out.writelines(line + "\n" for line in lines)
                counts[logical] += len(lines)
    for logical, bucket in cloud.deployment.buckets.items():
        root = fresh / "s3" / logical
        for page in cloud.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                path = root / obj["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                body = cloud.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
                with path.open("wb") as out:
                    shutil.copyfileobj(body, out)
    (fresh / "sqs").mkdir()
    for logical, messages in _queued(cloud).items():
        with (fresh / "sqs" / f"{logical}.jsonl").open("w") as out:
            for body in messages:
                out.write(json.dumps(body) + "\n")
    meta = {
        "format": FORMAT,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "clock_offset_ms": clock.offset_ms(),
        "items": counts,
        **(extra or {}),
    }
    (fresh / "meta.json").write_text(json.dumps(meta, indent=2))
    old = data_dir / "snapshot.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _queued(cloud: LocalCloud) -> dict[str, list[str]]:
    """Message bodies waiting (or in flight) in the template's queues, oldest first."""
    from moto.sqs.models import sqs_backends

    from insights.local.aws import ACCOUNT_ID, REGION

    queues = sqs_backends[ACCOUNT_ID][REGION].queues
    found: dict[str, list[str]] = {}
    for logical in cloud.deployment.queues:
        queue = queues.get(logical)
        if queue is not None:
            found[logical] = [m.body for m in list(queue._messages)]
    return found


def load_meta(data_dir: Path) -> dict[str, Any] | None:
    for name in ("snapshot", "snapshot.old"):
        path = data_dir / name / "meta.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
    return None


def restore(cloud: LocalCloud, data_dir: Path) -> dict[str, Any] | None:
    """Load the last snapshot into a freshly deployed cloud; its meta, or None if none."""
    kept = [data_dir / n for n in ("snapshot", "snapshot.old")]
    source = next((path for path in kept if (path / "meta.json").exists()), None)
    if source is None:
        return None
    meta = dict(json.loads((source / "meta.json").read_text()))
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    def item(hash_value: Any, range_value: Any, attrs: dict[str, Any]) -> Any:
        # Item() re-sums the whole item's size for every attribute it sets (its
        # 400 KB check): the same object, filled at once, restores much faster.
        made = Item.__new__(Item)
        made.hash_key, made.range_key = hash_value, range_value
        made.attrs = LimitedSizeDict({k: DynamoType(v) for k, v in attrs.items()})
        return made

    backend = motopatch.backend()
    for logical, table_name in cloud.deployment.tables.items():
        path = source / "dynamodb" / f"{logical}.jsonl"
        if not path.exists():
            continue
        table = backend.tables[table_name]
        with motopatch.LOCK, path.open() as lines:
            for line in lines:
                attrs = json.loads(line)
                hash_value = DynamoType(attrs[table.hash_key_attr])
                if table.range_key_attr is None:
                    table.items[hash_value] = item(hash_value, None, attrs)
                else:
                    range_value = DynamoType(attrs[table.range_key_attr])
                    table.items[hash_value][range_value] = item(hash_value, range_value, attrs)
    for logical, bucket in cloud.deployment.buckets.items():
        root = source / "s3" / logical
        if root.exists():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                key = path.relative_to(root).as_posix()
                with path.open("rb") as body:
                    cloud.s3.put_object(Bucket=bucket, Key=key, Body=body)
    cloud.drop_s3_notifications()  # those files' imports ran before the restart
    for logical, url in cloud.deployment.queues.items():
        path = source / "sqs" / f"{logical}.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                cloud.sqs.send_message(QueueUrl=url, MessageBody=json.loads(line))
    offset = int(meta.get("clock_offset_ms") or 0)
    if offset > clock.offset_ms():
        clock.advance((offset - clock.offset_ms()) / 1000)
    return meta
