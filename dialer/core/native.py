"""Compiled builds (mypyc) of the hot pure modules, used only when built from the current source.

The policy engine decides every proposal of every pass; compiled by mypyc (mypy's own compiler, the
type checker this project already runs in strict mode) it decides about 1.6x faster, with the same
code and the same results (tests/unit/test_policy_differential.py runs against whichever is loaded,
and test_policy_native.py against both). `./bootstrap.sh` builds it: `python -m dialer.core.native`.

The build goes to build/native/<package path>/, never beside the source: a package puts that folder
first on its `__path__` (attach) only while the digest written with the build matches its sources
now, so an edited module is never shadowed by an old build; it runs as plain Python until rebuilt.
DUECALL_NATIVE=0 in the environment turns the compiled builds off.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / "build" / "native"
# package -> its compiled modules, and the project sources their compiled code was checked against.
COMPILED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dialer.policy": (("engine",), ("dialer/policy/engine.py", "dialer/core/vocab.py")),
}
STAMP = "sources.sha256"


def attach(package: str, path: list[str]) -> bool:
    """Put the package's compiled build first on its `__path__` if it is current; True if so."""
    if os.environ.get("DUECALL_NATIVE", "1") == "0" or package not in COMPILED:
        return False
    folder = _folder(package)
    try:
        built = (folder / STAMP).read_text().strip()
    except OSError:
        return False
    if built != _digest(package):
        return False
    path.insert(0, str(folder))
    return True


def compiled(module: object) -> bool:
    """Whether a module was loaded from a compiled build (its file is a shared object)."""
    return str(getattr(module, "__file__", "")).endswith(".so")


def _folder(package: str) -> Path:
    return BUILD_DIR.joinpath(*package.split("."))


def _digest(package: str) -> str:
    """The sources' digest, with the Python it is built for (another Python ignores the build)."""
    h = hashlib.sha256(sys.version.encode())
    for name in COMPILED[package][1]:
        h.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    return h.hexdigest()


def build(package: str) -> Path:
    """Compile the package's modules with mypyc into build/native (quick when already current)."""
    folder = _folder(package)
    digest = _digest(package)
    stamp = folder / STAMP
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return folder
    try:
        from mypyc.build import mypycify  # build-time only: the `test` extra installs mypy

        setup = importlib.import_module("setuptools").setup  # (setuptools has no type stubs here)
    except ImportError as e:
        why = f"compiling {package} needs mypy and setuptools (pip install -e '.[test]'): {e}"
        raise SystemExit(why) from e

    modules, _ = COMPILED[package]
    sources = [str(Path(*package.split("."), f"{m}.py")) for m in modules]
    shutil.rmtree(folder, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="duecall-native-") as tmp:
        cwd = Path.cwd()
        try:
            os.chdir(ROOT)  # mypyc names modules by their paths from the project root
            extensions = mypycify(sources, opt_level="3", target_dir=str(Path(tmp, "c")))
            os.chdir(tmp)  # setup() reads a pyproject.toml where it runs: not the project's
            setup(
                name="duecall-native",
                ext_modules=extensions,
                script_args=["-q", "build_ext", "--build-lib", str(BUILD_DIR), "--build-temp", tmp],
            )
        finally:
            os.chdir(cwd)
    stamp.write_text(digest + "\n")
    return folder


def main() -> None:
    for package in COMPILED:
        print(f"compiled {package}: {build(package).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
