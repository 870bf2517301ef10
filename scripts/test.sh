#!/usr/bin/env bash
# The whole test suite, on every PostgreSQL major lockhier supports: style, lints and layers;
# lockhier-core's tests; then for each version the Rust unit tests and #[pg_test]s, the
# release package installed into a private cluster, pg_regress, the isolation specs, the
# upgrade from 0.1.0 and a dump and restore, leases on a standby and after a failover (and on
# 15 and 18 the client and reliability suites); then the README's code blocks, the demo, and the PostgreSQL 15 Debian package.
# Installs what it needs first. Ends with one summary line:
#   N passed, N failed
#
#   LOCKHIER_PG_VERSIONS   the majors to test (default: 15 16 17 18)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/test-output
VERSIONS=${LOCKHIER_PG_VERSIONS:-15 16 17 18}
FULL_SUITES="15 18" # the client and reliability suites run on these
started=$(date +%s)

passed=0
failed=0
count() { passed=$((passed + $1)); failed=$((failed + $2)); }
section() { printf '\n=== %s\n' "$*"; }
check() { # name command...: one ok/not ok line
  local name=$1
  shift
  if "$@"; then echo "ok - $name"; count 1 0; else echo "not ok - $name"; count 0 1; fi
}

LOCKHIER_PG_VERSIONS=$VERSIONS bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
source scripts/pg.sh
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
count_cargo_results() { # log
  local results
  results=$(grep -E '^test result:' "$1")
  if [ -z "$results" ]; then echo "the tests did not run (build failure?): see $1"; count 0 1
  else count "$(awk '{s += $4} END {print s}' <<<"$results")" "$(awk '{s += $6} END {print s}' <<<"$results")"; fi
}
count_cargo_results "$OUT/core-test.log"

# pg_regress and pg_isolation_regress print one line per test: "... ok" / "... FAILED" up to
# PostgreSQL 15, "ok 1 - name" / "not ok 1 - name" (TAP) from 16.
count_lines() {
  count "$(grep -cE '\.\.\. +ok|^ok [0-9]+ ' "$1")" "$(grep -cE '\.\.\. +FAILED|\.\.\. +failed|^not ok [0-9]+ ' "$1")"
}

# Suites with their own runner end with a line "RESULT <passed> <failed>".
run_suite() { # title, command...
  local title=$1 log result
  shift
  section "$title"
  log="$OUT/$(echo "$title" | tr -c 'a-z0-9\n' '-' | head -c 50).log"
  "$@" 2>&1 | tee "$log"
  result=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$log" | tail -n 1)
  if [ -n "$result" ]; then
    count "$(cut -d' ' -f2 <<<"$result")" "$(cut -d' ' -f3 <<<"$result")"
  else
    echo "no RESULT line: the suite did not finish"
    count 0 1
  fi
}

for v in $VERSIONS; do
  pg_config=$(pg_config_for "$v")
  pgxs=$("$pg_config" --pkglibdir)/pgxs
  export CARGO_TARGET_DIR=$ROOT/target/pg$v

  # --- Rust unit tests and #[pg_test]s -------------------------------------------------------
  # One test at a time: tests that lock the global scope would conflict across sessions.
  section "PostgreSQL $v: cargo pgrx test (Rust unit tests and #[pg_test])"
  pgtest_home=/var/tmp/lockhier-pgtest-$v
  mkdir -p "$pgtest_home" && chown postgres "$pgtest_home"
  RUST_TEST_THREADS=1 cargo pgrx test "pg$v" --runas postgres --pgdata "$pgtest_home/data" 2>&1 \
    | tee "$OUT/cargo-test-$v.log" | grep -E '^test |^test result|panicked|^error'
  count_cargo_results "$OUT/cargo-test-$v.log"

  # --- the release package, in a private cluster ----------------------------------------------
  section "PostgreSQL $v: build the release package, install it, start a private cluster"
  if ! deb=$(bash scripts/package.sh "$v" 2>"$OUT/package-$v.log"); then
    cat "$OUT/package-$v.log"
    echo "not ok - PostgreSQL $v: the package did not build"; count 0 1
    continue
  fi
  echo "ok - PostgreSQL $v: built $deb"; count 1 0
  install_build "$v"
  export LOCKHIER_PG=$v LOCKHIER_HOME=/var/tmp/lockhier-test-$v LOCKHIER_PORT=$((5480 + v - 15))
  scripts/cluster.sh stop 2>/dev/null
  rm -rf "$LOCKHIER_HOME"
  scripts/cluster.sh start
  eval "$(scripts/cluster.sh env)"

  section "PostgreSQL $v: pg_regress (exact messages users see)"
  tests=$(cd pg_test/sql && ls *.sql | sed 's/\.sql$//')
  "$pgxs/src/test/regress/pg_regress" --bindir="$("$pg_config" --bindir)" \
    --inputdir=pg_test --outputdir="$OUT/regress-$v" --dbname=lockhier_regress \
    --load-extension=lockhier --load-extension=dblink $tests 2>&1 | tee "$OUT/regress-$v.log"
  count_lines "$OUT/regress-$v.log"

  section "PostgreSQL $v: isolation specs (contention, step by step)"
  specs=$(cd pg_test/specs && ls *.spec | sed 's/\.spec$//')
  "$pgxs/src/test/isolation/pg_isolation_regress" --bindir="$("$pg_config" --bindir)" \
    --inputdir=pg_test --outputdir="$OUT/isolation-$v" --dbname=lockhier_isolation \
    --load-extension=lockhier --load-extension=dblink $specs 2>&1 | tee "$OUT/isolation-$v.log"
  count_lines "$OUT/isolation-$v.log"

  run_suite "PostgreSQL $v: upgrade from 0.1.0, dump and restore" bash pg_test/upgrade/run.sh
  run_suite "PostgreSQL $v: leases on a standby and after its promotion" bash pg_test/standby/run.sh

  if [[ " $FULL_SUITES " == *" $v "* ]]; then
    run_suite "PostgreSQL $v: real clients: psycopg, SQLAlchemy, Django, psql, node-postgres, ActiveRecord" clients/run.sh
    # Last on this cluster: it fills the lock table and SIGKILLs a backend (the server restarts).
    run_suite "PostgreSQL $v: reliability: invariants under load, faults, limits, bad input, privileges" reliability/run.sh
  fi
  scripts/cluster.sh stop
  for diffs in "$OUT/regress-$v/regression.diffs" "$OUT/isolation-$v/regression.diffs"; do
    [ -s "$diffs" ] && { section "differences: $diffs"; head -c 20000 "$diffs"; }
  done
done
unset CARGO_TARGET_DIR LOCKHIER_PG LOCKHIER_HOME LOCKHIER_PORT PGHOST PGPORT PGUSER PG_CONFIG

section "README and docs/ code blocks are ones the tests run"
python3 scripts/check_docs.py | tee "$OUT/docs.log"
count "$(grep -c '^ok ' "$OUT/docs.log")" "$(grep -c '^not ok ' "$OUT/docs.log")"

if [[ " $VERSIONS " == *" 15 "* ]]; then
  section "the demo (make demo) plays to the end"
  # The bounded wait (wait => '10 s') is granted when the snapshot commits, 2 s after it began:
  # it took at least that long and less than its bound (a bound, not a timing window).
  waited_ms() { grep -oE 'Time: [0-9]+\.[0-9]+ ms' "$OUT/demo.log" | head -n 1 | grep -oE '[0-9]+' | head -n 1; }
  run_demo() {
    make demo
  }
  if run_demo >"$OUT/demo.log" 2>&1 \
     && grep -q 'operation in progress: cannot lock field 99 (table 12, application 7) for "field__update"' "$OUT/demo.log" \
     && [ "$(waited_ms)" -ge 1500 ] && [ "$(waited_ms)" -lt 10000 ] \
     && grep -q 'nothing is left running' "$OUT/demo.log"; then
    echo "ok - demo"; count 1 0
  else
    echo "not ok - demo: see $OUT/demo.log"; tail -20 "$OUT/demo.log"; count 0 1
  fi

  # Last: it installs the .deb over the files of the release build, and removes them.
  run_suite "the PostgreSQL 15 Debian package, installed with dpkg" bash scripts/test_package.sh
fi

echo
echo "make test took $(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
