#!/usr/bin/env bash
# The PostgreSQL 15 Debian package, as a user installs it: the README's install command, run as
# it is written, into the system PostgreSQL 15; CREATE EXTENSION in a private cluster of it with
# postgresql.conf untouched (lockhier not in shared_preload_libraries), one conflict from the
# demo, a lease refused with what to set, dpkg -r.
#
#   scripts/test_package.sh DEB    DEB: the path scripts/package.sh 15 printed
#
# Afterwards the release build is copied back in place, so the machine is left as it was.
# Prints one ok/not ok line per check and ends with RESULT <passed> <failed>.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib/pg.sh
deb=${1:?usage: scripts/test_package.sh DEB (the path scripts/package.sh 15 printed)}
version=$(crate_version)

check "the package exists: $deb" test -s "$deb"
# The README's words, read from it (so a new version, or a new package name, updates the README).
readme=$(python3 scripts/check_docs.py block README.md scripts/test_package.sh)
check "the README's install command names this version's package: $readme" test "$readme" = "dpkg -i $deb"
bash -c "set -e; $readme" >/tmp/lockhier-dpkg.log 2>&1
status=$?
check "the README's install command succeeds" test "$status" = 0
if [ "$status" != 0 ]; then
  cat /tmp/lockhier-dpkg.log
  result_line
  exit
fi
check "it installs where Debian's PostgreSQL 15 looks" \
  bash -c "dpkg -L postgresql-15-lockhier | grep -qx /usr/lib/postgresql/15/lib/lockhier.so \
           && dpkg -L postgresql-15-lockhier | grep -qx /usr/share/postgresql/15/extension/lockhier.control \
           && dpkg -L postgresql-15-lockhier | grep -qx /usr/share/postgresql/15/extension/lockhier--$version.sql"

export LOCKHIER_PG=15 LOCKHIER_HOME=/var/tmp/lockhier-package LOCKHIER_PORT=5479 LOCKHIER_PRELOAD=0
scripts/cluster.sh stop 2>/dev/null
rm -rf "$LOCKHIER_HOME"
scripts/cluster.sh start
eval "$(scripts/cluster.sh env)"
out=$(psql -X -d postgres 2>&1 <<'SQL'
CREATE EXTENSION lockhier;
CREATE EXTENSION dblink;
SELECT extversion FROM pg_extension WHERE extname = 'lockhier';
SELECT dblink_connect('snapshot', format('host=%s port=%s dbname=postgres user=%s application_name=%L',
    current_setting('unix_socket_directories'), current_setting('port'), current_user, 'snapshot of app 7'));
SELECT dblink_exec('snapshot', 'BEGIN');
SELECT * FROM dblink('snapshot', $$SELECT lockhier.lock_application(7, mode => 'share')::text$$) AS t(x text);
BEGIN;
SELECT lockhier.lock_field(7, 12, 99, 'field__update');
ROLLBACK;
\set VERBOSITY verbose
SELECT lockhier.lease_application(8, 'backup');
SQL
)
scripts/cluster.sh stop
echo "$out" | tail -n 14
check "CREATE EXTENSION lockhier from the package gives version $version" grep -qx " $version" <<<"$out"
check "a snapshot of application 7 refuses a field update, naming it" \
  bash -c 'grep -q "ERROR:  operation in progress: cannot lock field 99 (table 12, application 7) for \"field__update\"" <<<"$0" &&
           grep -q "application_name \"snapshot of app 7\"" <<<"$0"' "$out"

check "without shared_preload_libraries, a lease is refused with 55000 and what to set" \
  bash -c 'grep -q "ERROR:  55000: " <<<"$0" &&
           grep -q "HINT:  Add lockhier to shared_preload_libraries in postgresql.conf and restart the server; every other lockhier function works without it." <<<"$0"' "$out"

dpkg -r postgresql-15-lockhier >/tmp/lockhier-dpkg.log 2>&1
check "dpkg -r removes it" bash -c '! test -e /usr/lib/postgresql/15/lib/lockhier.so && ! dpkg -s postgresql-15-lockhier >/dev/null 2>&1'
install_build 15 2>/dev/null
rm -rf "$LOCKHIER_HOME"

result_line
