#!/usr/bin/env bash
# Installs what building and testing lockhier needs, skipping what is already there.
# Debian 12, run as root (as CI does) or with sudo rights.
#
#   LOCKHIER_PG_VERSIONS   the PostgreSQL majors to set up (default: 15 16 17 18)
#   LOCKHIER_SETUP_CLIENTS 0 to skip the client suites' packages (default: 1)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

PGRX_VERSION=0.18.1
VERSIONS=${LOCKHIER_PG_VERSIONS-15 16 17 18}

log() { printf '[setup] %s\n' "$*"; }

# What building needs (the client suites install their own, PgBouncer included).
apt_install clang libclang-dev pkg-config sudo make curl dpkg-dev
# The client suites need Node.js; this machine kind ships it, Debian has it otherwise.
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
# Debian starts packaged services (a cluster on 5432, pgbouncer on 6432); lockhier's tests use
# private instances on their own ports only.

if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
  log "installing cargo-pgrx $PGRX_VERSION (about 5 minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
fi

# Each PostgreSQL major (scripts/install-pg.sh says where each comes from), and pgrx pointed
# at it. `cargo pgrx init` adds or replaces only the versions it is given.
config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
for v in $VERSIONS; do
  pg_config=$(as_root bash scripts/install-pg.sh "$v" | tail -n 1)
  if ! grep -qs "^pg$v *= *\"$pg_config\"" "$config"; then
    log "pointing pgrx at PostgreSQL $v ($pg_config)"
    cargo pgrx init "--pg$v" "$pg_config" >/dev/null
  fi
done

# The client suites' pinned packages (PyPI, npm, Debian's ActiveRecord), for make test.
if [ "${LOCKHIER_SETUP_CLIENTS:-1}" = 1 ]; then
  bash clients/run.sh --install-only >/dev/null || {
    echo "[setup] installing the client suites' packages failed" >&2
    exit 1
  }
fi
