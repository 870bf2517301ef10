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
#      above the old ones: above those the primary handed out after the base backup too (the
#      copied journal cannot know them; the timeline in the tokens' high bits keeps them
#      apart). Those tokens name nothing on the promoted server: lease_valid says false and
#      release_lease releases nothing (before 0.3.0 it handed them out again).
#
# Prints one ok/not ok line per check and ends with RESULT <passed> <failed>.
set -uo pipefail
: "${PGHOST:?} ${PGPORT:?} ${PGUSER:?} ${PG_CONFIG:?}"
PGBIN=$("$PG_CONFIG" --bindir)
WORK=$(mktemp -d /var/tmp/lockhier-standby.XXXXXX)
STANDBY_PORT=$((PGPORT + 100))
source "$(dirname "$0")/../../scripts/lib/common.sh"
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
# Two leases the copied journal cannot know: granted on the primary after the copy.
after1=$(primary -c "SELECT lockhier.lease_application(21, 'after the backup 1', ttl => '10 min')")
after2=$(primary -c "SELECT lockhier.lease_table(22, 3, 'after the backup 2', ttl => '10 min')")
check "the primary grants two leases after the base backup ($after1, $after2), above the first ($token)" \
  test "$after1" -gt "$token" -a "$after2" -gt "$after1"
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
# Two more, so that a counter carried on from the copied journal would reach both of the primary's
# later tokens (before 0.3.0 the promoted server handed them out again).
new2=$(standby -c "SELECT lockhier.lease_application(23, 'after failover 2')")
new3=$(standby -c "SELECT lockhier.lease_table(24, 3, 'after failover 3')")
lowest=$(printf '%s\n' "$new" "$new2" "$new3" | sort -n | head -n 1)
check "every token of the promoted server ($new, $new2, $new3) is above every token of the primary, those granted after the base backup included ($after1, $after2)" \
  test "$lowest" -gt "$after2" -a "$lowest" -gt "$after1" -a "$lowest" -gt "$token"
# Tokens carry the timeline in their high bits (docs/leases.md): timeline t's are >= t << 40.
timeline=$(standby -c "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
check "the promoted server runs on timeline $timeline, and its tokens are at least $timeline << 40" \
  test "$timeline" -ge 2 -a "$lowest" -ge "$((timeline << 40))"
check "lease_valid of the primary's later tokens is false on the promoted server" \
  test "$(standby -c "SELECT lockhier.lease_valid($after1)::text || lockhier.lease_valid($after2)::text")" = falsefalse
out=$(standby -c "SELECT lockhier.release_lease($after1)")
out2=$(standby -c "SELECT lockhier.release_lease($after2)")
check "release_lease of the primary's later tokens returns false there" \
  test "$(grep -x '[tf]' <<<"$out")$(grep -x '[tf]' <<<"$out2")" = ff
check "... and releases nothing: the promoted server still holds its 3 leases" \
  test "$(standby -c "SELECT count(*) FROM lockhier.leases WHERE token IN ($new, $new2, $new3)")" = 3
check "the old primary still holds its 3 leases" \
  test "$(primary -c "SELECT count(*) FROM lockhier.leases WHERE token IN ($token, $after1, $after2)")" = 3
primary -c "SELECT lockhier.release_lease($token), lockhier.release_lease($after1), lockhier.release_lease($after2)" >/dev/null

result_line
