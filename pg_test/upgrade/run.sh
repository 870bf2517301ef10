#!/usr/bin/env bash
# The upgrade paths and a dump and restore, against the running private cluster
# (PGHOST, PGPORT, PGUSER and PG_CONFIG as `scripts/cluster.sh env` sets them):
#
#   1. From every earlier release (0.1.0 and 0.2.0: sql/archive/lockhier--OLD.sql, the script
#      OLD installed), ALTER EXTENSION lockhier UPDATE leaves exactly the objects of a fresh
#      install: functions with their signatures, defaults, volatility, strictness, parallel
#      safety, security and C symbols; views; comments; grants (pg_test/upgrade/objects.sql).
#      0.1.0 goes through 0.2.0 (the update scripts chain), and 0.1.0 updated to 0.2.0 has
#      exactly the objects of the archived 0.2.0: the archive is the script 0.2.0 installed.
#   2. Keys never change: a lock taken through OLD's functions refuses the same scope asked
#      through the updated functions, while it is held across the update.
#   3. A lease taken through 0.2.0's function is listed by 0.2.0's view on this version's
#      library (installed before the update, as a user does), stays held across the update,
#      and the updated view shows it held.
#   4. pg_dump -Fc of a database using lockhier, pg_restore into another: no error, the
#      extension is there with the same objects, and it locks.
#
# Prints one ok/not ok line per check and ends with RESULT <passed> <failed>.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${PGHOST:?} ${PGPORT:?} ${PGUSER:?} ${PG_CONFIG:?}"
EXT_DIR=$("$PG_CONFIG" --sharedir)/extension
WORK=$(mktemp -d)
chmod 777 "$WORK"
source "$ROOT/scripts/lib/common.sh"
VERSION=$(crate_version)
# The earlier releases, oldest first: their install scripts are archived, not shipped.
OLD_VERSIONS=$(cd "$ROOT/sql/archive" && ls lockhier--*.sql | sed 's/^lockhier--\(.*\)\.sql$/\1/' | sort -V)
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
one() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
db_of() { echo "lockhier_from_${1//./_}"; } # the database updated from version $1
DATABASES="lockhier_fresh lockhier_dumped lockhier_restored"
previous=""
for old in $OLD_VERSIONS; do
  DATABASES="$DATABASES $(db_of "$old")"
  [ -n "$previous" ] && DATABASES="$DATABASES $(db_of "$old")_stepwise" # $previous updated to $old
  previous=$old
done
drop_databases() {
  local db
  for db in $DATABASES; do
    q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" || return 1
  done
}
cleanup() {
  local old
  for old in $OLD_VERSIONS; do rm -f "$EXT_DIR/lockhier--$old.sql"; done
  drop_databases >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# The earlier releases' install scripts are not shipped with this one; put them where CREATE
# EXTENSION looks.
for old in $OLD_VERSIONS; do cp "$ROOT/sql/archive/lockhier--$old.sql" "$EXT_DIR/"; done
drop_databases >/dev/null
for db in $DATABASES; do q -d postgres -c "CREATE DATABASE $db" >/dev/null; done

objects() { psql -X -A -t -v ON_ERROR_STOP=1 -d "$1" -f "$HERE/objects.sql"; }
version_in() { one "$1" "SELECT extversion FROM pg_extension WHERE extname = 'lockhier'"; }

q -d lockhier_fresh -c "CREATE EXTENSION lockhier" -c "CREATE EXTENSION dblink"
objects lockhier_fresh >"$WORK/fresh.txt"
check "a fresh install is $VERSION" test "$(version_in lockhier_fresh)" = "$VERSION"

# --- 1. each archived release, as it installed ------------------------------------------------
previous=""
for old in $OLD_VERSIONS; do
  db=$(db_of "$old")
  q -d "$db" -c "CREATE EXTENSION lockhier VERSION '$old'" -c "CREATE EXTENSION dblink"
  check "$old installs from its archived script" test "$(version_in "$db")" = "$old"
  objects "$db" >"$WORK/$old.txt"
  # The previous release updated to this one step by step has this one's archived objects.
  if [ -n "$previous" ]; then
    q -d "${db}_stepwise" -c "CREATE EXTENSION lockhier VERSION '$previous'" -c "CREATE EXTENSION dblink" \
      -c "ALTER EXTENSION lockhier UPDATE TO '$old'"
    objects "${db}_stepwise" >"$WORK/$previous-to-$old.txt"
    check "$previous updated to $old has the $(wc -l <"$WORK/$old.txt") objects of the archived $old" \
      diff -u "$WORK/$old.txt" "$WORK/$previous-to-$old.txt"
  fi
  previous=$old
done

# --- 2. and 3. from each: a holder of the old version across ALTER EXTENSION lockhier UPDATE ----
for old in $OLD_VERSIONS; do
  db=$(db_of "$old")
  path=$(one "$db" "SELECT path FROM pg_catalog.pg_extension_update_paths('lockhier')
                     WHERE source = '$old' AND target = '$VERSION'")
  check "an update path leads from $old to $VERSION: ${path:-none}" test -n "$path"

  # A lease, where the old version has them, taken and listed through its functions and view
  # (on this version's library: its lease_list() returns a column the old declaration lacks).
  lease=""
  if [ "$(one "$db" "SELECT pg_catalog.to_regclass('lockhier.leases') IS NOT NULL")" = t ]; then
    lease=$(one "$db" "SELECT lockhier.lease_field(7, 12, 97, 'upgrade from $old', 'field__update',
                                                   ttl => '10 min')")
    listed=$(one "$db" "SELECT owner || ' | ' || scope || ' | ' || mode FROM lockhier.leases WHERE token = $lease")
    check "a lease taken through $old's function is listed by $old's view" \
      test "$listed" = "upgrade from $old | field 97 (table 12, application 7) | exclusive"
  fi

  # The holder (another session, through dblink) takes field 99 with the old version's function
  # and keeps it while this session updates the extension.
  q -d "$db" >/dev/null <<SQL
SELECT dblink_connect('holder', format('host=%s port=%s dbname=%s user=%s application_name=%L',
    current_setting('unix_socket_directories'), current_setting('port'), current_database(),
    current_user, '$old holder'));
SELECT dblink_exec('holder', 'BEGIN');
SELECT * FROM dblink('holder', \$\$SELECT lockhier.lock_field(7, 12, 99, 'field__update')::text\$\$) AS t(x text);
ALTER EXTENSION lockhier UPDATE;
\pset format unaligned
\pset tuples_only on
\o $WORK/after-update-$old.txt
SELECT extversion FROM pg_extension WHERE extname = 'lockhier';
BEGIN;
SELECT lockhier.try_lock_field(7, 12, 99, 'field__update');
SELECT lockhier.try_lock_field(7, 12, 98, 'field__update');
COMMIT;
\o
SELECT dblink_exec('holder', 'COMMIT');
SELECT dblink_disconnect('holder');
SQL
  # after-update-OLD.txt: the version, then whether field 99 (held) and field 98 (free) were granted.
  check "ALTER EXTENSION lockhier UPDATE takes $old to $VERSION" \
    test "$(sed -n 1p "$WORK/after-update-$old.txt")" = "$VERSION"
  check "a lock held through $old's function refuses the same scope through $VERSION's (keys unchanged)" \
    test "$(sed -n '2,3p' "$WORK/after-update-$old.txt" | tr '\n' ' ')" = "f t "

  if [ -n "$lease" ]; then
    check "the lease taken through $old is held across the update, and the updated view says so" \
      test "$(one "$db" "SELECT owner || ' | ' || held FROM lockhier.leases WHERE token = $lease")" \
      = "upgrade from $old | true"
    check "the lease taken through $old is released through $VERSION" \
      test "$(one "$db" "SELECT lockhier.release_lease($lease)")" = t
  fi

  objects "$db" >"$WORK/upgraded-$old.txt"
  check "$old updated to $VERSION has exactly the $(wc -l <"$WORK/fresh.txt") objects of a fresh $VERSION" \
    diff -u "$WORK/fresh.txt" "$WORK/upgraded-$old.txt"
done

# --- 4. dump and restore ---------------------------------------------------------------------
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

result_line
