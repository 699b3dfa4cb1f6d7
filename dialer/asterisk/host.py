"""Provision, start and stop the Asterisk that DueCall drives over AMI.

Boundary module: everything here shells out (apt-get, debootstrap, chroot, mount, asterisk).

Two ways to get an Asterisk 20+:
- "system": an `asterisk` on PATH that reports version 20 or later is used as is.
- "chroot": Debian 12 has no Asterisk package, so a Debian sid chroot with Asterisk is built once in a
  cache folder and reused. The project root is bind-mounted into the chroot at the same absolute path,
  so config, state, recordings and prompt files have one path for both Asterisk and the dialer.

Asterisk never uses the distro's /etc/asterisk: `start` renders the project's asterisk/conf into
state_dir/asterisk/etc and points every Asterisk directory into state_dir/asterisk.

Everything there is private (0600 files, 0700 folders): the rendered config holds the AMI secret and
the carrier's SIP password. Asterisk runs with umask 077, so its recordings, logs and AstDB are too.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dialer.asterisk.trunk import write_trunk
from dialer.core.config import CarrierSettings
from dialer.core.errors import AsteriskSetupError
from dialer.core.private_files import (
    PRIVATE_UMASK,
    create_private,
    make_private_dir,
    tighten_tree,
    write_private,
)

DEFAULT_CACHE_DIR = Path("/var/cache/duecall")
MIN_VERSION = 20
AMI_USER = "duecall"
START_TIMEOUT = 30.0
SID_PACKAGES = ("asterisk", "asterisk-core-sounds-en-gsm")
APT_NO_EXPIRY = ("-o", "Acquire::Check-Valid-Until=false")
# Written last by provisioning: without it a chroot is treated as half-built.
READY_MARKER = ".duecall-ready"
DEBOOTSTRAP_MARKER = ".duecall-debootstrap-done"
SOFTWARE_UMASK = 0o022


@dataclass(frozen=True)
class AsteriskInstall:
    kind: str  # "system" or "chroot"
    root: Path  # "/" for the system Asterisk
    version: str
    moddir: Path  # as seen by Asterisk (inside the chroot)
    datadir: Path  # as seen by Asterisk (inside the chroot)

    def argv(self, *args: str) -> list[str]:
        """Command line that runs `asterisk args...` in this install."""
        prefix = [] if self.kind == "system" else ["chroot", str(self.root)]
        return [*prefix, "asterisk", *args]


@dataclass(frozen=True)
class AmiCredentials:
    host: str
    port: int
    username: str
    secret: str


@dataclass(frozen=True)
class _Layout:
    """Where Asterisk's files live under state_dir."""

    base: Path

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def lib(self) -> Path:
        return self.base / "lib"

    @property
    def spool(self) -> Path:
        return self.base / "spool"

    @property
    def log(self) -> Path:
        return self.base / "log"

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def cache(self) -> Path:
        return self.base / "cache"

    @property
    def conf(self) -> Path:
        return self.etc / "asterisk.conf"

    @property
    def pidfile(self) -> Path:
        return self.run / "asterisk.pid"

    @property
    def secret(self) -> Path:
        return self.base / "ami_secret"

    @property
    def record(self) -> Path:
        """What `start` did, so `stop`/`status`/`run_cli` work from state_dir alone."""
        return self.base / "instance.json"


def _layout(state_dir: Path) -> _Layout:
    return _Layout(state_dir.resolve() / "asterisk")


# ---------------------------------------------------------------- small process helpers


def _run(argv: list[str], what: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    """Run a command, return stdout; raise AsteriskSetupError naming the step if it fails.

    With the usual umask 022, not the command line's private one: the commands that create files here
    install software (debootstrap, apt-get), which everyone in the chroot (apt's sandbox user) must read.
    """
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else {**os.environ, **env},
            umask=SOFTWARE_UMASK,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AsteriskSetupError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise AsteriskSetupError(f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n{tail}")
    return done.stdout


def _version_of(argv: list[str]) -> str | None:
    """`asterisk -V` output like 'Asterisk 22.10.1...', or None if it does not run."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out.startswith("Asterisk") else None


def _major(version: str) -> int:
    match = re.search(r"Asterisk (\d+)\.", version)
    return int(match.group(1)) if match else 0


def _pid_alive(pid: int) -> bool:
    """True if pid is a running asterisk (the comm check guards against pid reuse)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return comm == "asterisk" and state != "Z"


def _kill(pid: int, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.1)


# ---------------------------------------------------------------- mounts


def _mountpoints() -> list[Path]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        raw = line.split()[4]
        # mountinfo escapes space, tab, newline and backslash as octal.
        points.append(Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), raw)))
    return points


def _is_mounted(path: Path) -> bool:
    return path in _mountpoints()


def _mounts_under(root: Path) -> list[Path]:
    return [p for p in _mountpoints() if p == root or root in p.parents]


def _unmount(path: Path) -> None:
    # Lazy: a process still holding a file there must not make stop() fail.
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _bind(source: Path, root: Path) -> Path:
    """Bind-mount source into the chroot at the same absolute path; return the mount point."""
    target = root / source.relative_to("/")
    if not _is_mounted(target):
        target.mkdir(parents=True, exist_ok=True)
        _run(["mount", "--bind", str(source), str(target)], f"bind-mounting {source} into {root}")
    return target


def _mount_proc(root: Path) -> Path:
    target = root / "proc"
    if not _is_mounted(target):
        _run(["mount", "-t", "proc", "proc", str(target)], f"mounting /proc in {root}")
    return target


# ---------------------------------------------------------------- provisioning


def provision(
    project_root: Path,
    state_dir: Path,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    ami_port: int = 5038,
) -> AsteriskInstall:
    """Find or build an Asterisk 20+; safe to run again (fast when already done)."""
    del project_root, state_dir, ami_port  # same signature as start(); nothing to do with them here
    system = _system_install()
    if system is not None:
        return system
    return _chroot_install(cache_dir.resolve() / "sid")


def _system_install() -> AsteriskInstall | None:
    if shutil.which("asterisk") is None:
        return None
    version = _version_of(["asterisk", "-V"])
    if version is None or _major(version) < MIN_VERSION:
        return None
    root = Path("/")
    return AsteriskInstall("system", root, version, _find_moddir(root), Path("/usr/share/asterisk"))


def _find_moddir(root: Path) -> Path:
    """The modules folder differs by distro (multiarch on Debian); find the one with app_dial.so."""
    patterns = (
        "usr/lib/*/asterisk/modules",
        "usr/lib/asterisk/modules",
        "usr/lib64/asterisk/modules",
        "usr/local/lib/asterisk/modules",
    )
    for pattern in patterns:
        for found in sorted(root.glob(pattern)):
            if (found / "app_dial.so").exists():
                return Path("/") / found.relative_to(root)
    raise AsteriskSetupError(f"no Asterisk modules folder (with app_dial.so) found under {root}usr/lib")


def _chroot_install(root: Path) -> AsteriskInstall:
    if not _chroot_ready(root):
        _build_chroot(root)
    version = _version_of(["chroot", str(root), "asterisk", "-V"])
    if version is None:
        raise AsteriskSetupError(
            f"`chroot {root} asterisk -V` fails after provisioning; delete {root} and retry"
        )
    return AsteriskInstall("chroot", root, version, _find_moddir(root), Path("/usr/share/asterisk"))


def _chroot_ready(root: Path) -> bool:
    if not (root / READY_MARKER).exists():
        return False
    return _version_of(["chroot", str(root), "asterisk", "-V"]) is not None


def _build_chroot(root: Path) -> None:
    if not (root / DEBOOTSTRAP_MARKER).exists():
        _remove_chroot(root)
        _debootstrap(root)
        (root / DEBOOTSTRAP_MARKER).touch()
    _install_in_chroot(root)
    (root / READY_MARKER).touch()


def _remove_chroot(root: Path) -> None:
    """Delete a half-built chroot, never following a bind mount into the project."""
    if not root.exists():
        return
    _kill_chroot_processes(root)
    for point in sorted(_mounts_under(root), reverse=True):
        _unmount(point)
    left = _mounts_under(root)
    if left:
        raise AsteriskSetupError(f"cannot rebuild {root}: still mounted: {', '.join(map(str, left))}")
    shutil.rmtree(root)


def _debootstrap(root: Path) -> None:
    if shutil.which("debootstrap") is None:
        _apt_install_host("debootstrap")
    mirror = debian_mirror()
    root.parent.mkdir(parents=True, exist_ok=True)
    _run(
        ["debootstrap", "--variant=minbase", "sid", str(root), mirror],
        f"debootstrap of Debian sid from {mirror} into {root}",
        timeout=1200,
    )


def _apt_install_host(package: str) -> None:
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        _run(["apt-get", "install", "-y", package], f"apt-get install {package}", env=env)
    except AsteriskSetupError:
        # Package lists may be missing on a fresh machine.
        _run(["apt-get", "update"], "apt-get update", env=env)
        _run(["apt-get", "install", "-y", package], f"apt-get install {package}", env=env)


def _install_in_chroot(root: Path) -> None:
    # Keep the package's postinst from trying to start an Asterisk service in the chroot.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    chroot = ["chroot", str(root)]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run([*chroot, "apt-get", *APT_NO_EXPIRY, "update"], f"apt-get update in {root}", env=env)
    _run(
        [*chroot, "apt-get", *APT_NO_EXPIRY, "install", "-y", "--no-install-recommends", *SID_PACKAGES],
        f"installing {' '.join(SID_PACKAGES)} in {root}",
        env=env,
    )


def debian_mirror() -> str:
    """The Debian mirror the host's apt already uses (DUECALL_DEBIAN_MIRROR overrides)."""
    override = os.environ.get("DUECALL_DEBIAN_MIRROR")
    if override:
        return override
    uris = _apt_uris()
    for uri in uris:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    raise AsteriskSetupError(
        "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list "
        f"(saw {uris or 'nothing'}); set DUECALL_DEBIAN_MIRROR=http://<mirror>/debian and retry"
    )


def _apt_uris() -> list[str]:
    """URIs of `deb` entries, in file order: deb822 .sources first, then the one-line format."""
    uris: list[str] = []
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(_deb822_fields(stanza))
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                uris += fields.get("uris", "").split()
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line)
                if match:
                    uris.append(match.group(1))
    return uris


def _deb822_fields(stanza: str) -> list[tuple[str, str]]:
    fields = []
    for line in stanza.splitlines():
        match = re.match(r"([A-Za-z-]+):\s*(.*)", line)
        if match:
            fields.append((match.group(1).lower(), match.group(2)))
    return fields


# ---------------------------------------------------------------- start / stop


def start(
    install: AsteriskInstall,
    project_root: Path,
    state_dir: Path,
    ami_port: int = 5038,
    kill_strays: bool = True,
    carrier: CarrierSettings | None = None,
) -> AmiCredentials:
    """(Re)start our Asterisk with the current config; return AMI credentials once it is fully booted.

    kill_strays=False leaves the chroot's other Asterisks running: several run side by side, each
    from its own state_dir in its own network namespace (tests/support/netns.py).
    """
    project_root = project_root.resolve()
    stop(state_dir)
    if install.kind == "chroot" and kill_strays:
        _kill_chroot_processes(install.root)
    _check_port_free(ami_port)
    lay = prepare_files(install, project_root, state_dir, ami_port, carrier)
    secret = _ami_secret(lay)
    mounts = _mount_for(install, project_root, lay) if install.kind == "chroot" else []
    _save_record(lay, install, ami_port, mounts)
    _launch(install, lay)
    creds = AmiCredentials("127.0.0.1", ami_port, AMI_USER, secret)
    _wait_ready(install, lay, creds)
    return creds


def prepare_files(
    install: AsteriskInstall,
    project_root: Path,
    state_dir: Path,
    ami_port: int,
    carrier: CarrierSettings | None = None,
) -> _Layout:
    """Asterisk's private folders, the AMI secret and the rendered config, all 0600/0700.

    carrier: `[carrier]`, rendered into pjsip_trunk.conf (over a hand-written one); None: as written."""
    lay = _layout(state_dir)
    _make_dirs(lay)
    _render_config(install, project_root.resolve(), lay, ami_port, _ami_secret(lay))
    if carrier is not None:
        write_trunk(lay.etc, carrier, project_root.resolve())
    return lay


def _make_dirs(lay: _Layout) -> None:
    make_private_dir(lay.base)
    for path in (lay.etc, lay.lib, lay.spool, lay.log, lay.run, lay.cache):
        make_private_dir(path)
    tighten_tree(lay.base)  # files an older version (or an Asterisk without our umask) left open


def _ami_secret(lay: _Layout) -> str:
    """Random once, then reused so a restart keeps the same credentials."""
    if lay.secret.exists():
        return lay.secret.read_text().strip()
    secret = secrets.token_urlsafe(24)
    write_private(lay.secret, secret + "\n")
    return secret


def _render_config(
    install: AsteriskInstall, project_root: Path, lay: _Layout, port: int, secret: str
) -> None:
    source = project_root / "asterisk" / "conf"
    if not (source / "asterisk.conf.in").exists():
        raise AsteriskSetupError(
            f"{source}/asterisk.conf.in is missing: is {project_root} the DueCall project?"
        )
    for old in lay.etc.glob("*.conf"):
        old.unlink()  # a file removed from the repo must not linger in the rendered config
    for conf in source.glob("*.conf"):
        # Never a plain copy: pjsip_trunk.conf holds the carrier's password.
        write_private(lay.etc / conf.name, conf.read_bytes())
    values = {
        "ASTETCDIR": lay.etc,
        "ASTMODDIR": install.moddir,
        "ASTVARLIBDIR": lay.lib,
        "ASTDBDIR": lay.lib,
        "ASTSPOOLDIR": lay.spool,
        "ASTLOGDIR": lay.log,
        "ASTRUNDIR": lay.run,
        "ASTDATADIR": install.datadir,
        "ASTCACHEDIR": lay.cache,
    }
    text = (source / "asterisk.conf.in").read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    write_private(lay.etc / "asterisk.conf", text)
    write_private(lay.etc / "manager_port.conf", f"; generated by dialer.asterisk.host\nport = {port}\n")
    write_private(
        lay.etc / "manager_secret.conf", f"; generated by dialer.asterisk.host\nsecret = {secret}\n"
    )


def _mount_for(install: AsteriskInstall, project_root: Path, lay: _Layout) -> list[str]:
    """Bind the project (and state_dir if it lives elsewhere) into the chroot at the same paths."""
    sources = [project_root]
    if project_root not in lay.base.parents:
        sources.append(lay.base)
    mounts = [_mount_proc(install.root)]
    mounts += [_bind(path, install.root) for path in sources]
    return [str(m) for m in mounts]


def _save_record(lay: _Layout, install: AsteriskInstall, port: int, mounts: list[str]) -> None:
    record = {**{k: str(v) for k, v in asdict(install).items()}, "ami_port": port, "mounts": mounts}
    write_private(lay.record, json.dumps(record, indent=2) + "\n")


def _load_record(lay: _Layout) -> dict[str, object] | None:
    try:
        data: dict[str, object] = json.loads(lay.record.read_text())
    except (OSError, ValueError):
        return None
    return data


def _install_from(record: dict[str, object]) -> AsteriskInstall:
    return AsteriskInstall(
        str(record["kind"]),
        Path(str(record["root"])),
        str(record["version"]),
        Path(str(record["moddir"])),
        Path(str(record["datadir"])),
    )


def _launch(install: AsteriskInstall, lay: _Layout) -> None:
    """Start Asterisk detached: own session, cwd /, stdin /dev/null, output to console.log.

    umask 077: Asterisk creates recordings (MixMonitor), their folders, logs and AstDB private.
    """
    lay.pidfile.unlink(missing_ok=True)
    argv = ["setsid", "--fork", *install.argv("-f", "-n", "-U", "root", "-G", "root", "-C", str(lay.conf))]
    console = lay.log / "console.log"
    create_private(console)
    with open(console, "ab") as log:
        subprocess.run(
            argv, cwd="/", stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=True, umask=PRIVATE_UMASK
        )


def _wait_ready(install: AsteriskInstall, lay: _Layout, creds: AmiCredentials) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        pid = _read_pid(lay)
        if pid is not None and _ami_login_ok(creds):
            break
        if (pid is not None and not _pid_alive(pid)) or time.monotonic() > deadline:
            logs = f"{lay.log}/console.log and {lay.log}/messages.log"
            raise AsteriskSetupError(
                f"Asterisk did not accept an AMI login on 127.0.0.1:{creds.port} within "
                f"{START_TIMEOUT:.0f} s; see {logs}\n{_log_tail(lay)}"
            )
        time.sleep(0.2)
    _run(install.argv("-C", str(lay.conf), "-rx", "core waitfullybooted"), "core waitfullybooted", timeout=30)


def _log_tail(lay: _Layout) -> str:
    try:
        return "\n".join((lay.log / "console.log").read_text(errors="replace").splitlines()[-15:])
    except OSError:
        return ""


def _read_pid(lay: _Layout) -> int | None:
    try:
        return int(lay.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _ami_login_ok(creds: AmiCredentials) -> bool:
    """A plain-socket AMI login: proves the port, the user and the secret all work."""
    try:
        with socket.create_connection((creds.host, creds.port), timeout=2) as sock:
            sock.settimeout(2)
            login = (
                f"Action: Login\r\nActionID: probe\r\nUsername: {creds.username}\r\n"
                f"Secret: {creds.secret}\r\nEvents: off\r\n\r\n"
            )
            sock.sendall(login.encode())
            reply = _read_until(sock, b"\r\n\r\n", after=b"ActionID: probe")
            sock.sendall(b"Action: Logoff\r\n\r\n")
    except OSError:
        return False
    return "Response: Success" in reply


def _read_until(sock: socket.socket, end: bytes, after: bytes) -> str:
    data = b""
    while not (after in data and data.endswith(end)):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


PORT_RELEASE_SECONDS = 5.0  # an Asterisk just killed can hold its port until the kernel reaps it


def _check_port_free(port: int) -> None:
    deadline = time.monotonic() + PORT_RELEASE_SECONDS
    while (inode := _listening_inode(port)) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if inode is None:
        return
    owner = _socket_owner(inode) or "an unknown process"
    raise AsteriskSetupError(
        f"AMI port {port} is already in use by {owner}; stop it or choose another port (ami_port=...)"
    )


def _listening_inode(port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":  # 0A = LISTEN
                return cols[9]
    return None


def _socket_owner(inode: str) -> str | None:
    target = f"socket:[{inode}]"
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == target for fd in fd_dir.iterdir()):
                pid = fd_dir.parent.name
                return f"pid {pid} ({Path(f'/proc/{pid}/comm').read_text().strip()})"
        except OSError:
            continue
    return None


def _chroot_processes(root: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if Path(os.readlink(proc / "root")) == root:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _kill_chroot_processes(root: Path) -> None:
    """Asterisks left in this chroot (e.g. by another clone of the project sharing the cache)."""
    for pid in _chroot_processes(root.resolve()):
        if _pid_alive(pid):
            _kill(pid)


def stop(state_dir: Path) -> None:
    """Stop our Asterisk and undo our mounts; does nothing if nothing was started."""
    lay = _layout(state_dir)
    record = _load_record(lay)
    if record is None:
        return
    install = _install_from(record)
    pid = _read_pid(lay)
    if pid is not None and _pid_alive(pid):
        subprocess.run(
            install.argv("-C", str(lay.conf), "-rx", "core stop now"),
            capture_output=True,
            timeout=15,
            check=False,
        )
        _kill(pid)
    lay.pidfile.unlink(missing_ok=True)
    _unmount_record(install, record)


def _unmount_record(install: AsteriskInstall, record: dict[str, object]) -> None:
    mounts = record.get("mounts")
    if install.kind != "chroot" or not isinstance(mounts, list):
        return
    if _chroot_processes(install.root):
        # Another Asterisk (a later start from another state_dir or clone) runs in the chroot and
        # may use the same mounts; leaving a mount in place is harmless, pulling it is not.
        return
    for mount in reversed(mounts):
        path = Path(str(mount))
        if _is_mounted(path):
            _unmount(path)


def load_credentials(state_dir: Path, ami_port: int) -> AmiCredentials:
    """The AMI credentials of an Asterisk started by `start` from this state_dir."""
    lay = _layout(state_dir)
    if not lay.secret.exists():
        raise AsteriskSetupError(f"no AMI secret in {lay.secret}: run `duecall asterisk up` first")
    record = _load_record(lay) or {}
    port = int(str(record.get("ami_port", ami_port)))
    return AmiCredentials("127.0.0.1", port, AMI_USER, lay.secret.read_text().strip())


def status(state_dir: Path) -> dict[str, object]:
    """Running or not, pid, version, AMI port, and where Asterisk comes from."""
    lay = _layout(state_dir)
    record = _load_record(lay)
    if record is None:
        return {"running": False, "detail": "never started from this state_dir"}
    pid = _read_pid(lay)
    running = pid is not None and _pid_alive(pid)
    return {
        "running": running,
        "pid": pid if running else None,
        "version": record["version"],
        "ami_port": record["ami_port"],
        "kind": record["kind"],
        "root": record["root"],
        "config": str(lay.conf),
    }


def run_cli(state_dir: Path, command: str, timeout: float = 30) -> str:
    """`asterisk -rx command` against our running Asterisk; returns its output."""
    lay = _layout(state_dir)
    record = _load_record(lay)
    if record is None:
        raise AsteriskSetupError(f"no Asterisk was started from {state_dir}; run start() first")
    install = _install_from(record)
    return _run(
        install.argv("-C", str(lay.conf), "-rx", command), f"asterisk -rx '{command}'", timeout=timeout
    )
