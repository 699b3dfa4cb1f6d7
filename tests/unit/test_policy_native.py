"""The policy engine's compiled build (dialer/core/native.py): used only while current, and the plain
Python engine, which runs where no build is, decides as the reference too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialer.core import native
from dialer.policy import engine

ROOT = Path(__file__).resolve().parents[2]


def _current() -> bool:
    stamp = native.BUILD_DIR / "dialer" / "policy" / native.STAMP
    return stamp.is_file() and stamp.read_text().strip() == native._digest("dialer.policy")


def test_the_engine_is_compiled_exactly_when_its_build_is_current() -> None:
    # ./bootstrap.sh builds it before the tests, so under `.ci/run` this is the compiled engine.
    wanted = _current() and os.environ.get("DUECALL_NATIVE", "1") != "0"
    assert native.compiled(engine) is wanted, engine.__file__


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project of one compiled package `pkg` (module `mod`), its build folder empty."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    monkeypatch.setattr(native, "ROOT", tmp_path)
    monkeypatch.setattr(native, "BUILD_DIR", tmp_path / "build" / "native")
    monkeypatch.setitem(native.COMPILED, "pkg", (("mod",), ("pkg/mod.py",)))
    monkeypatch.delenv("DUECALL_NATIVE", raising=False)
    return tmp_path


def _stamp(project: Path) -> None:
    folder = project / "build" / "native" / "pkg"
    folder.mkdir(parents=True)
    (folder / native.STAMP).write_text(native._digest("pkg") + "\n")


def test_a_current_build_goes_first_on_the_package_path(project: Path) -> None:
    _stamp(project)
    path = [str(project / "pkg")]
    assert native.attach("pkg", path) is True
    assert path == [str(project / "build" / "native" / "pkg"), str(project / "pkg")]


def test_a_build_of_an_older_source_is_never_used(project: Path) -> None:
    _stamp(project)
    (project / "pkg" / "mod.py").write_text("X = 2\n")  # edited after the build
    path = [str(project / "pkg")]
    assert native.attach("pkg", path) is False
    assert path == [str(project / "pkg")]


def test_no_build_and_the_switch_leave_the_path_alone(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = [str(project / "pkg")]
    assert native.attach("pkg", path) is False  # never built
    _stamp(project)
    monkeypatch.setenv("DUECALL_NATIVE", "0")
    assert native.attach("pkg", path) is False
    assert native.attach("other", path) is False  # not a compiled package
    assert path == [str(project / "pkg")]


def test_the_plain_python_engine_decides_as_the_reference() -> None:
    """The differential tests of the plain path and one random seed, in a process without the build."""
    env = {**os.environ, "DUECALL_NATIVE": "0"}
    check = "from dialer.core import native; from dialer.policy import engine; print(native.compiled(engine))"
    out = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
    tests = "tests/unit/test_policy_differential.py"
    pick = "plain_path_decides or engine_decides_as_before[0] or batch_at_one_moment"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests, "-k", pick],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
