#!/usr/bin/env bash
# A private PostgreSQL cluster for tests, the demo and benchmarks, run by the unprivileged
# postgres user when invoked as root. Nothing outside LOCKHIER_HOME is touched.
#
#   scripts/cluster.sh start    initdb (once) and start; prints nothing on success
#   scripts/cluster.sh stop     stop it (fast shutdown); no-op when it is not running
#   scripts/cluster.sh env      print the variables that point psql & co. at it
#
#   LOCKHIER_PG    the PostgreSQL major to run (default 15)
#   LOCKHIER_HOME  where its data and sockets live (default /var/tmp/lockhier)
#   LOCKHIER_PORT  its port (default 5499)
#   LOCKHIER_PRELOAD  0 for a cluster without lockhier in shared_preload_libraries (no leases)
set -euo pipefail
source "$(dirname "$0")/lib/pg.sh"

LOCKHIER_PG=${LOCKHIER_PG:-15}
LOCKHIER_HOME=${LOCKHIER_HOME:-/var/tmp/lockhier}
PGPORT=${LOCKHIER_PORT:-5499}
PG_CONFIG=$(pg_config_for "$LOCKHIER_PG")
PGBIN=$("$PG_CONFIG" --bindir)
DATA=$LOCKHIER_HOME/data
SOCKETS=$LOCKHIER_HOME/run

case "${1:-}" in
  start)
    mkdir -p "$LOCKHIER_HOME"
    [ "$(id -u)" = 0 ] && chown postgres "$LOCKHIER_HOME"
    if [ -f "$DATA/PG_VERSION" ] && [ "$(cat "$DATA/PG_VERSION")" != "$LOCKHIER_PG" ]; then
      echo "$DATA holds a PostgreSQL $(cat "$DATA/PG_VERSION") cluster, not $LOCKHIER_PG: remove it first" >&2
      exit 1
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
      as_owner mkdir -p "$DATA" "$SOCKETS"
      as_owner "$PGBIN/initdb" -D "$DATA" -A trust -E UTF8 --locale=C -U postgres >"$LOCKHIER_HOME/initdb.log"
      cat >>"$DATA/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKETS'
max_connections = 120
# Prepared transactions keep their locks with no process behind them: tested (prepared.spec).
max_prepared_transactions = 10
CONF
      # Leases need lockhier's shared memory and its lease keeper (docs/leases.md);
      # LOCKHIER_PRELOAD=0 makes a cluster without them.
      if [ "${LOCKHIER_PRELOAD:-1}" = 1 ]; then
        cat >>"$DATA/postgresql.conf" <<'CONF'
shared_preload_libraries = 'lockhier'
lockhier.max_leases = 1024
CONF
      fi
      cat >>"$DATA/postgresql.conf" <<CONF

shared_buffers = 128MB
fsync = off
full_page_writes = off
deadlock_timeout = 200ms
log_min_messages = warning
log_line_prefix = '%m [%p] %a '
CONF
    fi
    if ! as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$LOCKHIER_HOME/server.log" -w -t 60 start >/dev/null
    fi
    ;;
  stop)
    if [ -f "$DATA/PG_VERSION" ] && as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    fi
    ;;
  env)
    echo "export PGHOST=$SOCKETS PGPORT=$PGPORT PGUSER=postgres PG_CONFIG=$PG_CONFIG PATH=$PGBIN:\$PATH"
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
