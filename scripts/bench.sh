#!/usr/bin/env bash
# make bench: lockhier's throughput beside the stock advisory lock and the designs it replaces,
# the conflict path's latency, the planner's cost, leases (what loading lease support costs
# lock_field, a lease taken and released, how soon an expired lease lets a waiter in, leases
# under load beside the lease table, a cycle's latency with many leases held, the restore of
# many after an immediate shutdown), and lock_field beside the stock lock on every installed
# PostgreSQL major; writes BENCHMARKS.md and bench/throughput.png. Installs what it needs first
# (skipping what is there).
#
#   make bench                         the full run on PostgreSQL 15: about 45 minutes on 2 cores
#                                      (20 of them restoring 100,000 leases after a restart)
#   make bench PG=18                   the same on another major (15, 16, 17 or 18)
#   BENCH_QUICK=1 make bench           a smoke run (about 3 minutes), labelled SMOKE in the report
#   BENCH_ONLY=paths make bench        only lock_path beside lock_field and lock_many beside four
#                                      lock_field calls (about 7 minutes; quick: 2),
#                                      printed with its targets; BENCHMARKS.md is left as it is
#   BENCH_ONLY=leases make bench       only leases under load beside the lease table (about 8
#                                      minutes; quick: 1), in a fresh cluster, printed with its
#                                      targets; BENCHMARKS.md is left as it is
#
# The run, in order: the release build of lockhier installed into each major where needed; the
# planner timed (cargo test --release); then on PostgreSQL $PG, in a private cluster with
# lockhier in shared_preload_libraries and durable commits: throughput (pgbench), the conflict
# path, lock_field against a second cluster without lease support, leases timed from a client,
# lock_path with 3 and 8 names beside lock_field; leases under load beside the lease table (pgbench); then leases at scale in a cluster of their
# own (many leases held, a restart); last, for each major 15 to 18 in its own cluster,
# lock_field beside the stock lock at 2 clients.
#
# Settings (environment):
#   PG              the PostgreSQL major measured in full (default 15; make bench PG=NN sets it)
#   BENCH_SECONDS   seconds of pgbench measurement in all (default 600; quick 36), split evenly
#                   over rounds x designs x client counts, at least 1 s a run
#   BENCH_ROUNDS    rounds (default 4; quick 1): each runs every design at every client count
#                   once, in a new order; the report takes medians across rounds
#   BENCH_CLIENTS   client counts (default "1 2 4"; quick "1 2")
#   BENCH_SAMPLES   timed calls per conflict-path variant (default 4000; quick 400)
#   BENCH_PAIR_ROUNDS, BENCH_PAIR_SECONDS  the side-by-side comparisons (lease support loaded or
#                   not; lock_path beside lock_field; lock_field and the stock lock on each major):
#                   rounds of one run of each side, in an order turning each round, and seconds a
#                   run (default 10 and 3; quick 3 and 1)
#   BENCH_LEASE_SAMPLES   timed pairs (take, release) per lease design (default 2000; quick 200)
#   BENCH_EXPIRY_SAMPLES  leases expired under a queued waiter (default 100; quick 20)
#   BENCH_LEASE_ROUNDS, BENCH_LEASE_SECONDS  leases under load (bench/lease_load.py): rounds, and
#                   seconds a pgbench run (default 6 and 5; quick 1 and 2); each round runs the
#                   lease cycle and the lease table's at every count of BENCH_LEASE_CLIENTS
#                   (default "1 2 4 8"), and the renewals at BENCH_RENEW_CLIENTS (default "1 8")
#   BENCH_HELD      the leases held while a cycle is timed (bench/lease_scale.py), besides none
#                   (default "10000 100000"; quick "1000 10000"); the most are also restored after
#                   an immediate shutdown. The scale cluster gets lockhier.max_leases = the most
#                   + 1 for the timed cycle's own lease (at the setting's ceiling, 100,000, one
#                   fewer is held), and a lock table of at least 10 entries a lease
#                   (max_locks_per_transaction)
#   BENCH_SCALE_SAMPLES   timed cycles per block at each level (default 2000; quick 200)
#   BENCH_RESTORE_TIMEOUT seconds to wait for the first lockhier call after the restart
#                   (default 1800; quick 300)
#   BENCH_INSTALL   1: rebuild and reinstall lockhier (as it ships: the dist profile) into each
#                   major measured; 0: only where it is missing; unset: also where the installed
#                   library is not this checkout's package build, or is older than its sources
#                   (a test build left by make test, say)
#   LOCKHIER_PG_VERSIONS  the majors scripts/setup.sh installs (default "15 16 17 18"); a major
#                   that is not installed is reported as skipped
#   BENCH_HOME, BENCH_PORT  the main cluster (default /var/tmp/lockhier-bench, 5483); the others
#                   live beside it: $BENCH_HOME-pgNN on BENCH_PORT+1..+4 (majors 15..18),
#                   $BENCH_HOME-nopreload on BENCH_PORT+5 and $BENCH_HOME-scale on BENCH_PORT+6.
#                   Each is made anew and stopped at the end
#   BENCH_OUT       raw results (default bench/results: throughput.csv, conflict.json, ...;
#                   with BENCH_ONLY=paths or leases, bench/results-paths or bench/results-leases)
#   BENCH_NOTE      a sentence the report shows at its top (how the machine was, say)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib/pg.sh

PG=${PG:-15}
case "$PG" in 15 | 16 | 17 | 18) ;; *) echo "PG must be 15, 16, 17 or 18, not $PG" >&2; exit 2 ;; esac
ALL_VERSIONS="15 16 17 18"
QUICK=${BENCH_QUICK:-0}
ONLY=${BENCH_ONLY:-}
case "$ONLY" in "" | paths | leases) ;; *) echo "BENCH_ONLY must be empty, paths or leases, not $ONLY" >&2; exit 2 ;; esac
[ "${1:-}" = "--quick" ] && QUICK=1
if [ "$QUICK" = 1 ]; then
  SECONDS_TOTAL=${BENCH_SECONDS:-36} ROUNDS=${BENCH_ROUNDS:-1} CLIENTS=${BENCH_CLIENTS:-"1 2"}
  SAMPLES=${BENCH_SAMPLES:-400} PAIR_ROUNDS=${BENCH_PAIR_ROUNDS:-3} PAIR_SECONDS=${BENCH_PAIR_SECONDS:-1}
  LEASE_SAMPLES=${BENCH_LEASE_SAMPLES:-200} EXPIRY_SAMPLES=${BENCH_EXPIRY_SAMPLES:-20}
  LEASE_ROUNDS=${BENCH_LEASE_ROUNDS:-1} LEASE_SECONDS=${BENCH_LEASE_SECONDS:-2}
  HELD=${BENCH_HELD:-"1000 10000"} SCALE_SAMPLES=${BENCH_SCALE_SAMPLES:-200}
  RESTORE_TIMEOUT=${BENCH_RESTORE_TIMEOUT:-300}
else
  SECONDS_TOTAL=${BENCH_SECONDS:-600} ROUNDS=${BENCH_ROUNDS:-4} CLIENTS=${BENCH_CLIENTS:-"1 2 4"}
  SAMPLES=${BENCH_SAMPLES:-4000} PAIR_ROUNDS=${BENCH_PAIR_ROUNDS:-10} PAIR_SECONDS=${BENCH_PAIR_SECONDS:-3}
  LEASE_SAMPLES=${BENCH_LEASE_SAMPLES:-2000} EXPIRY_SAMPLES=${BENCH_EXPIRY_SAMPLES:-100}
  LEASE_ROUNDS=${BENCH_LEASE_ROUNDS:-6} LEASE_SECONDS=${BENCH_LEASE_SECONDS:-5}
  HELD=${BENCH_HELD:-"10000 100000"} SCALE_SAMPLES=${BENCH_SCALE_SAMPLES:-2000}
  RESTORE_TIMEOUT=${BENCH_RESTORE_TIMEOUT:-1800}
fi
LEASE_CLIENTS=${BENCH_LEASE_CLIENTS:-"1 2 4 8"} RENEW_CLIENTS=${BENCH_RENEW_CLIENTS:-"1 8"}
HOME_MAIN=${BENCH_HOME:-/var/tmp/lockhier-bench} PORT_MAIN=${BENCH_PORT:-5483}
HOME_NOPRELOAD=$HOME_MAIN-nopreload PORT_NOPRELOAD=$((PORT_MAIN + 5))
HOME_SCALE=$HOME_MAIN-scale PORT_SCALE=$((PORT_MAIN + 6))
OUT=${BENCH_OUT:-$ROOT/bench/results${ONLY:+-$ONLY}} # BENCH_ONLY keeps the full run's results
VENV=$ROOT/bench/.venv
PY=$VENV/bin/python
DB=bench
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
started=$(date +%s)

# ---------------------------------------------------------------- clusters
# A cluster is "MAJOR HOME PORT PRELOAD" (PRELOAD 0: no lockhier in shared_preload_libraries).
# cluster SPEC... start|stop|env runs scripts/cluster.sh on it.
cluster() { LOCKHIER_PG=$1 LOCKHIER_HOME=$2 LOCKHIER_PORT=$3 LOCKHIER_PRELOAD=$4 scripts/cluster.sh "$5"; }
# in_cluster SPEC... command...: the command with psql & co. pointed at that cluster.
in_cluster() (
  eval "$(cluster "$1" "$2" "$3" "$4" env)"
  unset PGDATABASE PGOPTIONS PGAPPNAME
  shift 4
  "$@"
)
STARTED=() # every cluster this run started, stopped on exit whatever happens
stop_started() {
  local spec
  for spec in "${STARTED[@]}"; do
    # shellcheck disable=SC2086 # a spec is four words
    cluster $spec stop || true
  done
}
trap stop_started EXIT

# fresh_cluster SPEC...: a new initdb with the bench schema loaded. scripts/cluster.sh makes a
# test cluster (fsync off); for a fair comparison the benchmark puts durability back to
# PostgreSQL's defaults: the designs lockhier replaces write rows and really pay for a durable
# commit in production, and so do leases (the keeper flushes its journal); lock-only
# transactions write no WAL at all. The *_async variants show the write designs with
# synchronous_commit off for their sessions.
fresh_cluster() {
  local home=$2
  # Each step returns on failure: errexit does not hold when a caller tests the result.
  cluster "$@" stop || return 1
  rm -rf "$home"
  STARTED+=("$*")
  cluster "$@" start || return 1
  cat >>"$home/data/postgresql.conf" <<'CONF' || return 1
# --- scripts/bench.sh: PostgreSQL's own defaults for durability (these override the above)
fsync = on
full_page_writes = on
synchronous_commit = on
CONF
  cluster "$@" stop && cluster "$@" start || return 1
  in_cluster "$@" psql -X -q -d postgres -c "CREATE DATABASE $DB" || return 1
  # lockhier warns (25P01) about a transaction lock taken in autocommit, as every one-statement
  # pgbench transaction here takes it; in use it is taken after BEGIN, where it does not warn.
  # Delivering a warning per call (to the client and the server log) is not the lock's cost.
  in_cluster "$@" psql -X -q -d postgres -c "ALTER DATABASE $DB SET client_min_messages = error" \
    -c "ALTER DATABASE $DB SET log_min_messages = error" || return 1
  in_cluster "$@" psql -X -q -v ON_ERROR_STOP=1 -v fields=200000 -v applications=1000 -d "$DB" -f bench/schema.sql
}

# first_error LOG: the first error a cluster's setup printed, without psql's prefix.
first_error() { grep -m 1 -E 'FATAL|ERROR|error' "$1" | sed 's/^psql:[^ ]* //'; }

# ---------------------------------------------------------------- what it needs
LOCKHIER_SETUP_CLIENTS=0 bash scripts/setup.sh
rm -rf "$OUT" && mkdir -p "$OUT"

# installed_pg_config NN: the pg_config of PostgreSQL NN if it is installed (without installing it).
installed_pg_config() {
  local found
  found=$(sed -n "s/^pg$1 *= *\"\(.*\)\"/\1/p" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null)
  if [ -n "$found" ] && [ -x "$found" ]; then echo "$found"; fi
}

# install_lockhier NN PG_CONFIG: this checkout's build as it ships (the dist profile) into
# PostgreSQL NN, unless it is there already (see BENCH_INSTALL).
install_lockhier() {
  local v=$1 pg_config=$2 so built why=""
  so=$("$pg_config" --pkglibdir)/lockhier.so
  if [ "${BENCH_INSTALL:-}" = 1 ]; then
    why="BENCH_INSTALL=1"
  elif [ ! -f "$so" ] || [ ! -f "$("$pg_config" --sharedir)/extension/lockhier.control" ]; then
    why="not installed"
  elif [ "${BENCH_INSTALL:-}" != 0 ]; then
    built=$(build_tree "$v" dist)$so
    if ! cmp -s "$so" "$built"; then
      why="the installed library is not this checkout's package build"
    elif [ -n "$(find src sql Cargo.toml Cargo.lock lockhier.control -type f -newer "$so" -print -quit)" ]; then
      why="the sources changed since it was built"
    fi
  fi
  [ -n "$why" ] || return 0
  log "PostgreSQL $v: building and installing the package build of lockhier ($why)"
  # install_build replaces the installed files rather than writing over them, which would crash
  # a server running the library.
  build_lockhier "$v" dist 2>"$OUT/install-pg$v.log" || { cat "$OUT/install-pg$v.log" >&2; return 1; }
  install_build "$v" dist
}

# The majors compared side by side, and why any is not: all builds happen here, before any
# cluster starts, so they compete with nothing measured.
PG_CONFIG=$(pg_config_for "$PG")
PGBIN=$("$PG_CONFIG" --bindir)
[ -x "$PGBIN/pgbench" ] || { echo "pgbench not found in $PGBIN" >&2; exit 1; }
install_lockhier "$PG" "$PG_CONFIG"
declare -A VERSION_SKIP=() VERSION_BIN=()
for v in $ALL_VERSIONS; do
  if [ -n "$ONLY" ] && [ "$v" != "$PG" ]; then
    VERSION_SKIP[$v]="BENCH_ONLY=$ONLY" && continue
  fi
  pg_config=$(installed_pg_config "$v")
  [ -z "$pg_config" ] || VERSION_BIN[$v]=$("$pg_config" --bindir)
  if [ -z "$pg_config" ]; then
    VERSION_SKIP[$v]="PostgreSQL $v is not installed (scripts/setup.sh installs it; LOCKHIER_PG_VERSIONS picks which)"
  elif [ "$v" != "$PG" ] && ! install_lockhier "$v" "$pg_config"; then
    VERSION_SKIP[$v]="lockhier did not build or install for PostgreSQL $v (see install-pg$v.log)"
  fi
done

python_venv "$VENV" "$ROOT/bench/requirements.txt"

# ---------------------------------------------------------------- the planner, in release mode
# A bench target of lockhier-core without a harness (src/core/benches/plan_timing.rs): only the
# pure crate is built in release (seconds), before the cluster starts, so the build competes
# with nothing measured. It fails if a field plan costs 1 µs or more.
# The dist profile, as what ships is measured (cargo bench's own profile has thin LTO).
if [ -z "$ONLY" ]; then
  log "planner and key timing (cargo bench --profile dist -p lockhier-core --bench plan_timing)"
  cargo bench --profile dist -p lockhier-core --bench plan_timing \
    >"$OUT/plan_timing.log" 2>&1 || { cat "$OUT/plan_timing.log" >&2; echo "plan_timing failed" >&2; exit 1; }
  sed -n 's/.*plan_timing: //p' "$OUT/plan_timing.log" >"$OUT/plan_timing.txt"
  cat "$OUT/plan_timing.txt"
fi

# ---------------------------------------------------------------- the cluster
# lockhier preloaded (scripts/cluster.sh's default): leases are measured here, and the
# throughput figures are those of a server ready for them.
MAIN=("$PG" "$HOME_MAIN" "$PORT_MAIN" 1)
log "PostgreSQL $PG: starting a fresh cluster in $HOME_MAIN on port $PORT_MAIN"
fresh_cluster "${MAIN[@]}"
eval "$(cluster "${MAIN[@]}" env)"
unset PGDATABASE PGOPTIONS PGAPPNAME

# ---------------------------------------------------------------- the machine
log "recording the machine and the cluster's settings"
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "quick=$QUICK"
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "cpus=$(nproc)"
  echo "cores_per_socket=$(lscpu | sed -n 's/^Core(s) per socket: *//p' | head -1)"
  echo "threads_per_core=$(lscpu | sed -n 's/^Thread(s) per core: *//p' | head -1)"
  echo "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)"
  echo "ram=$(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "kernel=$(uname -r)"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "note=${BENCH_NOTE:-}"
  echo "pg=$PG"
  echo "postgres=$(psql -X -At -d "$DB" -c 'SHOW server_version')"
  echo "pgbench=$("$PGBIN/pgbench" --version)"
  echo "lockhier=$(psql -X -At -d "$DB" -c "SELECT extversion FROM pg_extension WHERE extname = 'lockhier'")"
  echo "lockhier_so=$(ls -l --time-style='+%Y-%m-%d %H:%M' "$("$PG_CONFIG" --pkglibdir)/lockhier.so" | awk '{print $6, $7}')"
  echo "git=$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src sql 2>/dev/null || echo ' (src or sql modified)')"
  echo "rustc=$(rustc --version)"
  echo "rounds=$ROUNDS"
  echo "clients=$CLIENTS"
  echo "samples=$SAMPLES"
  echo "pair_rounds=$PAIR_ROUNDS"
  echo "pair_seconds=$PAIR_SECONDS"
  echo "lease_samples=$LEASE_SAMPLES"
  echo "expiry_samples=$EXPIRY_SAMPLES"
  echo "lease_rounds=$LEASE_ROUNDS"
  echo "lease_seconds=$LEASE_SECONDS"
  echo "lease_clients=$LEASE_CLIENTS"
  echo "renew_clients=$RENEW_CLIENTS"
  echo "held=$HELD"
  echo "scale_samples=$SCALE_SAMPLES"
} >"$OUT/machine.txt"
psql -X -At -F '=' -d "$DB" -c "SELECT name, setting || coalesce(' ' || unit, '') FROM pg_settings
  WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'wal_level',
                 'shared_buffers', 'max_connections', 'max_locks_per_transaction', 'max_wal_size',
                 'checkpoint_timeout', 'autovacuum', 'jit', 'huge_pages', 'deadlock_timeout',
                 'log_min_error_statement', 'log_min_messages', 'client_min_messages',
                 'shared_preload_libraries', 'lockhier.max_leases',
                 'listen_addresses')
  ORDER BY name" >"$OUT/settings.txt"
# How fast this disk makes a commit durable: fdatasync of one 8 kB write, in the WAL's file system.
"$PGBIN/pg_test_fsync" -s 1 -f "$HOME_MAIN/pg_test_fsync.tmp" >"$OUT/pg_test_fsync.txt" 2>&1 || true
rm -f "$HOME_MAIN/pg_test_fsync.tmp"

# ---------------------------------------------------------------- paths beside lock_field
# lock_path with 3 and 8 names beside lock_field on the main cluster, each one call after BEGIN,
# and four field locks as four lock_field calls beside one lock_many (bench/designs.py's
# PATH_DESIGNS), the five in an order turning each round. A failure is reported (paths.txt) and
# the run goes on.
run_paths() {
  log "lock_path (3 and 8 names) beside lock_field, lock_many beside 4 lock_field calls, $PAIR_ROUNDS rounds x clients (1 2) x ${PAIR_SECONDS} s, turning"
  local status=measured
  "$PY" bench/paired.py --tag paths --db "$DB" --clients 1 2 --rounds "$PAIR_ROUNDS" --seconds "$PAIR_SECONDS" \
    --bindir "$PGBIN" --out "$OUT/paths.csv" \
    --side lock_field lock_field_tx "$HOME_MAIN/run" "$PORT_MAIN" \
    --side path_3 lock_path_3 "$HOME_MAIN/run" "$PORT_MAIN" \
    --side path_8 lock_path_8 "$HOME_MAIN/run" "$PORT_MAIN" \
    --side field_x4 lock_field_x4 "$HOME_MAIN/run" "$PORT_MAIN" \
    --side many_4 lock_many_4 "$HOME_MAIN/run" "$PORT_MAIN" ||
    status="failed: its pgbench runs did not complete (see the log of make bench)"
  [ "$status" = measured ] || log "WARNING: paths: $status"
  echo "status=$status" >"$OUT/paths.txt"
}

# ---------------------------------------------------------------- leases under load
# lockhier's lease cycle and renewal beside the lease table's, pgbench runs side by side. In the
# full run it comes after the other tests, on the same cluster (the lease table has their churn).
run_lease_load() {
  log "leases under load: the cycle at clients ($LEASE_CLIENTS), renewals at ($RENEW_CLIENTS)," \
      "$LEASE_ROUNDS round(s) x ${LEASE_SECONDS} s a run, each beside the lease table's"
  # shellcheck disable=SC2086 # client counts are words
  "$PY" bench/lease_load.py --db "$DB" --cycle-clients $LEASE_CLIENTS --renew-clients $RENEW_CLIENTS \
    --rounds "$LEASE_ROUNDS" --seconds "$LEASE_SECONDS" --bindir "$PGBIN" --server-log "$HOME_MAIN/server.log" \
    --out "$OUT" || log "WARNING: leases under load did not complete (see the report's Leases section)"
}

# BENCH_ONLY: one section on the fresh main cluster, printed with its targets.
if [ -n "$ONLY" ]; then
  case "$ONLY" in paths) run_paths ;; leases) run_lease_load ;; esac
  echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
  cluster "${MAIN[@]}" stop
  stop_started
  trap - EXIT
  "$PY" bench/report.py --results "$OUT" --only "$ONLY"
  log "done in $(( ($(date +%s) - started) / 60 )) min: raw results in $OUT (BENCHMARKS.md left as it is)"
  exit 0
fi

# ---------------------------------------------------------------- throughput
n_designs=$("$PY" -c 'import sys; sys.path.insert(0, "bench"); from designs import DESIGNS; print(len(DESIGNS))')
n_clients=$(wc -w <<<"$CLIENTS")
runs=$((ROUNDS * n_designs * n_clients))
per_run=$(( (SECONDS_TOTAL + runs / 2) / runs ))
[ "$per_run" -ge 1 ] || per_run=1
log "throughput: $ROUNDS round(s) x $n_designs designs x clients ($CLIENTS), ${per_run} s a run" \
    "(about $(( (runs * per_run * 115 / 100 + 59) / 60 )) min)"
echo "seconds_per_run=$per_run" >>"$OUT/machine.txt"
# shellcheck disable=SC2086
"$PY" bench/run.py --db "$DB" --clients $CLIENTS --rounds "$ROUNDS" --seconds "$per_run" --bindir "$PGBIN" --out "$OUT"

# ---------------------------------------------------------------- the conflict path
log "conflict path: $SAMPLES timed calls per variant"
"$PY" bench/conflict.py --db "$DB" --samples "$SAMPLES" --rounds "$ROUNDS" --out "$OUT/conflict.json" ||
  log "WARNING: some conflict-path calls did not end as expected (see the report's last column)"

# ---------------------------------------------------------------- lease support loaded, or not
# The same PostgreSQL in a second cluster without lockhier in shared_preload_libraries (no
# shared memory, no keeper): what loading lease support costs lock_field while no lease is held.
# A failure here is reported (preload.txt) and the run goes on.
NOPRELOAD=("$PG" "$HOME_NOPRELOAD" "$PORT_NOPRELOAD" 0)
log "lease support loaded or not: a cluster without it in $HOME_NOPRELOAD on port $PORT_NOPRELOAD"
if ! fresh_cluster "${NOPRELOAD[@]}" >"$OUT/cluster-nopreload.log" 2>&1; then
  preload_status="failed: the cluster without lease support did not take the bench schema: $(first_error "$OUT/cluster-nopreload.log")"
else
  log "lock_field on both clusters, $PAIR_ROUNDS rounds x clients (1 2) x ${PAIR_SECONDS} s, alternating"
  preload_status=measured
  "$PY" bench/paired.py --tag "$PG" --db "$DB" --clients 1 2 --rounds "$PAIR_ROUNDS" --seconds "$PAIR_SECONDS" \
    --bindir "$PGBIN" --out "$OUT/preload.csv" \
    --side preloaded lock_field "$HOME_MAIN/run" "$PORT_MAIN" \
    --side not_preloaded lock_field "$HOME_NOPRELOAD/run" "$PORT_NOPRELOAD" ||
    preload_status="failed: its pgbench runs did not complete (see the log of make bench)"
fi
[ "$preload_status" = measured ] || log "WARNING: lease support loaded or not: $preload_status"
echo "status=$preload_status" >"$OUT/preload.txt"
cluster "${NOPRELOAD[@]}" stop

run_paths

# ---------------------------------------------------------------- leases
log "leases: $LEASE_SAMPLES timed pairs per design, $EXPIRY_SAMPLES expiries"
"$PY" bench/leases.py --db "$DB" --samples "$LEASE_SAMPLES" --expiry-samples "$EXPIRY_SAMPLES" \
  --out "$OUT/leases.json" ||
  log "WARNING: some lease calls did not end as expected (see the report's Leases section)"

# ---------------------------------------------------------------- leases under load
run_lease_load
cluster "${MAIN[@]}" stop

# ---------------------------------------------------------------- leases at scale
# A cluster of its own, sized for the most leases held: lockhier.max_leases, and a shared lock
# table of at least 10 entries a lease (a field lease takes 8 locks and its fence). The table has
# max_locks_per_transaction x (MaxBackends + max_prepared_transactions) entries, MaxBackends
# being max_connections + autovacuum_max_workers + 1 + max_worker_processes + max_wal_senders.
SCALE=("$PG" "$HOME_SCALE" "$PORT_SCALE" 1)
most=$(tr ' ' '\n' <<<"$HELD" | sort -n | tail -n 1)
log "leases at scale: a cluster in $HOME_SCALE on port $PORT_SCALE; a cycle timed with 0 and $HELD leases held," \
    "then $most restored after an immediate shutdown"
scale_status=measured
if ! fresh_cluster "${SCALE[@]}" >"$OUT/cluster-scale.log" 2>&1; then
  scale_status="failed: the scale cluster did not take the bench schema: $(first_error "$OUT/cluster-scale.log")"
else
  slots=$(in_cluster "${SCALE[@]}" psql -X -At -d "$DB" -c "SELECT sum(setting::int) + 1 FROM pg_settings
    WHERE name IN ('max_connections', 'autovacuum_max_workers', 'max_worker_processes', 'max_wal_senders',
                   'max_prepared_transactions')")
  locks=$(( (most * 10 + slots - 1) / slots ))
  # One more lease than the most held, for the timed cycle's own, within the setting's ceiling.
  max_leases=$((most + 1)) && [ "$max_leases" -le 100000 ] || max_leases=100000
  [ "$locks" -ge 64 ] || locks=64
  cat >>"$HOME_SCALE/data/postgresql.conf" <<CONF
# --- scripts/bench.sh: room for $most leases ($slots lock-table slots x $locks >= 10 entries a lease)
lockhier.max_leases = $max_leases
max_locks_per_transaction = $locks
CONF
  if ! { cluster "${SCALE[@]}" stop && cluster "${SCALE[@]}" start; } >>"$OUT/cluster-scale.log" 2>&1; then
    scale_status="failed: the scale cluster did not start with lockhier.max_leases = $max_leases: $(first_error "$HOME_SCALE/server.log")"
  else
    # shellcheck disable=SC2086 # levels are words
    in_cluster "${SCALE[@]}" "$PY" bench/lease_scale.py --db "$DB" --levels $HELD --samples "$SCALE_SAMPLES" \
      --data "$HOME_SCALE/data" --server-log "$HOME_SCALE/server.log" --bindir "$PGBIN" \
      --restore-timeout "$RESTORE_TIMEOUT" --out "$OUT/lease_scale.json" ||
      scale_status="failed: some cycles did not end as expected, or no lockhier call was served after the restart"
  fi
fi
[ "$scale_status" = measured ] || log "WARNING: leases at scale: $scale_status"
echo "status=$scale_status" >"$OUT/lease_scale.txt"
# An immediate stop: a cluster left restoring would make a fast shutdown wait.
as_owner "$PGBIN/pg_ctl" -D "$HOME_SCALE/data" -m immediate -w stop >/dev/null 2>&1 || true
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

# ---------------------------------------------------------------- every major
# lock_field beside the stock lock at 2 clients, on each major in a fresh cluster of its own
# (one at a time: only one is ever running). A major that fails is reported, and the run goes on.
note() { echo "$1.$2" >>"$OUT/versions.txt"; } # NN key=value: a line of versions.txt
measure_version() { # NN
  local v=$1 spec
  spec=("$v" "$HOME_MAIN-pg$v" "$((PORT_MAIN + 1 + v - 15))" 1)
  log "PostgreSQL $v: a fresh cluster in ${spec[1]} on port ${spec[2]}; advisory and lock_field," \
      "$PAIR_ROUNDS rounds x ${PAIR_SECONDS} s, 2 clients"
  if ! fresh_cluster "${spec[@]}" >"$OUT/cluster-pg$v.log" 2>&1; then
    note "$v" "status=failed: its cluster did not take the bench schema: $(first_error "$OUT/cluster-pg$v.log")"
    cluster "${spec[@]}" stop || true
    return
  fi
  note "$v" "postgres=$(in_cluster "${spec[@]}" psql -X -At -d "$DB" -c 'SHOW server_version')"
  if "$PY" bench/paired.py --tag "$v" --db "$DB" --clients 2 --rounds "$PAIR_ROUNDS" --seconds "$PAIR_SECONDS" \
       --bindir "${VERSION_BIN[$v]}" --out "$OUT/versions.csv" \
       --side advisory advisory "${spec[1]}/run" "${spec[2]}" \
       --side lock_field lock_field "${spec[1]}/run" "${spec[2]}"; then
    note "$v" status=measured
  else
    note "$v" "status=failed: its pgbench runs did not complete (see the log of make bench)"
  fi
  cluster "${spec[@]}" stop
}
for v in $ALL_VERSIONS; do
  if [ -n "${VERSION_SKIP[$v]:-}" ]; then
    log "PostgreSQL $v: skipped: ${VERSION_SKIP[$v]}"
    note "$v" "status=skipped: ${VERSION_SKIP[$v]}"
  else
    measure_version "$v"
  fi
done

stop_started
trap - EXIT
echo "duration_s=$(( $(date +%s) - started ))" >>"$OUT/machine.txt"

# ---------------------------------------------------------------- the report
"$PY" bench/report.py --results "$OUT" --markdown "$ROOT/BENCHMARKS.md" --plot "$ROOT/bench/throughput.png"
log "done in $(( ($(date +%s) - started) / 60 )) min: BENCHMARKS.md, bench/throughput.png, raw results in $OUT"
