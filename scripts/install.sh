#!/usr/bin/env bash
# make install: builds lockhier as it ships (the dist profile) for the PostgreSQL that
# `pg_config` on the PATH belongs to, and installs it there, replacing the files rather than
# writing over them (safe while a server runs; it loads the new build when it restarts).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh
pg_config=$(command -v pg_config) || { echo "pg_config not found on the PATH" >&2; exit 1; }
major=$("$pg_config" --version | grep -oE '[0-9]+' | head -n 1)
pg_config_for() { echo "$pg_config"; } # this one, whatever pgrx's config says
build_lockhier "$major" dist
install_build "$major" dist
echo "installed lockhier into PostgreSQL $major ($("$pg_config" --pkglibdir)); restart the server to load it"
