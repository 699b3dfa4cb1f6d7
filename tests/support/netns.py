"""Several machines on this one: network namespaces joined by veth pairs on a private /24.

Each host is a network namespace with its own loopback and one veth end (eth0) on SUBNET; the
other ends hang on a bridge in a hub namespace of the run, so nothing is added to the machine's
own network, and removing the namespaces removes every link.

Commands run in a host through `nsenter --net`: what `ip netns exec` does, without the mount
namespace of its own that `ip netns exec` also gives the command (the bind mounts Asterisk's
start makes into its chroot would then live in that namespace alone).

Names carry the pid of the test process that made them (dcx<pid>-<role>): `sweep_stale` removes
the namespaces of a run whose process is gone (killed before its cleanup ran), and what runs in them.

The servers start inside their host, so that their own port checks and readiness probes see that
host's network: `python -m tests.support.netns postgres|asterisk ...` runs there (see `_main`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dialer.asterisk import host as asterisk_host
from dialer.store import pg_cluster
from dialer.store.pg_cluster import PgServer
from tests.support.project import PROJECT_ROOT

PREFIX = "dcx"
NETNS_DIR = Path("/run/netns")  # where `ip netns add` keeps a namespace's handle
SUBNET = "10.231.15"  # the run's /24 (10.231.15.0/24); hosts from .10 up
FIRST_HOST = 10
COMMAND_TIMEOUT = 60.0
_NAME = re.compile(rf"^{PREFIX}(\d+)-[a-z0-9]+$")


@dataclass(frozen=True)
class Host:
    """One machine of the run: its namespace and its address on SUBNET."""

    name: str
    address: str

    def argv(self, *args: str) -> list[str]:
        return ["nsenter", f"--net={NETNS_DIR / self.name}", "--", *args]

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run a command in this host (from the project root); its output; an error shows it."""
        done = subprocess.run(
            self.argv(*args), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(
                f"in {self.name}: {' '.join(args)} (exit {done.returncode})\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    def popen(self, *args: str, output: IO[str]) -> subprocess.Popen[str]:
        """Start a command in this host; its output (and errors) go to `output`."""
        return subprocess.Popen(
            self.argv(*args),
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )


def impossible() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces (`ip netns add`) need root"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@contextmanager
def network(roles: Sequence[str]) -> Iterator[dict[str, Host]]:
    """A host per role on SUBNET (in order from .10), all removed after, whatever happened."""
    sweep_stale()
    run = f"{PREFIX}{os.getpid()}"
    made: list[str] = []
    try:
        hub = _add(f"{run}-hub", made)
        _ip_in(hub, "link", "add", "br0", "type", "bridge")
        _ip_in(hub, "link", "set", "br0", "up")
        hosts = {}
        for number, role in enumerate(roles):
            name = _add(f"{run}-{role}", made)
            address = f"{SUBNET}.{FIRST_HOST + number}"
            _ip_in(hub, "link", "add", f"v{number}", "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip_in(hub, "link", "set", f"v{number}", "master", "br0", "up")
            _ip_in(name, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip_in(name, "link", "set", "eth0", "up")
            _ip_in(name, "link", "set", "lo", "up")
            hosts[role] = Host(name, address)
        yield hosts
    finally:
        for name in reversed(made):
            remove(name)


def subnet() -> str:
    return f"{SUBNET}.0/24"


def _add(name: str, made: list[str]) -> str:
    _ip("netns", "add", name)
    made.append(name)
    return name


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _ip_in(name: str, *args: str) -> str:
    """`ip` inside namespace `name`, entered with nsenter: `ip -n` remounts / as a slave first,
    which fails where / is no mount point (a chroot)."""
    argv = ["nsenter", f"--net={NETNS_DIR / name}", "--", "ip", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    if done.returncode != 0:
        raise AssertionError(f"ip -n {name} {' '.join(args)} (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def pids_in(name: str) -> list[int]:
    done = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    return [int(pid) for pid in done.stdout.split()]


def remove(name: str) -> None:
    """Kill what still runs in the namespace (the run's servers were stopped before), then delete it."""
    for pid in pids_in(name):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pids_in(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def sweep_stale() -> list[str]:
    """Remove the namespaces of runs whose test process is gone; their names."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    stale = []
    for line in listed.splitlines():
        name = line.split(" ", 1)[0]
        match = _NAME.match(name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            remove(name)
            stale.append(name)
    return stale


# ---------------------------------------------------------------- servers in a host


def start_postgres(host: Host, state_dir: Path, port: int) -> PgServer:
    """The cluster in state_dir, started in `host`, listening on its address for SUBNET's hosts."""
    host.run(sys.executable, "-m", "tests.support.netns", "postgres", str(state_dir), host.address, str(port))
    return pg_cluster.server(state_dir)


def socket_url(server: PgServer, state_dir: Path, database: str) -> str:
    """`database` over the cluster's unix socket: for the test itself, which stays in the machine's own
    network (the file system is shared; the password is needed all the same)."""
    password = urllib.parse.quote(server.password, safe="")
    folder = urllib.parse.quote(str(state_dir.resolve() / "run"), safe="/")
    return f"postgresql://{server.user}:{password}@/{database}?host={folder}&port={server.port}"


def start_asterisk(host: Host, state_dir: Path, ami_port: int) -> None:
    """(Re)start the Asterisk of state_dir in `host` (AMI on its loopback), beside the chroot's others."""
    host.run(
        sys.executable, "-m", "tests.support.netns", "asterisk", str(state_dir), str(ami_port), timeout=90
    )


def sim_calls(state_dir: Path) -> dict[str, int]:
    """The calls each simulated number received from this Asterisk (AstDB sim/<number>/calls), read
    over its console socket (a file: reachable from any network namespace)."""
    shown = asterisk_host.run_cli(state_dir, "database show sim")
    found = re.findall(r"^/sim/(\d+)/calls\s*:\s*(\d+)", shown, re.MULTILINE)
    return {f"+{number}": int(count) for number, count in found}


def _main(argv: list[str]) -> None:
    what, state_dir = argv[0], Path(argv[1])
    if what == "postgres":
        host, port = argv[2], int(argv[3])
        pg_cluster.start(state_dir, host=host, port=port, fsync=False, clients=subnet())
    elif what == "asterisk":
        install = asterisk_host.provision(PROJECT_ROOT, state_dir)
        asterisk_host.start(install, PROJECT_ROOT, state_dir, int(argv[2]), kill_strays=False)
    else:
        raise SystemExit(f"unknown server {what!r}")


if __name__ == "__main__":
    _main(sys.argv[1:])
