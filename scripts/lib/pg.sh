# shellcheck shell=bash
# Sourced by the scripts: where each PostgreSQL major lives on this machine, and building and
# installing lockhier for one.
#
#   pg_config_for NN            the pg_config of PostgreSQL NN (installing it first if missing)
#   build_lockhier NN [PROFILE] build for NN with cargo profile PROFILE (default release)
#   install_build NN [PROFILE]  put that build in place in PostgreSQL NN
#
# The profiles (Cargo.toml): release, thin LTO, is what the tests run; dist, fat LTO and one
# codegen unit, is what ships (the .deb, make install, make bench). One target directory serves
# every major: cargo keeps each major's build apart, as its feature (pgNN) differs.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pg_config_for() {
  local config="${PGRX_HOME:-$HOME/.pgrx}/config.toml" found
  found=$(sed -n "s/^pg$1 *= *\"\(.*\)\"/\1/p" "$config" 2>/dev/null)
  if [ -n "$found" ] && [ -x "$found" ]; then
    echo "$found"
  else
    bash "$LOCKHIER_ROOT/scripts/install-pg.sh" "$1" | tail -n 1
  fi
}

# build_tree NN [PROFILE]: where `cargo pgrx package` lays the build out, under the paths of NN's
# pg_config: target/PROFILE/lockhier-pgNN/.
build_tree() { echo "$LOCKHIER_ROOT/target/${2:-release}/lockhier-pg$1"; }

# Without the pg_test feature: that one adds the #[pg_test]s' schema to the extension, which
# neither ships nor belongs in the objects the upgrade test compares. The log is kept beside the
# tree, target/PROFILE/build-pgNN.log.
build_lockhier() {
  local v=$1 profile=${2:-release} pg_config log
  pg_config=$(pg_config_for "$v") || return 1
  log=$LOCKHIER_ROOT/target/$profile/build-pg$v.log
  mkdir -p "$(dirname "$log")"
  rm -rf "$(build_tree "$v" "$profile")" # nothing left from an older build goes into a package
  (cd "$LOCKHIER_ROOT" && cargo pgrx package --profile "$profile" --pg-config "$pg_config" \
    --no-default-features --features "pg$v") >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; echo "building lockhier for PostgreSQL $v ($profile) failed: see $log" >&2; return 1; }
}

# Each file is replaced by a new one, never written over: a running server that has lockhier
# loaded (with it preloaded, every backend and the lease keeper) keeps executing the library it
# mapped, and writing over that file crashes it.
install_build() {
  cp -a --remove-destination "$(build_tree "$1" "${2:-release}")/." /
}
