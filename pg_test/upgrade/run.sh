#!/usr/bin/env bash
# The upgrade path and a dump and restore, against the running private cluster
# (PGHOST, PGPORT, PGUSER and PG_CONFIG as `scripts/cluster.sh env` sets them):
#
#   1. 0.1.0 (sql/archive/lockhier--0.1.0.sql, the script 0.1.0 installed) then
#      ALTER EXTENSION lockhier UPDATE leaves exactly the objects of a fresh install:
#      functions with their signatures, defaults, volatility, strictness, parallel safety,
#      security and C symbols; views; comments; grants (pg_test/upgrade/objects.sql).
#   2. Keys never change: a lock taken through 0.1.0's functions refuses the same scope
#      asked through the updated functions, while it is held across the update.
#   3. pg_dump -Fc of a database using lockhier, pg_restore into another: no error, the
#      extension is there with the same objects, and it locks.
#
# Prints one ok/not ok line per check and ends with RESULT <passed> <failed>.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${PGHOST:?} ${PGPORT:?} ${PGUSER:?} ${PG_CONFIG:?}"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
EXT_DIR=$("$PG_CONFIG" --sharedir)/extension
WORK=$(mktemp -d)
chmod 777 "$WORK"
source "$ROOT/scripts/checks.sh"
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
cleanup() {
  rm -f "$EXT_DIR/lockhier--0.1.0.sql"
  q -d postgres -c "DROP DATABASE IF EXISTS lockhier_fresh" -c "DROP DATABASE IF EXISTS lockhier_upgraded" \
    -c "DROP DATABASE IF EXISTS lockhier_dumped" -c "DROP DATABASE IF EXISTS lockhier_restored" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# 0.1.0's install script is not shipped with 0.2.0; put it where CREATE EXTENSION looks.
cp "$ROOT/sql/archive/lockhier--0.1.0.sql" "$EXT_DIR/"
cleanup_dbs() {
  q -d postgres -c "DROP DATABASE IF EXISTS lockhier_fresh" -c "DROP DATABASE IF EXISTS lockhier_upgraded" \
    -c "DROP DATABASE IF EXISTS lockhier_dumped" -c "DROP DATABASE IF EXISTS lockhier_restored" >/dev/null
}
cleanup_dbs
q -d postgres -c "CREATE DATABASE lockhier_fresh" -c "CREATE DATABASE lockhier_upgraded" \
  -c "CREATE DATABASE lockhier_dumped" -c "CREATE DATABASE lockhier_restored" >/dev/null

objects() { psql -X -A -t -v ON_ERROR_STOP=1 -d "$1" -f "$HERE/objects.sql"; }

# --- 1. the upgrade ----------------------------------------------------------------------------
q -d lockhier_fresh -c "CREATE EXTENSION lockhier" -c "CREATE EXTENSION dblink"
q -d lockhier_upgraded -c "CREATE EXTENSION lockhier VERSION '0.1.0'" -c "CREATE EXTENSION dblink"
check "0.1.0 installs from its archived script" \
  test "$(psql -XAt -d lockhier_upgraded -c "SELECT extversion FROM pg_extension WHERE extname = 'lockhier'")" = 0.1.0

# --- 2. a 0.1.0 holder and a caller after the update -------------------------------------------
# The holder (another session, through dblink) takes field 99 with 0.1.0's function and keeps it.
q -d lockhier_upgraded >/dev/null <<SQL
SELECT dblink_connect('holder', format('host=%s port=%s dbname=lockhier_upgraded user=%s application_name=%L',
    current_setting('unix_socket_directories'), current_setting('port'), current_user, '0.1.0 holder'));
SELECT dblink_exec('holder', 'BEGIN');
SELECT * FROM dblink('holder', \$\$SELECT lockhier.lock_field(7, 12, 99, 'field__update')::text\$\$) AS t(x text);
ALTER EXTENSION lockhier UPDATE;
\pset format unaligned
\pset tuples_only on
\o $WORK/after-update.txt
SELECT extversion FROM pg_extension WHERE extname = 'lockhier';
BEGIN;
SELECT lockhier.try_lock_field(7, 12, 99, 'field__update');
SELECT lockhier.try_lock_field(7, 12, 98, 'field__update');
COMMIT;
\o
SELECT dblink_exec('holder', 'COMMIT');
SELECT dblink_disconnect('holder');
SQL
# after-update.txt: the version, then whether field 99 (held) and field 98 (free) were granted.
check "ALTER EXTENSION lockhier UPDATE takes 0.1.0 to $VERSION" test "$(sed -n 1p "$WORK/after-update.txt")" = "$VERSION"
check "a lock held through 0.1.0's function refuses the same scope through $VERSION's (keys unchanged)" \
  test "$(sed -n '2,3p' "$WORK/after-update.txt" | tr '\n' ' ')" = "f t "

objects lockhier_fresh >"$WORK/fresh.txt"
objects lockhier_upgraded >"$WORK/upgraded.txt"
check "the upgraded extension's $(wc -l <"$WORK/fresh.txt") objects are those of a fresh $VERSION" \
  diff -u "$WORK/fresh.txt" "$WORK/upgraded.txt"

# --- 3. dump and restore ---------------------------------------------------------------------
q -d lockhier_dumped >/dev/null <<'SQL'
CREATE EXTENSION lockhier;
CREATE TABLE database_field (id bigint PRIMARY KEY, name text);
INSERT INTO database_field SELECT i, 'field ' || i FROM generate_series(1, 10) i;
SQL
pg_dump -Fc -d lockhier_dumped -f "$WORK/dump" 2>"$WORK/dump.log"
check "pg_dump of a database using lockhier" test -s "$WORK/dump"
pg_restore --exit-on-error -d lockhier_restored "$WORK/dump" >"$WORK/restore.log" 2>&1
status=$?
check "pg_restore into a new database, without an error" test "$status" = 0
[ "$status" = 0 ] || cat "$WORK/restore.log"
objects lockhier_restored >"$WORK/restored.txt"
check "the restored extension's objects are those of a fresh $VERSION" diff -u "$WORK/fresh.txt" "$WORK/restored.txt"
restored=$(psql -XAtq -v ON_ERROR_STOP=1 -d lockhier_restored 2>&1 <<'SQL'
BEGIN;
SELECT lockhier.lock_field(7, 12, 99, 'field__update');
SELECT lockhier.lock_rows('database_field', ARRAY[3, 4]);
SELECT count(*) FROM lockhier.held();
COMMIT;
SQL
)
check "the restored database locks fields and rows" test "$(tr '\n' ' ' <<<"$restored")" = " 2 1 "

checks_result
