"""SQL over the exports, locally and in process: DuckDB reads the same files Athena reads.

The local stack's ExportFunction writes exports to its local bucket exactly
as on AWS (gzipped JSON Lines under users/account=<id>/dt=<day>/). `mirror`
copies them into the data directory and `connect` opens DuckDB on them with
the Glue table's columns, as `insights.users` (the Glue database's default
name), so the SQL of docs/sql.md runs unchanged. No server: DuckDB is a
library (the local extra's, never in a Lambda artifact).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from insights.domain.exports import PREFIX

# The Glue table's columns (template.yaml, ExportsUsersTable) in DuckDB's types.
CUSTOM = (
    "MAP(VARCHAR, STRUCT(value VARCHAR, type VARCHAR, updated_at TIMESTAMP, "
    "changed_at TIMESTAMP, source VARCHAR))"
)
COLUMNS = {
    "uuid": "VARCHAR",
    "first_seen": "TIMESTAMP",
    "last_seen": "TIMESTAMP",
    "total_sessions": "INTEGER",
    "total_session_duration": "DOUBLE",
    "avg_session_duration": "DOUBLE",
    "avg_time_between_sessions": "DOUBLE",
    "country": "VARCHAR",
    "region": "VARCHAR",
    "city": "VARCHAR",
    "browser_name": "VARCHAR",
    "browser_version": "VARCHAR",
    "custom": CUSTOM,
    "exported_at": "TIMESTAMP",
}


class NoExport(Exception):
    """Nothing has been exported yet."""


def mirror(s3: Any, bucket: str, root: Path) -> int:
    """Make `root` hold the bucket's export files (new ones fetched, gone ones removed);
    returns the files fetched."""
    wanted: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for item in page.get("Contents", []):
            wanted[item["Key"]] = int(item["Size"])
    fetched = 0
    for key, size in wanted.items():
        path = root / key
        if path.exists() and path.stat().st_size == size:
            continue  # export files are written once, under a new name per job
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
        fetched += 1
    if (root / PREFIX).exists():
        for path in (root / PREFIX).rglob("*.json.gz"):
            if path.relative_to(root).as_posix() not in wanted:
                path.unlink()
    return fetched


def connect(root: Path) -> Any:
    """DuckDB with `insights.users` (and `users`) over the files under `root`."""
    import duckdb

    files = sorted((root / PREFIX).glob("account=*/dt=*/*.json.gz")) if root.exists() else []
    if not files:
        raise NoExport("no export yet")
    columns = ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS.items())
    pattern = (root / PREFIX).as_posix() + "/account=*/dt=*/*.json.gz"
    source = (
        f"read_json('{pattern}', format = 'newline_delimited', compression = 'gzip', "
        f"hive_partitioning = true, hive_types = {{'account': 'VARCHAR', 'dt': 'VARCHAR'}}, "
        f"columns = {{{columns}}})"
    )
    con = duckdb.connect()
    con.execute("CREATE SCHEMA insights")
    con.execute(f"CREATE VIEW insights.users AS SELECT * FROM {source}")
    con.execute("CREATE VIEW users AS SELECT * FROM insights.users")
    return con


def query(root: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    con = connect(root)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description or []]
        return names, cursor.fetchall()
    finally:
        con.close()
