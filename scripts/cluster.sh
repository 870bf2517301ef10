#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for tests, the demo and benchmarks, run by the unprivileged
# postgres user when invoked as root. Nothing outside LOCKHIER_HOME is touched.
#
#   scripts/cluster.sh start    initdb (once) and start; prints nothing on success
#   scripts/cluster.sh stop     stop it (fast shutdown); no-op when it is not running
#   scripts/cluster.sh env      print the PG* variables that point psql & co. at it
set -euo pipefail

LOCKHIER_HOME=${LOCKHIER_HOME:-/var/tmp/lockhier}
PGPORT=${LOCKHIER_PORT:-5499}
PGBIN=${PGBIN:-$(pg_config --bindir)}
DATA=$LOCKHIER_HOME/data
SOCKETS=$LOCKHIER_HOME/run

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    # env -u: a Rust backtrace setting in the caller's environment would end up in DETAILs.
    sudo -u postgres env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$@"
  else
    env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$@"
  fi
}

case "${1:-}" in
  start)
    mkdir -p "$LOCKHIER_HOME"
    [ "$(id -u)" = 0 ] && chown postgres "$LOCKHIER_HOME"
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
    echo "export PGHOST=$SOCKETS PGPORT=$PGPORT PGUSER=postgres"
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
