#!/usr/bin/env bash
# lockhier behind PgBouncer in transaction pooling: starts a private PgBouncer in front of the
# cluster PGHOST/PGPORT point at, runs the tests of this folder through it (pytest, with
# clients/.venv), and stops it however they end. clients/run.sh runs this, after creating the
# database; the arguments go to pytest.
#
#   PGHOST=... PGPORT=... PGUSER=postgres clients/pgbouncer/run.sh [pytest arguments]
#
#   LOCKHIER_PGBOUNCER_PORT       its port on 127.0.0.1 (default PGPORT + 1000)
#   LOCKHIER_CLIENTS_PGBOUNCER_DB the database behind it (default lockhier_clients_pgbouncer)
#
# Two pools lead to that database, both in transaction pooling: <db> with two server
# connections, so that one client's transactions land on different server connections and
# several clients share them, and <db>_single with one, so that which client lands on which
# server connection is known.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
: "${PGHOST:?PGHOST must point at the cluster}" "${PGPORT:?}" "${PGUSER:?}"
PGBOUNCER=${PGBOUNCER:-$(command -v pgbouncer || echo /usr/sbin/pgbouncer)}
PORT=${LOCKHIER_PGBOUNCER_PORT:-$((PGPORT + 1000))}
DB=${LOCKHIER_CLIENTS_PGBOUNCER_DB:-lockhier_clients_pgbouncer}
[ -x "$PGBOUNCER" ] || { echo "pgbouncer not found (apt-get install pgbouncer)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/lockhier-pgbouncer.XXXXXX)
stop() {
  local pid
  pid=$(cat "$DIR/pgbouncer.pid" 2>/dev/null)
  if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 1' INT TERM HUP  # the EXIT trap stops PgBouncer then too

cat >"$DIR/pgbouncer.ini" <<INI
[databases]
$DB = host=$PGHOST port=$PGPORT dbname=$DB pool_size=2
${DB}_single = host=$PGHOST port=$PGPORT dbname=$DB pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
; server_reset_query (DISCARD ALL) is left as it is: transaction pooling never runs it
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
INI
printf '"%s" ""\n' "$PGUSER" >"$DIR/userlist.txt"

# PgBouncer will not run as root: it then runs as postgres, the cluster's own user.
if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$DIR"
  "$PGBOUNCER" -d -u postgres "$DIR/pgbouncer.ini" || { cat "$DIR/pgbouncer.log" >&2; exit 1; }
else
  "$PGBOUNCER" -d "$DIR/pgbouncer.ini" || { cat "$DIR/pgbouncer.log" >&2; exit 1; }
fi
# It forks at once and exits 0 even when it then cannot listen (the port taken): wait for its
# own "listening" line, and connect through it, before any test runs.
ready=0
for _ in $(seq 300); do
  pid=$(cat "$DIR/pgbouncer.pid" 2>/dev/null)
  if grep -q FATAL "$DIR/pgbouncer.log" 2>/dev/null; then break; fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q "listening on 127.0.0.1:$PORT" "$DIR/pgbouncer.log" &&
     psql -X -q -h 127.0.0.1 -p "$PORT" -d "$DB" -c 'SELECT 1' >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "PgBouncer is not serving $DB on 127.0.0.1:$PORT (LOCKHIER_PGBOUNCER_PORT chooses another port):" >&2
  cat "$DIR/pgbouncer.log" >&2
  exit 1
fi
echo "PgBouncer $("$PGBOUNCER" --version | sed -n '1s/^PgBouncer //p') on 127.0.0.1:$PORT (pid $pid), transaction pooling"

export LOCKHIER_PGBOUNCER_HOST=127.0.0.1 LOCKHIER_PGBOUNCER_PORT=$PORT LOCKHIER_CLIENTS_PGBOUNCER_DB=$DB
cd "$HERE" && "$HERE/../.venv/bin/python" -m pytest -v "$@"
rc=$?
[ "$rc" = 0 ] || { echo "--- PgBouncer's log"; cat "$DIR/pgbouncer.log"; }
exit "$rc"
