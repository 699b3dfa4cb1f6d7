"""Auditors: argon2id hashes, sign-in checks, the chain event, and the `user` / `serve` commands
(on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from audit.users import (
    AuditorError,
    authenticate,
    create_user,
    disable_user,
    get_user,
    list_users,
    set_password,
)
from dialer.core.config import Settings, load_settings
from dialer.store import Store
from dialer.store.opening import open_store
from duecall.cli.audit_web import serve, user
from duecall.cli.errors import DueCallGroup
from tests.support.audit_seed import DAY1, backend_url
from tests.support.config import make_settings
from tests.support.raw_db import tamper
from tests.support.stores import backend_store

__all__ = ["backend_store", "backend_url"]  # the fixtures, on both backends

PASSWORD = "a long enough password"


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


async def test_create_hashes_with_argon2id_and_logs_it(store: Store) -> None:
    created = await create_user(store, "ann", "admin", PASSWORD, "operator:root", DAY1)
    assert created.is_admin and created.disabled_at is None
    rows = await store.fetch_all("SELECT password_hash FROM auditors WHERE name='ann'")
    stored = next(iter(rows))[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    events = await store.fetch_all("SELECT kind, actor, data FROM audit_events")
    assert [(k, a, json.loads(d)) for k, a, d in events] == [
        ("auditor.created", "operator:root", {"name": "ann", "role": "admin"})
    ]
    with pytest.raises(AuditorError, match="exists"):
        await create_user(store, "ann", "auditor", PASSWORD, "operator:root", DAY1)
    with pytest.raises(AuditorError, match="12 characters"):
        await create_user(store, "bo", "auditor", "short", "operator:root", DAY1)
    with pytest.raises(AuditorError, match="role"):
        await create_user(store, "bo", "root", PASSWORD, "operator:root", DAY1)
    with pytest.raises(AuditorError, match="user name"):
        await create_user(store, "Bo Bo", "auditor", PASSWORD, "operator:root", DAY1)


async def test_authenticate_refuses_wrong_unknown_and_disabled(store: Store) -> None:
    await create_user(store, "ann", "auditor", PASSWORD, "operator:root", DAY1)
    assert (await authenticate(store, "ann", PASSWORD)) is not None
    assert await authenticate(store, "ann", PASSWORD + "x") is None
    assert await authenticate(store, "nobody", PASSWORD) is None
    await disable_user(store, "ann", "operator:root", DAY1)
    assert await authenticate(store, "ann", PASSWORD) is None
    with pytest.raises(AuditorError):
        await disable_user(store, "ann", "operator:root", DAY1)
    assert [u.name for u in await list_users(store) if u.disabled_at] == ["ann"]


async def test_new_password_changes_the_credential_and_is_logged(store: Store) -> None:
    before = await create_user(store, "ann", "auditor", PASSWORD, "operator:root", DAY1)
    with pytest.raises(AuditorError, match="12 characters"):
        await set_password(store, "ann", "short", "operator:root", DAY1)
    with pytest.raises(AuditorError, match="no such user"):
        await set_password(store, "nobody", PASSWORD, "operator:root", DAY1)
    await set_password(store, "ann", "another long password", "operator:root", DAY1)
    after = await get_user(store, "ann")
    assert after is not None and after.credential != before.credential and len(after.credential) == 64
    assert await authenticate(store, "ann", PASSWORD) is None
    assert await authenticate(store, "ann", "another long password") is not None
    events = await store.fetch_all("SELECT kind, data FROM audit_events ORDER BY seq")
    assert [(k, json.loads(d)) for k, d in events][-1] == ("auditor.password_changed", {"name": "ann"})


async def test_weaker_hash_is_upgraded_on_sign_in(store: Store) -> None:
    await create_user(store, "ann", "auditor", PASSWORD, "operator:root", DAY1)
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    await tamper(store, "UPDATE auditors SET password_hash=? WHERE name='ann'", (weak,))
    assert await authenticate(store, "ann", PASSWORD) is not None
    rows = await store.fetch_all("SELECT password_hash FROM auditors WHERE name='ann'")
    upgraded = next(iter(rows))[0]
    assert upgraded != weak and not PasswordHasher().check_needs_rehash(upgraded)


def _root(settings: Settings) -> click.Group:
    """A stand-in for `duecall audit`: the same ctx.obj and error boundary as duecall.cli's main group."""

    @click.group(cls=DueCallGroup)
    @click.pass_context
    def root(ctx: click.Context) -> None:
        ctx.obj = {"settings": load_settings(settings.root / "duecall.toml")}

    root.add_command(user)
    root.add_command(serve)
    return root


def test_user_commands(backend_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, store={"url": backend_url})
    cli = _root(settings)
    runner = CliRunner()
    r = runner.invoke(cli, ["user", "add", "ann", "--role", "admin"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["user", "add", "bob", "--password-stdin"], input=f"{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["user", "add", "cy", "--password-stdin"], input="short\n")
    assert r.exit_code == 1 and "at least 12 characters" in r.output
    r = runner.invoke(cli, ["user", "password", "bob", "--password-stdin"], input="a newer long password\n")
    assert r.exit_code == 0 and "open sessions have ended" in r.output, r.output
    r = runner.invoke(cli, ["user", "password", "zed", "--password-stdin"], input=f"{PASSWORD}\n")
    assert r.exit_code == 1 and "zed: no such user" in r.output
    r = runner.invoke(cli, ["user", "disable", "bob"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["user", "list"])
    lines = r.output.splitlines()
    assert lines[0].startswith("ann\tadmin\tcreated ") and lines[1].startswith("bob\tauditor\t")
    assert "disabled" in lines[1] and "disabled" not in lines[0]
    assert "--port" in runner.invoke(cli, ["serve", "--help"]).output

    async def actors() -> list[str]:
        store = await open_store(settings)
        try:
            rows = await store.fetch_all("SELECT actor FROM audit_events WHERE kind LIKE 'auditor.%'")
            return [r[0] for r in rows]
        finally:
            await store.close()

    assert all(a.startswith("operator:") for a in asyncio.run(actors()))
