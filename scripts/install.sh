#!/usr/bin/env bash
# make install: builds lockhier (release) for the PostgreSQL that `pg_config` on the PATH
# belongs to, and installs it there, replacing the files rather than writing over them (safe
# while a server runs; it loads the new build when it restarts).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh
pg_config=$(command -v pg_config) || { echo "pg_config not found on the PATH" >&2; exit 1; }
major=$("$pg_config" --version | grep -oE '[0-9]+' | head -n 1)
export CARGO_TARGET_DIR=$PWD/target/pg$major
cargo pgrx package --pg-config "$pg_config" --no-default-features --features "pg$major"
install_build "$major"
echo "installed lockhier into PostgreSQL $major ($("$pg_config" --pkglibdir)); restart the server to load it"
