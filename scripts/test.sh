#!/usr/bin/env bash
# The whole test suite: Rust unit tests and #[pg_test]s, pg_regress, isolation specs (and the
# client and reliability suites). Installs what it needs first. Ends with one summary line:
#   N passed, N failed
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/test-output
PGXS=$(pg_config --pkglibdir 2>/dev/null)/pgxs

passed=0
failed=0
count() { passed=$((passed + $1)); failed=$((failed + $2)); }
section() { printf '\n=== %s\n' "$*"; }

bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
PGXS=$(pg_config --pkglibdir)/pgxs
rm -rf "$OUT" && mkdir -p "$OUT"

# --- style, lints, layers, and the pure core ------------------------------------------------
section "cargo fmt, cargo clippy, the layers of src/, lockhier-core's tests"
if cargo fmt --all --check >"$OUT/fmt.log" 2>&1; then echo "ok - cargo fmt --all --check"; count 1 0
else echo "not ok - cargo fmt --all --check: see $OUT/fmt.log"; head -40 "$OUT/fmt.log"; count 0 1; fi
if cargo clippy --workspace --all-targets -- -D warnings >"$OUT/clippy.log" 2>&1; then
  echo "ok - cargo clippy --workspace --all-targets -- -D warnings"; count 1 0
else echo "not ok - cargo clippy: see $OUT/clippy.log"; grep -E '^(error|warning)' -A6 "$OUT/clippy.log" | head -60; count 0 1; fi
python3 scripts/check_layers.py | tee "$OUT/layers.log"
count "$(grep -c '^ok ' "$OUT/layers.log")" "$(grep -c '^not ok ' "$OUT/layers.log")"
# lockhier-core is plain Rust: its exhaustive tests (the oracle against every plan) need no server.
cargo test -p lockhier-core 2>&1 | tee "$OUT/core-test.log" | grep -E '^test result|FAILED|panicked'
core_results=$(grep -E '^test result:' "$OUT/core-test.log")
if [ -z "$core_results" ]; then echo "cargo test -p lockhier-core did not run"; count 0 1
else count "$(awk '{s += $4} END {print s}' <<<"$core_results")" "$(awk '{s += $6} END {print s}' <<<"$core_results")"; fi

# --- Rust unit tests and #[pg_test]s -------------------------------------------------------
# One test at a time: tests that lock the global scope would conflict across sessions.
section "cargo pgrx test (Rust unit tests and #[pg_test])"
PGTEST_HOME=/var/tmp/lockhier-pgtest
mkdir -p "$PGTEST_HOME" && chown postgres "$PGTEST_HOME"
RUST_TEST_THREADS=1 cargo pgrx test pg15 --runas postgres --pgdata "$PGTEST_HOME/data" 2>&1 \
  | tee "$OUT/cargo-test.log" | grep -E '^test |^test result|panicked|^error'
results=$(grep -E '^test result:' "$OUT/cargo-test.log")
if [ -z "$results" ]; then
  echo "cargo pgrx test did not run (build failure?): see $OUT/cargo-test.log"
  count 0 1
else
  count "$(awk '{s += $4} END {print s}' <<<"$results")" "$(awk '{s += $6} END {print s}' <<<"$results")"
fi

# --- the release build, in a private cluster -----------------------------------------------
section "install the release build and start a private cluster"
export LOCKHIER_HOME=/var/tmp/lockhier-test LOCKHIER_PORT=5498
scripts/cluster.sh stop
rm -rf "$LOCKHIER_HOME"
if ! cargo pgrx install --release --pg-config "$(command -v pg_config)" >"$OUT/install.log" 2>&1; then
  echo "cargo pgrx install failed: see $OUT/install.log"
  echo "$passed passed, $((failed + 1)) failed"
  exit 1
fi
scripts/cluster.sh start
eval "$(scripts/cluster.sh env)"
trap 'scripts/cluster.sh stop' EXIT

# pg_regress and pg_isolation_regress print one "... ok" or "... FAILED" line per test.
count_lines() {
  count "$(grep -cE '\.\.\. +ok' "$1")" "$(grep -cE '\.\.\. +FAILED|\.\.\. +failed' "$1")"
}

section "pg_regress (exact messages users see)"
tests=$(cd pg_test/sql && ls *.sql | sed 's/\.sql$//')
"$PGXS/src/test/regress/pg_regress" --bindir="$(pg_config --bindir)" \
  --inputdir=pg_test --outputdir="$OUT/regress" --dbname=lockhier_regress \
  --load-extension=lockhier --load-extension=dblink $tests 2>&1 | tee "$OUT/regress.log"
count_lines "$OUT/regress.log"

section "isolation specs (contention, step by step)"
specs=$(cd pg_test/specs && ls *.spec | sed 's/\.spec$//')
"$PGXS/src/test/isolation/pg_isolation_regress" \
  --inputdir=pg_test --outputdir="$OUT/isolation" --dbname=lockhier_isolation \
  --load-extension=lockhier --load-extension=dblink $specs 2>&1 | tee "$OUT/isolation.log"
count_lines "$OUT/isolation.log"

# Suites with their own runner end with a line "RESULT <passed> <failed>".
run_suite() { # title, command...
  local title=$1 log
  shift
  section "$title"
  log="$OUT/$(echo "$title" | tr -c 'a-z0-9\n' '-' | head -c 40).log"
  "$@" 2>&1 | tee "$log"
  local result
  result=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$log" | tail -n 1)
  if [ -n "$result" ]; then
    count "$(cut -d' ' -f2 <<<"$result")" "$(cut -d' ' -f3 <<<"$result")"
  else
    echo "no RESULT line: the suite did not finish"
    count 0 1
  fi
}

run_suite "real clients: psycopg, SQLAlchemy, Django, psql, node-postgres, ActiveRecord" clients/run.sh
# Last on this cluster: it fills the lock table and SIGKILLs a backend (the server restarts).
run_suite "reliability: invariants under load, faults, limits, bad input, privileges" reliability/run.sh

section "README code blocks are ones the tests run"
python3 scripts/check_docs.py | tee "$OUT/docs.log"
count "$(grep -c '^ok ' "$OUT/docs.log")" "$(grep -c '^not ok ' "$OUT/docs.log")"

section "the demo (make demo) plays to the end"
run_demo() {
  make demo
}
# The bounded wait (wait => '10 s') is granted when the snapshot commits, 2 s after it began:
# it took at least that long and less than its bound (a bound, not a timing window).
waited_ms() { grep -oE 'Time: [0-9]+\.[0-9]+ ms' "$OUT/demo.log" | head -n 1 | grep -oE '[0-9]+' | head -n 1; }
if run_demo >"$OUT/demo.log" 2>&1 \
   && grep -q 'operation in progress: cannot lock field 99 (table 12, application 7) for "field__update"' "$OUT/demo.log" \
   && [ "$(waited_ms)" -ge 1500 ] && [ "$(waited_ms)" -lt 10000 ] \
   && grep -q 'nothing is left running' "$OUT/demo.log"; then
  echo "ok - demo"; count 1 0
else
  echo "not ok - demo: see $OUT/demo.log"; count 0 1
fi

for diffs in "$OUT"/regress/regression.diffs "$OUT"/isolation/regression.diffs; do
  [ -s "$diffs" ] && { section "differences: $diffs"; head -c 20000 "$diffs"; }
done

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
