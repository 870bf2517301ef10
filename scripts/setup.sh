#!/usr/bin/env bash
# Installs what building and testing lockhier needs, skipping what is already there.
# Debian 12, run as root (as CI does) or with sudo rights.
set -euo pipefail

PGRX_VERSION=0.18.1
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 clang libclang-dev pkg-config sudo make)

log() { printf '[setup] %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# The client suites need Node.js; this machine kind ships it, Debian has it otherwise.
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts a packaged cluster on port 5432; lockhier's tests use private clusters only.

if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
  log "installing cargo-pgrx $PGRX_VERSION (about 5 minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
fi

if ! grep -qs '^pg15 *= *"/usr/bin/pg_config"' "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  log "pointing pgrx at the system PostgreSQL 15"
  cargo pgrx init --pg15 /usr/bin/pg_config >/dev/null
fi

# The client suites' pinned packages (PyPI, npm, Debian's ActiveRecord), for make test.
if [ "${LOCKHIER_SETUP_CLIENTS:-1}" = 1 ]; then
  bash "$(dirname "$0")/../clients/run.sh" --install-only >/dev/null || {
    echo "[setup] installing the client suites' packages failed" >&2
    exit 1
  }
fi
