"""Settings read from the environment the template gives every function."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    accounts_table: str
    sessions_table: str
    users_table: str
    region: str
    geoip_database_path: str
    aggregates_table: str = "AggregatesTable"


def load() -> Settings:
    env = os.environ
    # Defaults are the template's logical ids: the local stack names tables so.
    return Settings(
        accounts_table=env.get("ACCOUNTS_TABLE", "AccountsTable"),
        sessions_table=env.get("SESSIONS_TABLE", "SessionsTable"),
        users_table=env.get("USERS_TABLE", "UsersTable"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        geoip_database_path=env.get("GEOIP_DATABASE_PATH", ""),
        aggregates_table=env.get("AGGREGATES_TABLE", "AggregatesTable"),
    )
