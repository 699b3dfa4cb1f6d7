"""Fixtures for every test. Helpers shared by test modules live in tests/support/."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.project import STATE_DIR


@pytest.fixture
def work_dir() -> Iterator[Path]:
    """A folder inside the project root, so the chroot's Asterisk sees the same path (recordings)."""
    path = STATE_DIR / "test" / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)
