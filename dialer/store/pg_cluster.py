"""The project's own PostgreSQL cluster: initdb once, start, stop, status, databases (docs/postgres.md).

Boundary module: everything here shells out (initdb, pg_ctl, psql from Debian's `postgresql` package).

Layout under state_dir (root-owned 0711 so the server's user can reach its folders, nothing listable):
- data/          the cluster (PGDATA), owned by the server's user, 0700
- run/           its unix socket (not /var/run), owned by the server's user, 0700
- log/postgres.log  the server's log (pg_ctl -l), owned by the server's user
- password       the `duecall` superuser's password, 0600 root
- instance.json  what `start` did (version, host, port, fsync), so `stop`/`status`/`url` need only state_dir

Every function is synchronous, each command bounded by a timeout: from an event loop, call them in
a thread (asyncio.to_thread).

PostgreSQL refuses to run as root: run as root (CI, bootstrap), initdb and pg_ctl run as Debian's
`postgres` system user and data/, run/ and log/ belong to it; everything else stays root's. Run as
another user, everything is that user's.

Every connection, TCP or unix socket, needs the `duecall` role's password (scram-sha-256), none is
trusted: a superuser can run programs as the server's user (COPY ... TO PROGRAM), so on a shared
machine "trust on loopback" would hand that to every local user. The password file is the key.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dialer.core.errors import StoreError
from dialer.core.private_files import PRIVATE_UMASK, create_private, make_private_dir, write_private

SEARCH_ROOT = Path("/usr/lib/postgresql")  # Debian: /usr/lib/postgresql/<major>/bin
MIN_VERSION = 15
TOOLS = ("initdb", "pg_ctl", "postgres", "psql")
INSTALL_HINT = "install Debian's `postgresql` package (apt-get install postgresql)"
SERVER_USER = "postgres"  # the system user Debian's package creates; used only when run as root
SUPERUSER = "duecall"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 55432
DEFAULT_DATABASE = "duecall"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0
ORPHAN_GRACE = 10.0  # a killed postmaster's children notice and exit within about a second
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
INITDB_MARKER = ".duecall-initdb-done"


@dataclass(frozen=True)
class PgBinaries:
    version: int  # the major version, e.g. 15
    bindir: Path

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


@dataclass(frozen=True)
class PgServer:
    """How to reach a cluster started by `start`."""

    host: str
    port: int
    user: str
    password: str
    version: int
    bindir: Path

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        password = urllib.parse.quote(self.password, safe="")
        return f"postgresql://{self.user}:{password}@{host}:{self.port}/{database}"


@dataclass(frozen=True)
class _Layout:
    base: Path

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def log_dir(self) -> Path:
        return self.base / "log"

    @property
    def log(self) -> Path:
        return self.log_dir / "postgres.log"

    @property
    def password(self) -> Path:
        return self.base / "password"

    @property
    def record(self) -> Path:
        return self.base / "instance.json"

    @property
    def lock(self) -> Path:
        return self.base / ".lock"

    @property
    def marker(self) -> Path:
        return self.base / INITDB_MARKER

    @property
    def pidfile(self) -> Path:
        return self.data / "postmaster.pid"


def _layout(state_dir: Path) -> _Layout:
    return _Layout(state_dir.resolve())


# ---------------------------------------------------------------- binaries


def find_binaries(version: int | None = None, search_root: Path | None = None) -> PgBinaries:
    """The newest PostgreSQL 15+ under /usr/lib/postgresql (or exactly `version`, an existing cluster's)."""
    root = SEARCH_ROOT if search_root is None else search_root
    found = sorted(
        (int(bindir.parent.name), bindir)
        for bindir in root.glob("*/bin")
        if bindir.parent.name.isdigit() and all((bindir / tool).is_file() for tool in TOOLS)
    )
    usable = [(major, bindir) for major, bindir in found if major >= MIN_VERSION]
    if version is not None:
        usable = [(major, bindir) for major, bindir in usable if major == version]
    if not usable:
        seen = ", ".join(str(major) for major, _ in found) or "none"
        wanted = f"PostgreSQL {version} (the cluster's version)" if version else f"PostgreSQL {MIN_VERSION}+"
        raise StoreError(f"{wanted} not found in {root}/<version>/bin (found: {seen}); {INSTALL_HINT}")
    major, bindir = usable[-1]
    return PgBinaries(major, bindir)


# ---------------------------------------------------------------- running commands


def _server_user() -> pwd.struct_passwd | None:
    """Who runs initdb and the server: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise StoreError(
            f"no `{SERVER_USER}` system user to run PostgreSQL as (root cannot); {INSTALL_HINT}"
        ) from None


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment without PG* variables (a user's PGDATABASE must not redirect our commands)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    return {**env, "LC_ALL": "C", **(extra or {})}


def _run(
    argv: list[str],
    what: str,
    timeout: float = COMMAND_TIMEOUT,
    as_server: bool = False,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> str:
    """Run a command (as the server's user if as_server); return stdout; StoreError naming the step."""
    user = _server_user() if as_server else None
    if user is not None:
        env = {**(env or {}), "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name}
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",  # the server's user may not be able to enter ours
            env=_clean_env(env),
            umask=PRIVATE_UMASK,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StoreError(f"{what} failed: {exc}{_log_tail(log)}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise StoreError(f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n{tail}{_log_tail(log)}")
    return done.stdout


def _log_tail(log: Path | None) -> str:
    if log is None:
        return ""
    try:
        lines = log.read_text(errors="replace").splitlines()[-15:]
    except OSError:
        return ""
    return f"\nlast lines of {log}:\n" + "\n".join(lines)


def _give_to_server(path: Path) -> None:
    user = _server_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


@contextlib.contextmanager
def _locked(lay: _Layout) -> Iterator[None]:
    """One start/stop at a time per cluster, across processes (two test sessions, a CLI beside them)."""
    _make_base(lay)
    create_private(lay.lock)
    with open(lay.lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------- init


def init(
    state_dir: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    fsync: bool = True,
    clients: str | None = None,
) -> PgBinaries:
    """Make the cluster if needed (initdb once) and write its settings; safe to run again.

    clients: the subnet (e.g. "10.231.15.0/24") whose machines may connect over TCP, with the
    password; None: those on the server's own networks (`samenet`) when it listens beyond loopback.
    """
    lay = _layout(state_dir)
    with _locked(lay):
        return _init(lay, host, port, fsync, clients)


def _init(lay: _Layout, host: str, port: int, fsync: bool, clients: str | None) -> PgBinaries:
    _check_host(host)
    _check_clients(clients)
    made = lay.marker.exists()
    binaries = find_binaries(_data_version(lay) if made else None)  # before touching any folder
    _make_dirs(lay)
    password = _password(lay)
    if not made:
        _initdb(lay, binaries, password, fsync)
        create_private(lay.marker)
    _write_config(lay, host, port, fsync, clients)
    return binaries


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise StoreError(f"[postgres] host {host[:60]!r} is not an IP address (e.g. 127.0.0.1)") from None


def _check_clients(clients: str | None) -> None:
    if clients is None:
        return
    try:
        ipaddress.ip_network(clients)
    except ValueError:
        raise StoreError(f"clients {clients[:60]!r} is not a subnet (e.g. 10.231.15.0/24)") from None


def _make_base(lay: _Layout) -> None:
    """state_dir itself: 0711 when the server runs as another user (it passes through, lists nothing).

    Never `tighten`ed: a running server would lose its way to data/.
    """
    lay.base.mkdir(mode=0o700, parents=True, exist_ok=True)
    lay.base.chmod(0o711 if _server_user() is not None else 0o700)


def _make_dirs(lay: _Layout) -> None:
    _make_base(lay)
    user = _server_user()
    if user is not None:
        _let_server_reach(lay.base, user)
    for path in (lay.data, lay.run, lay.log_dir):
        make_private_dir(path)
        _give_to_server(path)


def _let_server_reach(base: Path, user: pwd.struct_passwd) -> None:
    """The server's user must pass through every folder above state_dir to reach its own.

    A folder of ours that it cannot pass (the command line makes var/ 0700) gets search permission
    for others: that lists nothing, and every file DueCall keeps there is private anyway.
    """
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    for folder in reversed(base.parents):
        info = folder.stat()
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid == user.pw_uid:
            reachable = bool(mode & stat.S_IXUSR)
        elif info.st_gid in groups:
            reachable = bool(mode & stat.S_IXGRP)
        else:
            reachable = bool(mode & stat.S_IXOTH)
        if reachable:
            continue
        if info.st_uid != os.geteuid():
            raise StoreError(
                f"PostgreSQL's user {user.pw_name!r} cannot reach {base}: {folder} is closed to it "
                "and not ours to open; choose another [postgres] state_dir"
            )
        folder.chmod(mode | stat.S_IXOTH)


def _password(lay: _Layout) -> str:
    """Random once, then reused: the cluster's superuser has it since initdb."""
    if lay.password.exists():
        return lay.password.read_text(encoding="ascii").strip()
    if lay.marker.exists():
        raise StoreError(
            f"{lay.password} is missing but the cluster in {lay.data} was made with it; "
            f"restore the file, or delete {lay.base} to start afresh (its databases are lost)"
        )
    password = secrets.token_urlsafe(24)
    write_private(lay.password, password + "\n")
    return password


def _data_version(lay: _Layout) -> int:
    try:
        return int((lay.data / "PG_VERSION").read_text().strip())
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"{lay.data} holds no PostgreSQL cluster (PG_VERSION: {exc}); delete {lay.base}"
        ) from exc


def _initdb(lay: _Layout, binaries: PgBinaries, password: str, fsync: bool) -> None:
    # A cluster without the marker is a half-made one (initdb killed): start it again from nothing.
    shutil.rmtree(lay.data, ignore_errors=True)
    make_private_dir(lay.data)
    _give_to_server(lay.data)
    # initdb reads the password from a file the server's user can read; it lives only during initdb.
    pwfile = lay.run / "initdb-password"
    write_private(pwfile, password + "\n")
    _give_to_server(pwfile)
    argv = [
        binaries.tool("initdb"),
        "--pgdata",
        str(lay.data),
        "--username",
        SUPERUSER,
        f"--pwfile={pwfile}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",  # C collation: the same order on every machine, and the fastest
    ]
    if not fsync:
        argv.append("--no-sync")
    try:
        _run(argv, f"initdb of {lay.data}", timeout=300, as_server=True)
    finally:
        pwfile.unlink(missing_ok=True)
    conf = lay.data / "postgresql.conf"
    with open(conf, "a", encoding="utf-8") as handle:
        handle.write("\n# DueCall's settings, rewritten on every start (dialer/store/pg_cluster.py)\n")
        handle.write("include = 'duecall.conf'\n")


def _write_config(lay: _Layout, host: str, port: int, fsync: bool, clients: str | None) -> None:
    switch = "on" if fsync else "off"
    settings = {
        "listen_addresses": f"'{host}'",
        "port": str(port),
        "unix_socket_directories": _quoted(str(lay.run)),
        # Off only for a throwaway server (the tests): a crash can then lose or corrupt the data.
        "fsync": switch,
        "synchronous_commit": switch,
        "full_page_writes": switch,
        "password_encryption": "'scram-sha-256'",
        "timezone": "'UTC'",
        "log_timezone": "'UTC'",
        "log_line_prefix": "'%m [%p] %q%u@%d '",
    }
    text = "# generated by dialer.store.pg_cluster on every start\n"
    text += "".join(f"{key} = {value}\n" for key, value in settings.items())
    _write_server_file(lay.data / "duecall.conf", text)
    hba = [
        "# generated by dialer.store.pg_cluster: every connection needs its role's password",
        "local all all scram-sha-256",
        "host all all 127.0.0.1/32 scram-sha-256",
        "host all all ::1/128 scram-sha-256",
    ]
    if clients is not None:
        hba.append(f"host all all {ipaddress.ip_network(clients)} scram-sha-256")  # the dialer machines
    elif not ipaddress.ip_address(host).is_loopback:
        hba.append("host all all samenet scram-sha-256")  # the other dialer machines on its network
    _write_server_file(lay.data / "pg_hba.conf", "\n".join(hba) + "\n")


def _quoted(text: str) -> str:
    """A postgresql.conf string: in single quotes, each quote doubled."""
    return "'" + text.replace("'", "''") + "'"


def _write_server_file(path: Path, text: str) -> None:
    write_private(path, text)
    _give_to_server(path)


# ---------------------------------------------------------------- processes


def _read_pid(lay: _Layout) -> int | None:
    try:
        return int(lay.pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _cwd_is(pid: int, folder: Path) -> bool:
    """True if pid is a live (not zombie) process working in folder: every server process works in data/."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z" and Path(os.readlink(f"/proc/{pid}/cwd")) == folder
    except (OSError, IndexError):
        return False


def _running_pid(lay: _Layout) -> int | None:
    """The postmaster's pid if it runs; a pid file left by a killed one (or a reused pid) is not."""
    pid = _read_pid(lay)
    return pid if pid is not None and _cwd_is(pid, lay.data) else None


def _server_processes(lay: _Layout) -> list[int]:
    return [int(proc.name) for proc in Path("/proc").glob("[0-9]*") if _cwd_is(int(proc.name), lay.data)]


def _clear_stale(lay: _Layout) -> None:
    """After a killed postmaster (none runs now): wait for its children to go, drop its lock files.

    PostgreSQL cannot do it itself here: a killed postmaster's pid stays a zombie until reaped, and
    the pid files name it, so a new server takes it for a live one. Its children notice its death and
    exit; one still running a long query is left to the operator (killing a server's processes that
    we did not start is not ours to decide).
    """
    if not _wait_gone(lay, ORPHAN_GRACE):
        left = _server_processes(lay)
        raise StoreError(
            f"processes {left} still work in {lay.data} with no PostgreSQL server over them; "
            "stop them (kill) and retry"
        )
    lay.pidfile.unlink(missing_ok=True)
    for lock in lay.run.glob(".s.PGSQL.*"):  # the socket and its lock file (run/ is this cluster's alone)
        lock.unlink(missing_ok=True)


def _wait_gone(lay: _Layout, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _server_processes(lay):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StoreError(
                f"[postgres] port {port} on {host} cannot be used ({exc.strerror}); "
                "stop what holds it or choose another [postgres] port or host"
            ) from exc


# ---------------------------------------------------------------- start / stop


def start(
    state_dir: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    fsync: bool = True,
    timeout: float = START_TIMEOUT,
    clients: str | None = None,
) -> PgServer:
    """Start the cluster (made on first use) and wait until it takes connections.

    Already running with these settings: returned as is. Running with others: restarted.
    clients: as for `init`.
    """
    lay = _layout(state_dir)
    with _locked(lay):
        wanted = {"host": host, "port": port, "fsync": fsync, "clients": clients}
        record = _load_record(lay)
        if _running_pid(lay) is not None:
            if record is not None and all(record.get(key) == value for key, value in wanted.items()):
                return _server(lay, record)
            if record is None or (record.get("host"), record.get("port")) != (host, port):
                _check_port_free(host, port)  # before taking the running server down
            _stop(lay, STOP_TIMEOUT)
        binaries = _init(lay, host, port, fsync, clients)
        _clear_stale(lay)
        _check_port_free(host, port)
        record = {**wanted, "version": binaries.version, "bindir": str(binaries.bindir)}
        write_private(lay.record, json.dumps(record, indent=2) + "\n")
        argv = [binaries.tool("pg_ctl"), "start", "-D", str(lay.data), "-l", str(lay.log)]
        argv += ["-w", "-t", str(max(1, round(timeout))), "-s"]
        _run(argv, f"starting PostgreSQL in {lay.data}", timeout + 10, as_server=True, log=lay.log)
        server = _server(lay, record)
        _ensure_database(server, DEFAULT_DATABASE)
        return server


def stop(state_dir: Path, timeout: float = STOP_TIMEOUT) -> None:
    """Stop the cluster (fast: open sessions are ended); does nothing if it does not run."""
    lay = _layout(state_dir)
    if not lay.record.exists():
        return
    with _locked(lay):
        _stop(lay, timeout)


def _stop(lay: _Layout, timeout: float) -> None:
    if _running_pid(lay) is None:
        return
    record = _load_record(lay) or {}
    pg_ctl = Path(str(record.get("bindir", ""))) / "pg_ctl"
    if not pg_ctl.is_file():
        pg_ctl = Path(find_binaries(_data_version(lay)).tool("pg_ctl"))
    argv = [str(pg_ctl), "stop", "-D", str(lay.data), "-m", "fast", "-w", "-t", str(max(1, round(timeout)))]
    _run([*argv, "-s"], f"stopping PostgreSQL in {lay.data}", timeout + 10, as_server=True, log=lay.log)


def _load_record(lay: _Layout) -> dict[str, object] | None:
    try:
        data: dict[str, object] = json.loads(lay.record.read_text())
    except (OSError, ValueError):
        return None
    return data


def _server(lay: _Layout, record: dict[str, object]) -> PgServer:
    return PgServer(
        host=str(record["host"]),
        port=int(str(record["port"])),
        user=SUPERUSER,
        password=lay.password.read_text(encoding="ascii").strip(),
        version=int(str(record["version"])),
        bindir=Path(str(record["bindir"])),
    )


def server(state_dir: Path) -> PgServer:
    """How to reach the cluster last started from this state_dir."""
    lay = _layout(state_dir)
    record = _load_record(lay)
    if record is None or not lay.password.exists():
        raise StoreError(f"no PostgreSQL was started from {lay.base}: run `duecall postgres up` first")
    return _server(lay, record)


def password_file(state_dir: Path) -> Path:
    """The 0600 file holding the `duecall` role's password."""
    return _layout(state_dir).password


def url(state_dir: Path, database: str = DEFAULT_DATABASE) -> str:
    """postgresql://duecall:<password>@<host>:<port>/<database> for the cluster started from state_dir."""
    return server(state_dir).url(database)


def status(state_dir: Path) -> dict[str, object]:
    """Running or not, pid, version, where it listens, fsync, and where its files are."""
    lay = _layout(state_dir)
    record = _load_record(lay)
    if record is None:
        return {"running": False, "detail": f"never started from {lay.base}"}
    pid = _running_pid(lay)
    return {
        "running": pid is not None,
        "pid": pid,
        "version": record["version"],
        "host": record["host"],
        "port": record["port"],
        "fsync": record["fsync"],
        "data": str(lay.data),
        "log": str(lay.log),
        "password_file": str(lay.password),
    }


# ---------------------------------------------------------------- databases


def _psql(server: PgServer, sql: str, what: str) -> str:
    argv = [str(server.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    argv += ["-h", server.host, "-p", str(server.port), "-U", server.user, "-d", "postgres", "-c", sql]
    env = {"PGPASSWORD": server.password, "PGCONNECT_TIMEOUT": "10"}
    return _run(argv, what, env=env).strip()


def _check_name(name: str) -> None:
    if not _DATABASE_NAME.match(name):
        raise StoreError(f"{name[:70]!r} is not a database name DueCall makes (a-z, 0-9, _; at most 63)")


def _ensure_database(server: PgServer, name: str) -> None:
    exists = _psql(server, f"SELECT 1 FROM pg_database WHERE datname = '{name}'", f"looking for {name}")
    if not exists:
        create_database(server, name)


def create_database(server: PgServer, name: str, template: str = "template0") -> str:
    """A new empty database (a copy of template0: quick, nothing in it); returns its URL."""
    _check_name(name)
    _check_name(template)
    _psql(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"', f"creating database {name}")
    return server.url(name)


def drop_database(server: PgServer, name: str) -> None:
    """Drop a database if it exists, ending the sessions still connected to it."""
    _check_name(name)
    _psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f"dropping database {name}")
