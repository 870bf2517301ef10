#!/usr/bin/env bash
# The demo: three psql sessions against a private cluster, as a no-code builder would use
# lockhier. Builds and installs first (skipping what is done), then plays the scenes with
# timestamped output, stops the cluster and says how to start it again to try more.
#
#   PG=NN                 the PostgreSQL major to run it on (default 15)
#   LOCKHIER_DEMO_BUILD   0: play on what is installed, without set-up or build (make test
#                         does so, on the build its SQL suites installed)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

export LOCKHIER_PG=${PG:-15}
if [ "${LOCKHIER_DEMO_BUILD:-1}" != 0 ]; then
  LOCKHIER_SETUP_CLIENTS=0 LOCKHIER_PG_VERSIONS=$LOCKHIER_PG bash scripts/setup.sh
  echo "[demo] building and installing lockhier for PostgreSQL $LOCKHIER_PG (release)..."
  build_lockhier "$LOCKHIER_PG"
  install_build "$LOCKHIER_PG"
fi

export LOCKHIER_HOME=${LOCKHIER_DEMO_HOME:-/var/tmp/lockhier-demo-$LOCKHIER_PG} LOCKHIER_PORT=${LOCKHIER_DEMO_PORT:-5497}
scripts/cluster.sh start
eval "$(scripts/cluster.sh env)"
PSQL=$("$PG_CONFIG" --bindir)/psql
"$PSQL" -X -q -d postgres -c "DROP DATABASE IF EXISTS demo" -c "CREATE DATABASE demo"
"$PSQL" -X -q -d demo <<'SQL'
CREATE EXTENSION lockhier;
SQL

work=$(mktemp -d)
pids=()
cleanup() {
  exec 3>&- 4>&- 5>&- 6>&- 2>/dev/null || true
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  scripts/cluster.sh stop
}
trap cleanup EXIT

# A session is a psql process fed through a FIFO; every line it prints gets a timestamp and
# the session's name.
start_session() { # name application_name fd
  local name=$1 app=$2 fd=$3
  mkfifo "$work/$name"
  PGAPPNAME=$app "$PSQL" -X -a -d demo -v VERBOSITY=default <"$work/$name" 2>&1 \
    | while IFS= read -r line; do printf '%s  %-9s | %s\n' "$(date +%H:%M:%S.%3N)" "$name" "$line"; done &
  pids+=($!)
  eval "exec $fd>\"$work/$name\""
}
say() { printf '\n%s  ==> %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }
run() { # fd sql: send a statement, give its output time to appear
  printf '%s\n' "$2" >&"$1"
  sleep "${3:-0.4}"
}

start_session snapshot "snapshot of app 7" 3
start_session editor "field editor" 4
start_session import "csv-import #55" 5
start_session snapshot2 "snapshot #2 of app 7" 6
sleep 0.5

say "A snapshot of application 7 starts (share lock on all its classes)."
run 3 "BEGIN;"
run 3 "SELECT lockhier.lock_application(7, mode => 'share');"

say "A user updates field 99 of table 12 in application 7: it fails at once, saying who is in the way."
run 4 "SELECT lockhier.lock_field(7, 12, 99, 'field__update');"

say "A second snapshot of application 7 runs beside the first."
run 6 "BEGIN;"
run 6 "SELECT lockhier.lock_application(7, mode => 'share');"
run 6 "COMMIT;"

say "The user retries, willing to wait up to 10 s; the snapshot ends 2 s later and the update goes through."
run 4 "\\timing on" 0.1
run 4 "SELECT lockhier.lock_field(7, 12, 99, 'field__update', wait => '10 s');" 2
run 3 "COMMIT;" 0.6
run 4 "\\timing off" 0.1

say "A CSV import into table 12 starts: no deletion or type change of its fields meanwhile."
run 5 "BEGIN;"
run 5 "SELECT lockhier.lock_table(7, 12, ARRAY['field__deletion', 'field__type_update', 'field__incompatible_update'], 'share');"

say "Deleting field 99 fails at once; renaming it does not conflict with the import."
run 4 "SELECT lockhier.lock_field(7, 12, 99, 'field__deletion');"
run 4 "SELECT lockhier.lock_field(7, 12, 99, 'field__rename');"

say "Who blocks a deletion right now (same words as the error)?"
run 4 "SELECT pid, application_name, conflict, granted, state FROM lockhier.blockers_field(7, 12, 99, 'field__deletion');"
run 5 "COMMIT;"

cleanup
trap - EXIT
say "Done; nothing is left running. To try more on the demo cluster:"
cat <<EOF
    LOCKHIER_PG=$LOCKHIER_PG LOCKHIER_HOME=$LOCKHIER_HOME LOCKHIER_PORT=$LOCKHIER_PORT scripts/cluster.sh start
    $PSQL -h $PGHOST -p $PGPORT -U postgres demo
    LOCKHIER_PG=$LOCKHIER_PG LOCKHIER_HOME=$LOCKHIER_HOME LOCKHIER_PORT=$LOCKHIER_PORT scripts/cluster.sh stop
EOF
