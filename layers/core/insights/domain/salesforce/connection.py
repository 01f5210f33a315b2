"""A Salesforce connection's config, the pure part: login host, credentials, mapping.

Every field of `PUT /v1/integrations/salesforce` is checked here, and a
problem names its field (``ConfigError``). How a connection reads its
object and turns records into rows is ``records.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from insights.domain.core.limits import MAX_PROPERTY_NAME_CHARS
from insights.domain.core.timefmt import MINUTE_MS

Flow = Literal["client_credentials", "jwt_bearer"]
FLOWS: tuple[Flow, ...] = ("client_credentials", "jwt_bearer")
CONFIG_FIELDS = frozenset(
    {"login_host", "credentials", "object", "uuid_field", "fields", "rename", "filter"}
    | {"sync_interval_minutes"}
)
CREDENTIAL_FIELDS: dict[Flow, tuple[str, ...]] = {
    "client_credentials": ("consumer_key", "consumer_secret"),
    "jwt_bearer": ("consumer_key", "private_key", "username"),
}
MIN_INTERVAL_MINUTES = 15
MAX_INTERVAL_MINUTES = 24 * 60
DEFAULT_INTERVAL_MINUTES = 60
MAX_FIELDS = 100
MAX_FILTER_CHARS = 4000
# An object's or field's API name: Contact, Plan__c, ns__Plan__c.
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_MY_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*(\.sandbox)?\.my\.salesforce\.com$")


class ConfigError(ValueError):
    """The connection config is wrong: the message names the field and why."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True, slots=True)
class LoginHost:
    """Where to sign in: production, sandbox, or a My Domain."""

    name: str  # "production" | "sandbox" | the My Domain host
    domain: str  # simple-salesforce's `domain`: login, test, acme.my
    audience: str  # the JWT bearer flow's `aud` domain: login or test

    @property
    def is_my_domain(self) -> bool:
        return self.name not in ("production", "sandbox")


def parse_login_host(raw: Any) -> LoginHost:
    if raw == "production":
        return LoginHost("production", "login", "login")
    if raw == "sandbox":
        return LoginHost("sandbox", "test", "test")
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError("login_host", 'must be "production", "sandbox" or your My Domain URL')
    text = raw.strip().lower()
    try:
        url = urlparse(text if "//" in text else f"https://{text}")
        host, port, user = url.hostname or "", url.port, "@" in url.netloc
    except ValueError:  # e.g. an unclosed IPv6 bracket, a port out of range: no host
        host, port, user = "", None, False
    if port is not None or user:
        # Sign-in always goes to https on 443 as the bare host: said, not dropped.
        raise ConfigError("login_host", "must be the My Domain host alone, without a port or user")
    if not _MY_DOMAIN.match(host):
        raise ConfigError(
            "login_host",
            "a My Domain URL looks like https://acme.my.salesforce.com "
            "(or https://acme--dev.sandbox.my.salesforce.com for a sandbox)",
        )
    audience = "test" if ".sandbox." in host else "login"
    return LoginHost(host, host.removesuffix(".salesforce.com"), audience)


@dataclass(frozen=True, slots=True)
class Credentials:
    flow: Flow
    values: dict[str, str]  # as CREDENTIAL_FIELDS names them; kept in Secrets Manager


def parse_credentials(raw: Any, host: LoginHost) -> Credentials:
    if not isinstance(raw, dict):
        raise ConfigError("credentials", "must be an object with a flow and its values")
    flow = raw.get("flow")
    if flow not in FLOWS:
        raise ConfigError("credentials.flow", f"must be one of {', '.join(FLOWS)}")
    needed = CREDENTIAL_FIELDS[flow]
    unknown = sorted(set(raw) - {"flow", *needed})
    if unknown:
        raise ConfigError(
            f"credentials.{unknown[0]}", f"not used by the {flow} flow ({', '.join(needed)})"
        )
    values: dict[str, str] = {}
    for name in needed:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 10_000:
            raise ConfigError(f"credentials.{name}", "required, a non-empty string")
        values[name] = value.strip()
    if flow == "jwt_bearer" and "PRIVATE KEY-----" not in values["private_key"]:
        raise ConfigError("credentials.private_key", "must be the connected app's PEM private key")
    if flow == "client_credentials" and not host.is_my_domain:
        # Salesforce serves this flow on My Domain hosts only.
        raise ConfigError(
            "login_host", "the client_credentials flow needs your My Domain URL as login_host"
        )
    return Credentials(flow, values)


@dataclass(frozen=True, slots=True)
class Connection:
    """What to import and how often (everything but the credentials)."""

    login_host: LoginHost
    flow: Flow
    object: str
    uuid_field: str
    fields: tuple[str, ...]
    rename: dict[str, str] = field(default_factory=dict)
    filter: str | None = None
    sync_interval_minutes: int = DEFAULT_INTERVAL_MINUTES

    def attribute(self, field_name: str) -> str:
        return self.rename.get(field_name, field_name)

    @property
    def interval_ms(self) -> int:
        return self.sync_interval_minutes * MINUTE_MS

    def as_dict(self) -> dict[str, Any]:
        return {
            "login_host": self.login_host.name,
            "flow": self.flow,
            "object": self.object,
            "uuid_field": self.uuid_field,
            "fields": list(self.fields),
            "rename": dict(self.rename),
            "filter": self.filter,
            "sync_interval_minutes": self.sync_interval_minutes,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Connection:
        return cls(
            login_host=parse_login_host(raw["login_host"]),
            flow=raw["flow"],
            object=raw["object"],
            uuid_field=raw["uuid_field"],
            fields=tuple(raw["fields"]),
            rename=dict(raw.get("rename") or {}),
            filter=raw.get("filter"),
            sync_interval_minutes=int(raw["sync_interval_minutes"]),
        )


def _api_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not _API_NAME.match(raw):
        raise ConfigError(
            where,
            "must be an API name (letters, digits and _, starting with a letter; "
            "e.g. Contact, Plan__c); relationship paths with '.' are not supported",
        )
    return raw


def parse_connection(body: Any, *, flow: Flow | None) -> tuple[Connection, Credentials | None]:
    """A PUT body: the connection and, if sent, new credentials.

    `flow` is the stored credentials' flow (None when none are stored): a
    body without credentials keeps them, so it must not change the host in a
    way they cannot use.
    """
    if not isinstance(body, dict):
        raise ConfigError("body", "must be a JSON object")
    unknown = sorted(set(body) - CONFIG_FIELDS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown field; known: {', '.join(sorted(CONFIG_FIELDS))}")
    host = parse_login_host(body.get("login_host"))
    credentials = None
    if body.get("credentials") is not None:
        credentials = parse_credentials(body["credentials"], host)
        flow = credentials.flow
    elif flow is None:
        raise ConfigError("credentials", "required when connecting for the first time")
    elif flow == "client_credentials" and not host.is_my_domain:
        raise ConfigError(
            "login_host", "the client_credentials flow needs your My Domain URL as login_host"
        )
    sobject = _api_name(body.get("object"), "object")
    uuid_field = _api_name(body.get("uuid_field"), "uuid_field")
    raw_fields = body.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise ConfigError("fields", "must be a non-empty list of field API names")
    if len(raw_fields) > MAX_FIELDS:
        raise ConfigError("fields", f"at most {MAX_FIELDS} fields")
    fields = tuple(_api_name(f, f"fields[{i}]") for i, f in enumerate(raw_fields))
    lowered = [f.lower() for f in fields]  # API names are case-insensitive
    if len(set(lowered)) != len(lowered):
        raise ConfigError("fields", "names a field twice")
    if uuid_field.lower() in lowered:
        raise ConfigError("fields", f"{uuid_field} is the uuid_field; it is not imported as well")
    rename: dict[str, str] = {}
    raw_rename = body.get("rename")
    if raw_rename is None:
        raw_rename = {}
    if not isinstance(raw_rename, dict):
        raise ConfigError("rename", "must be an object of field -> attribute name")
    for source, target in raw_rename.items():
        if source not in fields:
            raise ConfigError(f"rename.{source}", "renames a field that is not in fields")
        if not isinstance(target, str) or not 1 <= len(target) <= MAX_PROPERTY_NAME_CHARS:
            raise ConfigError(
                f"rename.{source}",
                f"must be an attribute name of 1-{MAX_PROPERTY_NAME_CHARS} chars",
            )
        rename[source] = target
    targets = [rename.get(f, f) for f in fields]
    if len(set(targets)) != len(targets):
        raise ConfigError("rename", "two fields would set the same attribute")
    soql_filter = body.get("filter")
    if soql_filter is not None:
        soql_filter = check_filter(soql_filter)
    interval = body.get("sync_interval_minutes", DEFAULT_INTERVAL_MINUTES)
    if (
        not isinstance(interval, int)
        or isinstance(interval, bool)
        or not MIN_INTERVAL_MINUTES <= interval <= MAX_INTERVAL_MINUTES
    ):
        raise ConfigError(
            "sync_interval_minutes",
            f"must be a whole number from {MIN_INTERVAL_MINUTES} to {MAX_INTERVAL_MINUTES}",
        )
    assert flow is not None
    connection = Connection(
        host, flow, sobject, uuid_field, fields, rename, soql_filter or None, interval
    )
    return connection, credentials


def check_filter(raw: Any) -> str:
    """A SOQL condition, ANDed with the sync's own: it may not close its parentheses."""
    if not isinstance(raw, str) or len(raw) > MAX_FILTER_CHARS:
        raise ConfigError("filter", f"must be a SOQL condition of at most {MAX_FILTER_CHARS} chars")
    depth, quoted, escaped = 0, False, False
    for char in raw:
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "'":
                quoted = False
            continue
        if char == "'":
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError("filter", "closes a parenthesis it did not open")
        elif char == ";":
            raise ConfigError("filter", "a condition has no ';'")
    if quoted or depth:
        raise ConfigError("filter", "has an unclosed quote or parenthesis")
    return raw.strip()
