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
