#!/usr/bin/env bash
# The demo: four psql sessions against a private cluster, as a no-code builder would use
# lockhier. Builds and installs first (skipping what is done), then plays the scenes with
# timestamped output, stops the cluster and says how to start it again to try more.
#
# What orders the scenes is the sessions' state, never a sleep: each statement's output is
# shown once psql has finished it (a marker it echoes afterwards), and the update that waits is
# seen waiting in pg_locks before the snapshot in its way commits.
#
#   PG=NN                 the PostgreSQL major to run it on (default 15)
#   LOCKHIER_DEMO_BUILD   0: play on what is installed, without set-up or build (make test
#                         does so, on the build its SQL suites installed)
#   LOCKHIER_DEMO_PAUSE   seconds to pause before each scene, for the eye only (default 1;
#                         make test: 0)
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
"$PSQL" -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS demo" -c "CREATE DATABASE demo"
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

# A session is a psql process fed through a FIFO; every line it prints gets a timestamp and the
# session's name and goes to the session's file, which `show` prints from in the demo's order.
declare -A fd_of shown last_marker
start_session() { # name application_name fd
  local name=$1 app=$2 fd=$3
  mkfifo "$work/$name"
  : >"$work/$name.out"
  PGAPPNAME=$app "$PSQL" -X -a -d demo -v VERBOSITY=default <"$work/$name" 2>&1 \
    | while IFS= read -r line; do
        printf '%s  %-9s | %s\n' "$(date +%H:%M:%S.%3N)" "$name" "$line" >>"$work/$name.out"
      done &
  pids+=($!)
  eval "exec $fd>\"$work/$name\""
  fd_of[$name]=$fd
  shown[$name]=0
}
say() {
  sleep "${LOCKHIER_DEMO_PAUSE:-1}"
  printf '\n%s  ==> %s\n' "$(date +%H:%M:%S.%3N)" "$*"
}

# until_true WHAT CMD...: retry CMD until it succeeds; 30 s without is a failure of the demo.
until_true() {
  local what=$1 tries=0
  shift
  until "$@"; do
    tries=$((tries + 1))
    [ "$tries" -lt 600 ] || { echo "[demo] gave up after 30 s waiting until $what" >&2; exit 1; }
    sleep 0.05
  done
}

# show NAME: print what session NAME printed since the last show, without the markers.
show() {
  local name=$1 total
  total=$(wc -l <"$work/$name.out")
  sed -n "$((shown[$name] + 1)),${total}p" "$work/$name.out" | grep -vE '\| (\\echo )?@@[0-9]+$' || true
  shown[$name]=$total
}

# send NAME SQL: hand a statement to a session; `finish NAME` waits until psql has run it (and
# everything before it) and shows its output.
marker=0
send() {
  marker=$((marker + 1))
  printf '%s\n\\echo @@%s\n' "$2" "$marker" >&"${fd_of[$1]}"
  last_marker[$1]=$marker
}
finish() { until_true "$1 has run its statement" grep -q "| @@${last_marker[$1]}\$" "$work/$1.out"; show "$1"; }
run() { send "$1" "$2"; finish "$1"; }

# waiting APP: whether the session named APP waits for a lock (a lock not granted in pg_locks).
waiting() {
  [ "$("$PSQL" -X -At -d demo -c "SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks l
      JOIN pg_catalog.pg_stat_activity a USING (pid)
      WHERE a.application_name OPERATOR(pg_catalog.=) '$1' AND NOT l.granted")" != 0 ]
}

start_session snapshot "snapshot of app 7" 3
start_session editor "field editor" 4
start_session import "csv-import #55" 5
start_session snapshot2 "snapshot #2 of app 7" 6

say "A snapshot of application 7 starts (share lock on all its classes)."
run snapshot "BEGIN;"
run snapshot "SELECT lockhier.lock_application(7, mode => 'share');"

say "A user updates field 99 of table 12 in application 7: it fails at once, saying who is in the way."
run editor "BEGIN;"
run editor "SELECT lockhier.lock_field(7, 12, 99, 'field__update');"
run editor "ROLLBACK;"

say "A second snapshot of application 7 runs beside the first."
run snapshot2 "BEGIN;"
run snapshot2 "SELECT lockhier.lock_application(7, mode => 'share');"
run snapshot2 "COMMIT;"

say "The user retries, willing to wait up to 10 s."
run editor "BEGIN;"
send editor "SELECT lockhier.lock_field(7, 12, 99, 'field__update', wait => '10 s');"
until_true "the field editor waits in pg_locks" waiting "field editor"
# psql echoed the statement before sending it; its line may still be on its way to the file.
until_true "the statement is in the editor's output" grep -qF "wait => '10 s');" "$work/editor.out"
show editor
say "pg_locks shows the update waiting in the server's lock queue; the snapshot ends, and the update goes through."
run snapshot "COMMIT;"
finish editor
run editor "COMMIT;"

say "A CSV import into table 12 starts: no deletion or type change of its fields meanwhile."
run import "BEGIN;"
run import "SELECT lockhier.lock_table(7, 12, ARRAY['field__deletion', 'field__type_update', 'field__incompatible_update'], 'share');"

say "Deleting field 99 fails at once; renaming it does not conflict with the import."
run editor "BEGIN;"
run editor "SELECT lockhier.lock_field(7, 12, 99, 'field__deletion');"
run editor "ROLLBACK;"
run editor "BEGIN;"
run editor "SELECT lockhier.lock_field(7, 12, 99, 'field__rename');"
run editor "COMMIT;"

say "Who blocks a deletion right now (same words as the error)?"
run editor "SELECT pid, application_name, conflict, granted, state FROM lockhier.blockers_field(7, 12, 99, 'field__deletion');"
run import "COMMIT;"

cleanup
trap - EXIT
say "Done; nothing is left running. To try more on the demo cluster:"
cat <<EOF
    LOCKHIER_PG=$LOCKHIER_PG LOCKHIER_HOME=$LOCKHIER_HOME LOCKHIER_PORT=$LOCKHIER_PORT scripts/cluster.sh start
    $PSQL -h $PGHOST -p $PGPORT -U postgres demo
    LOCKHIER_PG=$LOCKHIER_PG LOCKHIER_HOME=$LOCKHIER_HOME LOCKHIER_PORT=$LOCKHIER_PORT scripts/cluster.sh stop
EOF
