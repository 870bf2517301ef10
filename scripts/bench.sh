#!/usr/bin/env bash
# make bench: lockhier's throughput beside the stock advisory lock and the designs it replaces,
# the conflict path's latency and the planner's cost; writes BENCHMARKS.md and
# bench/throughput.png. Installs what it needs first (skipping what is there).
#
#   make bench                         the full run: about 12 minutes on 2 cores
#   BENCH_QUICK=1 make bench           a smoke run (about 2 minutes), labelled SMOKE in the report
#
# Settings (environment):
#   BENCH_SECONDS   seconds of pgbench measurement in all (default 600; quick 36), split evenly
#                   over rounds x designs x client counts, at least 1 s a run
#   BENCH_ROUNDS    rounds (default 4; quick 1): each runs every design at every client count
#                   once, in a new order; the report takes medians across rounds
#   BENCH_CLIENTS   client counts (default "1 2 4"; quick "1 2")
#   BENCH_SAMPLES   timed calls per conflict-path variant (default 4000; quick 400)
#   BENCH_INSTALL=1 reinstall the extension (cargo pgrx install --release) before measuring;
#                   otherwise the installed build is used, or built and installed if missing
#   BENCH_HOME, BENCH_PORT  the private cluster (default /var/tmp/lockhier-bench, 5483); it is
#                   made anew each run and stopped at the end
#   BENCH_OUT       raw results (default bench/results: throughput.csv, conflict.json, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=${BENCH_QUICK:-0}
[ "${1:-}" = "--quick" ] && QUICK=1
if [ "$QUICK" = 1 ]; then
  SECONDS_TOTAL=${BENCH_SECONDS:-36} ROUNDS=${BENCH_ROUNDS:-1} CLIENTS=${BENCH_CLIENTS:-"1 2"}
  SAMPLES=${BENCH_SAMPLES:-400}
else
  SECONDS_TOTAL=${BENCH_SECONDS:-600} ROUNDS=${BENCH_ROUNDS:-4} CLIENTS=${BENCH_CLIENTS:-"1 2 4"}
  SAMPLES=${BENCH_SAMPLES:-4000}
fi
export LOCKHIER_HOME=${BENCH_HOME:-/var/tmp/lockhier-bench} LOCKHIER_PORT=${BENCH_PORT:-5483}
OUT=${BENCH_OUT:-$ROOT/bench/results}
VENV=$ROOT/bench/.venv
PY=$VENV/bin/python
DB=bench
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
started=$(date +%s)

# ---------------------------------------------------------------- what it needs
LOCKHIER_SETUP_CLIENTS=0 bash scripts/setup.sh
command -v pg_config >/dev/null || { echo "pg_config not found" >&2; exit 1; }
PGBIN=$(pg_config --bindir)
[ -x "$PGBIN/pgbench" ] || { echo "pgbench not found in $PGBIN" >&2; exit 1; }
if [ "${BENCH_INSTALL:-0}" = 1 ] || [ ! -f "$(pg_config --sharedir)/extension/lockhier.control" ]; then
  log "building and installing the release build of lockhier"
  cargo pgrx install --release --pg-config "$(command -v pg_config)" >/dev/null
fi

req=$ROOT/bench/requirements.txt
stamp=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$PY" ] || [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$stamp" ]; then
  log "installing the pinned Python packages into bench/.venv"
  [ -x "$PY" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "$req"
  echo "$stamp" >"$VENV/.installed"
fi

rm -rf "$OUT" && mkdir -p "$OUT"

# ---------------------------------------------------------------- the planner, in release mode
# A plain #[test] (src/core/plan_timing.rs), #[ignore]d so that make test skips it. The crate's unit
# tests link as an ordinary test binary (cargo pgrx test runs them the same way, in debug).
# The first run builds the test binary and pgrx's test dependencies in release: about 6
# minutes on 2 cores; later runs reuse them. Done before the cluster starts, so the build
# competes with nothing measured.
log "planner and key timing (cargo test --release, plan_timing)"
cargo test --release -p lockhier-core plan_timing -- --ignored --nocapture --test-threads=1 \
  >"$OUT/plan_timing.log" 2>&1 || { cat "$OUT/plan_timing.log" >&2; echo "plan_timing failed" >&2; exit 1; }
sed -n 's/.*plan_timing: //p' "$OUT/plan_timing.log" >"$OUT/plan_timing.txt"
cat "$OUT/plan_timing.txt"

# ---------------------------------------------------------------- the cluster
# scripts/cluster.sh makes a test cluster (fsync off). For a fair comparison the benchmark
# puts durability back to PostgreSQL's defaults: the designs lockhier replaces write rows and
# really pay for a durable commit in production; lock-only transactions write no WAL at all.
# The *_async variants show the write designs with synchronous_commit off for their sessions.
log "starting a fresh cluster in $LOCKHIER_HOME on port $LOCKHIER_PORT"
scripts/cluster.sh stop
rm -rf "$LOCKHIER_HOME"
trap 'scripts/cluster.sh stop' EXIT
scripts/cluster.sh start
cat >>"$LOCKHIER_HOME/data/postgresql.conf" <<'CONF'
# --- scripts/bench.sh: PostgreSQL's own defaults for durability (these override the above)
fsync = on
full_page_writes = on
synchronous_commit = on
CONF
scripts/cluster.sh stop
scripts/cluster.sh start
eval "$(scripts/cluster.sh env)"
unset PGDATABASE PGOPTIONS PGAPPNAME
psql -X -q -d postgres -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -v fields=200000 -v applications=1000 -d "$DB" -f bench/schema.sql

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
  echo "postgres=$(psql -X -At -d "$DB" -c 'SHOW server_version')"
  echo "pgbench=$("$PGBIN/pgbench" --version)"
  echo "lockhier=$(psql -X -At -d "$DB" -c "SELECT extversion FROM pg_extension WHERE extname = 'lockhier'")"
  echo "lockhier_so=$(ls -l --time-style='+%Y-%m-%d %H:%M' "$(pg_config --pkglibdir)/lockhier.so" | awk '{print $6, $7}')"
  echo "git=$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src sql 2>/dev/null || echo ' (src or sql modified)')"
  echo "rustc=$(rustc --version)"
  echo "rounds=$ROUNDS"
  echo "clients=$CLIENTS"
  echo "samples=$SAMPLES"
} >"$OUT/machine.txt"
psql -X -At -F '=' -d "$DB" -c "SELECT name, setting || coalesce(' ' || unit, '') FROM pg_settings
  WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'wal_level',
                 'shared_buffers', 'max_connections', 'max_locks_per_transaction', 'max_wal_size',
                 'checkpoint_timeout', 'autovacuum', 'jit', 'huge_pages', 'deadlock_timeout',
                 'log_min_error_statement', 'shared_preload_libraries', 'listen_addresses')
  ORDER BY name" >"$OUT/settings.txt"
# How fast this disk makes a commit durable: fdatasync of one 8 kB write, in the WAL's file system.
"$PGBIN/pg_test_fsync" -s 1 -f "$LOCKHIER_HOME/pg_test_fsync.tmp" >"$OUT/pg_test_fsync.txt" 2>&1 || true
rm -f "$LOCKHIER_HOME/pg_test_fsync.tmp"

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
"$PY" bench/run.py --db "$DB" --clients $CLIENTS --rounds "$ROUNDS" --seconds "$per_run" --out "$OUT"

# ---------------------------------------------------------------- the conflict path
log "conflict path: $SAMPLES timed calls per variant"
"$PY" bench/conflict.py --db "$DB" --samples "$SAMPLES" --rounds "$ROUNDS" --out "$OUT/conflict.json" ||
  log "WARNING: some conflict-path calls did not end as expected (see the report's last column)"
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

scripts/cluster.sh stop
trap - EXIT
echo "duration_s=$(( $(date +%s) - started ))" >>"$OUT/machine.txt"

# ---------------------------------------------------------------- the report
"$PY" bench/report.py --results "$OUT" --markdown "$ROOT/BENCHMARKS.md" --plot "$ROOT/bench/throughput.png"
log "done in $(( ($(date +%s) - started) / 60 )) min: BENCHMARKS.md, bench/throughput.png, raw results in $OUT"
