# Sourced by the scripts: where each PostgreSQL major lives on this machine.
#   pg_config_for NN   the pg_config of PostgreSQL NN (installing it first if it is missing)

pg_config_for() {
  local config="${PGRX_HOME:-$HOME/.pgrx}/config.toml" found
  found=$(sed -n "s/^pg$1 *= *\"\(.*\)\"/\1/p" "$config" 2>/dev/null)
  if [ -n "$found" ] && [ -x "$found" ]; then
    echo "$found"
  else
    bash "$(dirname "${BASH_SOURCE[0]}")/install-pg.sh" "$1" | tail -n 1
  fi
}

# install_build NN: put the release build for PostgreSQL NN (target/pgNN/release/lockhier-pgNN,
# made by scripts/package.sh) in place. Each file is replaced by a new one, never written over:
# a running server that has lockhier loaded (with it preloaded, every backend and the lease
# keeper) keeps executing the library it mapped, and writing over that file crashes it.
install_build() {
  cp -a --remove-destination "$(dirname "${BASH_SOURCE[0]}")/../target/pg$1/release/lockhier-pg$1/." /
}
