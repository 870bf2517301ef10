#!/usr/bin/env bash
# Builds lockhier for one PostgreSQL major (release, `cargo pgrx package`) and a Debian package
# of it that installs where Debian's PostgreSQL packages look:
#
#   scripts/package.sh NN      -> target/packages/postgresql-NN-lockhier_<version>_amd64.deb
#
# The build's own tree (target/pgNN/release/lockhier-pgNN/, laid out for the pg_config it was
# built with) is what the tests install; the .deb re-roots the same files under
# /usr/lib/postgresql/NN/lib and /usr/share/postgresql/NN/extension. Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

v=${1:?usage: scripts/package.sh NN}
pg_config=$(pg_config_for "$v")
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
export CARGO_TARGET_DIR=$PWD/target/pg$v
tree=$CARGO_TARGET_DIR/release/lockhier-pg$v
mkdir -p "$CARGO_TARGET_DIR" # the build log goes there; in a fresh clone it does not exist yet

cargo pgrx package --pg-config "$pg_config" --no-default-features --features "pg$v" >"$CARGO_TARGET_DIR/package.log" 2>&1 \
  || { tail -n 30 "$CARGO_TARGET_DIR/package.log" >&2; echo "cargo pgrx package for PostgreSQL $v failed" >&2; exit 1; }

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
lib=$staging/usr/lib/postgresql/$v/lib
ext=$staging/usr/share/postgresql/$v/extension
mkdir -p "$lib" "$ext" "$staging/DEBIAN"
cp "$tree$("$pg_config" --pkglibdir)/lockhier.so" "$lib/"
cp "$tree$("$pg_config" --sharedir)/extension/"lockhier* "$ext/"
cat >"$staging/DEBIAN/control" <<CONTROL
Package: postgresql-$v-lockhier
Version: $version
Architecture: amd64
Maintainer: lockhier developers <lockhier@localhost>
Depends: postgresql-$v
Section: database
Priority: optional
Description: hierarchical, classed, shareable locks for PostgreSQL $v
 lockhier takes locks on an application > table > field tree, per operation class, in share
 or exclusive mode, on PostgreSQL's own lock manager, with errors that name who is in the
 way. Run CREATE EXTENSION lockhier in each database that uses it.
CONTROL
mkdir -p target/packages
deb=target/packages/postgresql-$v-lockhier_${version}_amd64.deb
dpkg-deb --root-owner-group --build "$staging" "$deb" >/dev/null
echo "$deb"
