"""Creating accounts (from the CLI, with AWS credentials: no API key exists yet)."""

from __future__ import annotations

from dataclasses import dataclass

from insights import clock
from insights.domain.core.accounts import AccountSettings, new_account_id, new_key
from insights.storage.core import accounts as account_store
from insights.storage.core.accounts import Account


@dataclass(frozen=True, slots=True)
class NewAccount:
    account: Account
    write_key: str
    secret_key: str

    @property
    def account_id(self) -> str:
        return self.account.account_id

    def as_dict(self) -> dict:
        return {
            "account_id": self.account.account_id,
            "name": self.account.name,
            "write_key": self.write_key,
            "secret_key": self.secret_key,
            "settings": self.account.settings.as_dict(),
        }


def create_account(name: str, settings: AccountSettings | None = None) -> NewAccount:
    if not name.strip():
        raise ValueError("name: must not be empty")
    account = Account(
        account_id=new_account_id(),
        name=name.strip(),
        created_at=clock.now_ms(),
        settings=settings or AccountSettings(),
    )
    write_key, secret_key = new_key("write"), new_key("secret")
    account_store.create_account(account, {"write": write_key, "secret": secret_key})
    return NewAccount(account, write_key, secret_key)
