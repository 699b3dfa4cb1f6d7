"""[store] url picks the backend: a SQLite file (the default, or `path`) or a PostgreSQL database;
a bad URL is a settings error naming `store.url`, an unreachable server an error naming it too."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.core.config import load_settings
from dialer.core.errors import ConfigError, DueCallError, StoreError
from dialer.store.opening import open_store, sqlite_file
from dialer.store.pg import migrations as pg_migrations
from dialer.store.postgres import PostgresStore
from dialer.store.sqlite import SqliteStore
from tests.support.postgres import postgres_db, postgres_server

__all__ = ["postgres_db", "postgres_server"]  # the fixtures


def _settings(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "duecall.toml"
    path.write_text(f"[store]\n{store}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('url = "mysql://x@y/z"', "a sqlite:/// or postgresql:// URL, not 'mysql'"),
        ('url = "sqlite:///"', "sqlite:/// names no file"),
        ("url = 5", "store.url"),
    ],
)
def test_a_bad_url_is_a_settings_error_naming_the_setting(tmp_path: Path, line: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_settings(tmp_path, line))
    message = str(caught.value)
    assert "store.url" in message and says in message, message


async def test_a_sqlite_url_or_the_path_opens_that_file(tmp_path: Path) -> None:
    for line, name in (('url = "sqlite:///data/u.db"', "data/u.db"), ('path = "p.db"', "p.db")):
        s = load_settings(_settings(tmp_path, line))
        store = await open_store(s)
        try:
            assert isinstance(store, SqliteStore) and await store.schema_version() > 0
        finally:
            await store.close()
        assert sqlite_file(s) == tmp_path / name and (tmp_path / name).is_file()


async def test_a_postgresql_url_opens_that_database(tmp_path: Path, postgres_db: str) -> None:
    s = load_settings(_settings(tmp_path, f'url = "{postgres_db}"'))
    store = await open_store(s)
    try:
        assert isinstance(store, PostgresStore) and await store.schema_version() == pg_migrations()[-1][0]
    finally:
        await store.close()
    with pytest.raises(DueCallError, match=r"\[store\] url: this command reads a SQLite store's file"):
        sqlite_file(s)


async def test_an_unreachable_server_is_an_error_naming_the_setting_without_the_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://duecall:secret@127.0.0.1:1/duecall"
    s = load_settings(_settings(tmp_path, f'url = "{url}"'))
    with pytest.raises(StoreError) as caught:
        await open_store(s)
    message = str(caught.value)
    assert message.startswith("[store] url: cannot connect to PostgreSQL at postgresql://duecall:***@"), (
        message
    )
    assert "secret" not in message


async def test_a_wrong_password_is_an_error_naming_the_setting_without_the_password(
    tmp_path: Path, postgres_db: str
) -> None:
    wrong = postgres_db.replace("duecall:", "duecall:not-the-password-", 1)
    s = load_settings(_settings(tmp_path, f'url = "{wrong}"'))
    with pytest.raises(StoreError) as caught:
        await open_store(s)
    message = str(caught.value)
    assert message.startswith("[store] url: cannot connect to PostgreSQL at postgresql://duecall:***@"), (
        message
    )
    assert "not-the-password" not in message and "password authentication failed" in message
