#!/usr/bin/env bash
# Builds lockhier for one PostgreSQL major with the dist profile (fat LTO, one codegen
# unit: Cargo.toml) and a Debian package of it that installs where Debian's PostgreSQL packages
# look:
#
#   scripts/package.sh NN      -> target/packages/postgresql-NN-lockhier_<version>_amd64.deb
#
# LOCKHIER_PACKAGE_PROFILE=release packages the tests' build instead (thin LTO, which make test
# has already built and tested by then): make test checks how the package installs and works
# without a fat-LTO build of its own; make package ships the dist build.
#
# The build's own tree (target/dist/lockhier-pgNN/, laid out for the pg_config it was built
# with) is re-rooted under /usr/lib/postgresql/NN/lib and /usr/share/postgresql/NN/extension.
# Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

v=${1:?usage: scripts/package.sh NN}
pg_config=$(pg_config_for "$v")
version=$(crate_version)
profile=${LOCKHIER_PACKAGE_PROFILE:-dist}
build_lockhier "$v" "$profile"
tree=$(build_tree "$v" "$profile")

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
