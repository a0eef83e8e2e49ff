#!/usr/bin/env bash
# Runs the whole test suite. Installs what the interop tests need when it is missing:
# radclient (Debian freeradius-utils), promtool (Debian prometheus, without starting its
# service), systemd-analyze (Debian systemd, for the unit file check), the Python RADIUS client
# pyrad and the Python TACACS+ client tacacs_plus.
# Set TEST_DATABASE_URL=postgres://… to run the store and multi-instance tests on PostgreSQL too.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v radclient >/dev/null 2>&1; then
  echo "installing freeradius-utils (radclient)…"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq freeradius-utils >/dev/null
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "installing systemd (systemd-analyze verify checks deploy/systemd/tokengate.service)…"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing prometheus (promtool, for the alert rules and /metrics checks)…"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if ! python3 -c 'import pyrad, pyotp, tacacs_plus' >/dev/null 2>&1; then
  echo "installing pyrad, pyotp and tacacs_plus…"
  python3 -m pip install -q -r tests/interop/requirements.txt
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast "$@"
  # nextest does not run doc tests.
  cargo test --locked --doc
else
  cargo test --locked --no-fail-fast "$@"
fi
