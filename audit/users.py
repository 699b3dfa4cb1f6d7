"""The people who sign in to the web page: create, authenticate, list, disable.

Three roles: `auditor` (the audit pages, read-only, masked), `operator` (the operations pages,
docs/operations.md: campaigns, start/pause/resume, reports, previews; masked too) and `admin`
(both, may reveal names and numbers, manages users).

Passwords are kept as argon2id hashes (argon2-cffi's defaults, which follow RFC
9106). Hashing runs in a thread: it takes tens of milliseconds of CPU on purpose.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dialer.core.errors import AuditorError
from dialer.store import Store, StoredAuditor

ROLES = ("auditor", "operator", "admin")
MIN_PASSWORD = 12
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Auditor:
    name: str
    role: str  # auditor (audit pages, masked), operator (operations pages, masked) or admin (both)
    created_at: datetime
    disabled_at: datetime | None
    # A fingerprint of the stored password hash: it changes with the password, so the page can end
    # sessions begun with the old one (see audit.web.security.Sessions).
    credential: str = field(default="", repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def audits(self) -> bool:
        """May open the audit pages (calls, texts, the trail)."""
        return self.role in ("auditor", "admin")

    @property
    def operates(self) -> bool:
        """May open the operations pages and start, pause and resume campaigns."""
        return self.role in ("operator", "admin")


def _auditor(row: StoredAuditor) -> Auditor:
    credential = hashlib.sha256(row.password_hash.encode()).hexdigest()
    return Auditor(row.name, row.role, row.created_at, row.disabled_at, credential)


def check_new(name: str, role: str, password: str) -> None:
    """Raise AuditorError saying what is wrong with a new user's fields."""
    if not _NAME.match(name):
        raise AuditorError(
            f"{name!r}: a user name is 1-32 of a-z 0-9 . _ - (starting with a letter or digit)"
        )
    if role not in ROLES:
        raise AuditorError(f"{role!r}: the role is auditor, operator or admin")
    _check_password(password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AuditorError(f"the password needs at least {MIN_PASSWORD} characters")


async def create_user(
    store: Store, name: str, role: str, password: str, actor: str, now: datetime
) -> Auditor:
    check_new(name, role, password)
    digest = await asyncio.to_thread(_hasher.hash, password)
    if not await store.add_auditor(name, role, digest, now, actor):
        raise AuditorError(f"{name}: a user with this name exists")
    found = await get_user(store, name)
    assert found is not None
    return found


async def get_user(store: Store, name: str) -> Auditor | None:
    row = await store.auditor(name)
    return _auditor(row) if row else None


async def list_users(store: Store) -> list[Auditor]:
    return [_auditor(r) for r in await store.auditors()]


async def disable_user(store: Store, name: str, actor: str, now: datetime) -> None:
    if not await store.disable_auditor(name, now, actor):
        raise AuditorError(f"{name}: no such enabled user")


async def set_password(store: Store, name: str, password: str, actor: str, now: datetime) -> None:
    """A new password for `name`; the page ends the sessions begun with the old one."""
    _check_password(password)
    digest = await asyncio.to_thread(_hasher.hash, password)
    if not await store.set_auditor_password(name, digest, now, actor):
        raise AuditorError(f"{name}: no such user")


async def authenticate(store: Store, name: str, password: str) -> Auditor | None:
    """The user if the password is right and the user is enabled, else None (never says which)."""
    row = await store.auditor(name)
    stored = row.password_hash if row else _dummy_hash()
    if not await asyncio.to_thread(_verify, stored, password) or row is None:
        return None
    if _hasher.check_needs_rehash(stored):  # parameters raised since it was hashed
        digest = await asyncio.to_thread(_hasher.hash, password)
        await store.rehash_auditor_password(name, digest)
    user = await get_user(store, name)  # read after any rehash: its credential is the current one
    if user is None or user.disabled_at is not None:
        return None
    return user


@functools.cache
def _dummy_hash() -> str:
    # Verified when the name is unknown, so a wrong name takes as long as a wrong password.
    return _hasher.hash("not the password of anyone")


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
