#!/usr/bin/env bash
# Leases on a standby and after a failover, against the running private cluster (PGHOST,
# PGPORT, PGUSER and PG_CONFIG as `scripts/cluster.sh env` sets them), which must have lockhier
# in shared_preload_libraries:
#
#   1. A streaming standby made with pg_basebackup (its data directory, lease journal
#      included, copied from the primary while a lease is held): lockhier's locks work there,
#      local to it; the lease functions refuse with 25006; the primary's lease is not shown.
#   2. The standby promoted (a new timeline): the lease the copied journal holds is not held
#      there (it was the old primary's, which still holds it), and new leases get tokens
#      above the old ones.
#
# Prints one ok/not ok line per check and ends with RESULT <passed> <failed>.
set -uo pipefail
: "${PGHOST:?} ${PGPORT:?} ${PGUSER:?} ${PG_CONFIG:?}"
PGBIN=$("$PG_CONFIG" --bindir)
WORK=$(mktemp -d /var/tmp/lockhier-standby.XXXXXX)
STANDBY_PORT=$((PGPORT + 100))
source "$(dirname "$0")/../../scripts/checks.sh"
as_owner() { if [ "$(id -u)" = 0 ]; then sudo -u postgres "$@"; else "$@"; fi; }
primary() { psql -X -A -t -v ON_ERROR_STOP=1 -d lockhier_standby "$@"; }
standby() { psql -X -A -t -h "$WORK" -p "$STANDBY_PORT" -d lockhier_standby "$@" 2>&1; }
cleanup() {
  as_owner "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS lockhier_standby" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres "$WORK"

PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS lockhier_standby" -c "CREATE DATABASE lockhier_standby"
primary -c "CREATE EXTENSION lockhier" >/dev/null
token=$(primary -c "SELECT lockhier.lease_application(7, 'nightly backup', ttl => '10 min')")
check "the primary holds a lease (token $token)" test -n "$token"

# --- 1. the standby ------------------------------------------------------------------------------
as_owner "$PGBIN/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -D "$WORK/data" -R -X stream --checkpoint=fast \
  >"$WORK/basebackup.log" 2>&1
check "pg_basebackup copies the primary, the lease journal included" test -s "$WORK/data/lockhier/leases.journal"
cat >>"$WORK/data/postgresql.conf" <<CONF
port = $STANDBY_PORT
unix_socket_directories = '$WORK'
hot_standby = on
CONF
as_owner "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/standby.log" -w -t 60 start >/dev/null
check "the standby is in recovery" test "$(standby -c "SELECT pg_is_in_recovery()")" = t
check "no lease keeper runs on a standby" \
  test "$(standby -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lockhier lease keeper'")" = 0
out=$(standby -v VERBOSITY=verbose -c "SELECT lockhier.lease_application(8, 'on a standby')")
check "a lease on the standby is refused with 25006" grep -q "ERROR:  25006: lockhier leases are not available during recovery" <<<"$out"
check "the standby shows no lease" test "$(standby -c "SELECT count(*) FROM lockhier.leases")" = 0
check "lockhier's locks work on the standby, local to it (the primary's lease is not seen)" \
  test "$(standby -c "BEGIN" -c "SELECT lockhier.try_lock_application(7)" -c "COMMIT" | grep -x '[tf]')" = t

# --- 2. the standby promoted ---------------------------------------------------------------------
as_owner "$PGBIN/pg_ctl" -D "$WORK/data" -w promote >/dev/null
check "the standby is promoted" test "$(standby -c "SELECT pg_is_in_recovery()")" = f
# The keeper starts once recovery has finished; until it has looked at its journal, lockhier's
# calls wait for it (docs/leases.md), so this call returns once it has.
check "the promoted server does not hold the old primary's lease" \
  test "$(standby -c "BEGIN" -c "SELECT lockhier.try_lock_application(7)" -c "COMMIT" | grep -x '[tf]')" = t
check "its leases view is empty" test "$(standby -c "SELECT count(*) FROM lockhier.leases")" = 0
new=$(standby -c "SELECT lockhier.lease_application(7, 'after failover')")
check "a new lease there gets a token above the old ones ($new > $token)" test "$new" -gt "$token"
check "the old primary still holds its lease" \
  test "$(primary -c "SELECT count(*) FROM lockhier.leases WHERE token = $token")" = 1
primary -c "SELECT lockhier.release_lease($token)" >/dev/null

checks_result
