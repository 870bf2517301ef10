#!/usr/bin/env bash
# The tests, one make target each. Every target installs what it needs first, prints one
# `ok`/`not ok` line per test (with the suites' own output around them) and ends with one line,
# `N passed, N failed`, exiting non-zero if any failed:
#
#   scripts/test.sh check            make check: cargo fmt; cargo clippy -D warnings on every
#                                    major; the layers of src/; lockhier-core's tests; the
#                                    documentation's code blocks
#   scripts/test.sh pgtest NN        make pgtest PG=NN: the Rust unit tests and #[pg_test]s
#   scripts/test.sh sql NN           make sql PG=NN: pg_regress, the isolation specs, the
#                                    upgrades with a dump and restore, leases on a standby
#   scripts/test.sh clients NN       make clients PG=NN: the real-client suites (clients/)
#   scripts/test.sh reliability NN   make reliability PG=NN: the reliability suite (reliability/)
#   scripts/test.sh demo NN          the demo check (make demo PG=NN plays in order, without a
#                                    warning) on the build installed in PostgreSQL NN
#   scripts/test.sh soak NN          make soak PG=NN: the reliability suite's checker self-test,
#                                    random load and mixed-nemesis run, each for
#                                    LOCKHIER_SOAK_SECONDS (default 600); not part of make test
#   scripts/test.sh                  make test: set-up, check, then on each major pgtest and sql
#                                    (and on 15 and 18 clients and reliability), then on 15 the
#                                    demo and the Debian package
#
# sql, clients and reliability run against a fresh private cluster of PostgreSQL NN with the
# test build installed (scripts/lib/pg.sh: the release profile, thin LTO).
#
#   LOCKHIER_TEST_PORT     the port of the private cluster of sql, clients and reliability
#                          (default 5480 + major - 15; 5483, PostgreSQL 18's, is also make bench's)
#   LOCKHIER_PG_VERSIONS   the majors of make test and of make check's clippy (default: 15 16 17 18)
#
# Logs go to target/test-output/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib/pg.sh
ROOT=$PWD
OUT=$ROOT/target/test-output
VERSIONS=${LOCKHIER_PG_VERSIONS:-15 16 17 18}
FULL_SUITES="15 18" # the client and reliability suites run on these
built=""            # the majors lockhier built for (start_cluster)
started=$(date +%s)

section() { printf '\n=== %s\n' "$*"; }

# counted LOG COUNTER FILTER CMD...: run CMD with its output in LOG, and on the terminal the lines
# that match FILTER (a grep -E pattern; '' for all). Adds what COUNTER (count_* in
# scripts/lib/common.sh) reads in LOG, and one failure if CMD failed while COUNTER found no
# failed test (it crashed, or did not build).
counted() {
  local log=$1 counter=$2 filter=$3 before=$failed rc
  shift 3
  "$@" 2>&1 | tee "$log" | grep --line-buffered -E "$filter"
  rc=${PIPESTATUS[0]}
  "$counter" "$log"
  if [ "$rc" != 0 ] && [ "$failed" = "$before" ]; then
    echo "not ok - it exited with status $rc, no failed test shown: see $log"
    count 0 1
  fi
}

# setup MAJORS CLIENTS: scripts/setup.sh for those majors (and the client suites' packages if
# CLIENTS is 1). Nothing runs without it.
setup() {
  LOCKHIER_PG_VERSIONS=$1 LOCKHIER_SETUP_CLIENTS=$2 bash scripts/setup.sh ||
    { echo "not ok - scripts/setup.sh"; count 0 1; summary_line; exit 1; }
}

# --- make check: no server needed -------------------------------------------------------------
run_check() {
  section "cargo fmt, cargo clippy on PostgreSQL ${VERSIONS// /, }, the layers of src/"
  if cargo fmt --all --check >"$OUT/fmt.log" 2>&1; then echo "ok - cargo fmt --all --check"; count 1 0
  else echo "not ok - cargo fmt --all --check: see $OUT/fmt.log"; head -40 "$OUT/fmt.log"; count 0 1; fi
  local v
  for v in $VERSIONS; do
    # Each major compiles different code (src/pg/version.rs), so each is linted.
    if cargo clippy --workspace --all-targets --no-default-features --features "pg$v" -- -D warnings \
         >"$OUT/clippy-$v.log" 2>&1; then
      echo "ok - cargo clippy (PostgreSQL $v) -- -D warnings"; count 1 0
    else
      echo "not ok - cargo clippy (PostgreSQL $v): see $OUT/clippy-$v.log"; count 0 1
      grep -E '^(error|warning)' -A6 "$OUT/clippy-$v.log" | head -60
    fi
  done
  counted "$OUT/layers.log" count_tap '' python3 scripts/check_layers.py

  section "lockhier-core's tests (plain Rust: the oracle against every plan, key vectors)"
  counted "$OUT/core-test.log" count_cargo '^test result|FAILED|panicked|^error' cargo test -p lockhier-core

  section "README and docs/ code blocks are ones the tests run"
  counted "$OUT/docs.log" count_tap '' python3 scripts/check_docs.py
}

# --- make pgtest PG=NN ------------------------------------------------------------------------
run_pgtest() {
  local v=$1 home=/var/tmp/lockhier-pgtest-$1
  section "PostgreSQL $v: cargo pgrx test (Rust unit tests and #[pg_test])"
  mkdir -p "$home" && chown postgres "$home"
  # One test at a time: tests that lock the global scope would conflict across sessions.
  counted "$OUT/cargo-test-$v.log" count_cargo '^test |^test result|panicked|^error' \
    env RUST_TEST_THREADS=1 cargo pgrx test "pg$v" --runas postgres --pgdata "$home/data"
}

# --- a private cluster for sql, clients and reliability ---------------------------------------
# start_cluster NN: builds and installs the test build, starts a fresh cluster and points psql
# & co. at it (stop_cluster undoes that). Fails if lockhier did not build.
start_cluster() {
  local v=$1
  section "PostgreSQL $v: build lockhier (release profile), install it, start a private cluster"
  if ! build_lockhier "$v" 2>"$OUT/build-$v.log"; then
    cat "$OUT/build-$v.log"
    echo "not ok - PostgreSQL $v: lockhier builds"; count 0 1
    return 1
  fi
  echo "ok - PostgreSQL $v: lockhier builds"; count 1 0
  built="${built:-} $v"
  install_build "$v"
  export LOCKHIER_PG=$v LOCKHIER_HOME=/var/tmp/lockhier-test-$v LOCKHIER_PORT=${LOCKHIER_TEST_PORT:-$((5480 + v - 15))}
  scripts/cluster.sh stop 2>/dev/null
  rm -rf "$LOCKHIER_HOME"
  scripts/cluster.sh start
  SAVED_PATH=$PATH
  eval "$(scripts/cluster.sh env)"
}

# The next build must not see the cluster's variables (PG_CONFIG, PATH).
stop_cluster() {
  scripts/cluster.sh stop
  PATH=$SAVED_PATH
  unset LOCKHIER_PG LOCKHIER_HOME LOCKHIER_PORT PGHOST PGPORT PGUSER PG_CONFIG
}

# --- make sql PG=NN (on a started cluster) -----------------------------------------------------
run_sql() {
  local v=$1 pgxs tests specs diffs
  pgxs=$("$PG_CONFIG" --pkglibdir)/pgxs
  section "PostgreSQL $v: pg_regress (exact messages users see)"
  tests=$(cd pg_test/sql && ls *.sql | sed 's/\.sql$//')
  counted "$OUT/regress-$v.log" count_regress '' \
    "$pgxs/src/test/regress/pg_regress" --bindir="$("$PG_CONFIG" --bindir)" \
    --inputdir=pg_test --outputdir="$OUT/regress-$v" --dbname=lockhier_regress \
    --load-extension=lockhier --load-extension=dblink $tests

  section "PostgreSQL $v: isolation specs (contention, step by step)"
  specs=$(cd pg_test/specs && ls *.spec | sed 's/\.spec$//')
  # A spec cannot include a file, so the database is made here, as pg_regress would make it
  # (the cluster's locale is C already), with the tests' masked() (pg_test/sql/masked.psql).
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS lockhier_isolation" \
    -c "CREATE DATABASE lockhier_isolation TEMPLATE template0"
  psql -X -q -v ON_ERROR_STOP=1 -d lockhier_isolation -c "CREATE EXTENSION lockhier" \
    -c "CREATE EXTENSION dblink" -f pg_test/sql/masked.psql
  counted "$OUT/isolation-$v.log" count_regress '' \
    "$pgxs/src/test/isolation/pg_isolation_regress" --bindir="$("$PG_CONFIG" --bindir)" \
    --inputdir=pg_test --outputdir="$OUT/isolation-$v" --dbname=lockhier_isolation --use-existing $specs

  section "PostgreSQL $v: upgrade from 0.1.0, dump and restore"
  counted "$OUT/upgrade-$v.log" count_result '' bash pg_test/upgrade/run.sh
  section "PostgreSQL $v: leases on a standby and after its promotion"
  counted "$OUT/standby-$v.log" count_result '' bash pg_test/standby/run.sh

  for diffs in "$OUT/regress-$v/regression.diffs" "$OUT/isolation-$v/regression.diffs"; do
    [ -s "$diffs" ] && { section "differences: $diffs"; head -c 20000 "$diffs"; }
  done
}

run_clients() {
  section "PostgreSQL $1: real clients: psycopg, SQLAlchemy, Django, psql, node-postgres, ActiveRecord"
  counted "$OUT/clients-$1.log" count_result '' clients/run.sh
}

# Last on a cluster: it fills the lock table and SIGKILLs a backend (the server restarts).
run_reliability() {
  section "PostgreSQL $1: reliability: invariants under load, faults, limits, bad input, privileges"
  # The mixed-nemesis run and the keeper's slot faults exercise the lease keeper, whose code is
  # the same on every major (its version differences, in src/pg, are covered by every other
  # group): make test runs them on the first major of FULL_SUITES only, to stay in its time.
  # make reliability PG=NN runs every group.
  local skip=
  [ "${MAKE_TEST_ALL:-0}" = 1 ] && [ "$1" != "${FULL_SUITES%% *}" ] && skip=nemesis,asks,many
  counted "$OUT/reliability-$1.log" count_result '' env LOCKHIER_REL_SKIP="$skip" reliability/run.sh
}

# The same suite, longer: its load and its nemeses run for LOCKHIER_SOAK_SECONDS each (the
# suite's own knobs, LOCKHIER_REL_SEED, LOCKHIER_REL_NEMESES, LOCKHIER_REL_NEMESIS_GAP, pass through).
run_soak() {
  local seconds=${LOCKHIER_SOAK_SECONDS:-600}
  section "PostgreSQL $1: soak: the random load and the mixed-nemesis run, $seconds s each"
  counted "$OUT/soak-$1.log" count_result '' env LOCKHIER_REL_ONLY=selftest,load,nemesis \
    LOCKHIER_REL_LOAD_SECONDS="$seconds" LOCKHIER_REL_NEMESIS_SECONDS="$seconds" \
    LOCKHIER_REL_TIMEOUT=$((2 * seconds + 300)) reliability/run.sh
}

# --- make test's last steps, on PostgreSQL 15 --------------------------------------------------
# in_order LOG ERE...: whether LOG has lines matching each ERE, in that order.
in_order() {
  local log=$1 line=0 pattern found
  shift
  for pattern in "$@"; do
    found=$(tail -n +"$((line + 1))" "$log" | grep -n -m 1 -E -- "$pattern" | cut -d: -f1)
    [ -n "$found" ] || { echo "the demo's output lacks, in its place: $pattern"; return 1; }
    line=$((line + found))
  done
}

# run_demo NN: the demo plays to the end on NN, its events in the order of the lock states the
# demo waits for (the order in which sessions print is the demo's), with no warning.
run_demo() {
  section "the demo (make demo) plays to the end"
  local log=$OUT/demo-$1.log session='^[0-9:.]+  %-9s \| '
  play_demo() {
    # On the build the SQL suites installed: no set-up or build again. PG picks the major; a PG
    # given to make test itself must not reach the demo's make through MAKEFLAGS.
    export LOCKHIER_DEMO_BUILD=0 LOCKHIER_DEMO_PAUSE=0 PG=$1
    unset MAKEFLAGS
    make demo
  }
  # shellcheck disable=SC2059 # the format is the session's name, padded as the demo pads it
  if play_demo "$1" >"$log" 2>&1 &&
    in_order "$log" \
      "$(printf "$session" snapshot)\(1 row\)" \
      "$(printf "$session" editor)ERROR:  operation in progress: cannot lock field 99 \(table 12, application 7\) for \"field__update\"" \
      "$(printf "$session" snapshot2)COMMIT\$" \
      "$(printf "$session" editor)SELECT lockhier.lock_field\(7, 12, 99, 'field__update', wait => '10 s'\);" \
      "==> pg_locks shows the update waiting" \
      "$(printf "$session" snapshot)COMMIT\$" \
      "$(printf "$session" editor)\(1 row\)" \
      "$(printf "$session" editor)COMMIT\$" \
      "$(printf "$session" import)\(1 row\)" \
      "$(printf "$session" editor)ERROR:  operation in progress: cannot lock field 99 \(table 12, application 7\) for \"field__deletion\"" \
      "$(printf "$session" editor)SELECT lockhier.lock_field\(7, 12, 99, 'field__rename'\);" \
      "$(printf "$session" editor)\(1 row\)" \
      "$(printf "$session" editor)COMMIT\$" \
      "nothing is left running" &&
    [ "$(grep -c 'ERROR:' "$log")" = 2 ] &&
    ! grep -n 'WARNING' "$log"; then
    echo "ok - demo"; count 1 0
  else
    echo "not ok - demo: see $log"; tail -20 "$log"; count 0 1
  fi
}

# The .deb as it ships (the dist profile), installed with dpkg. Last: it installs over the
# files of the test build, and puts them back.
run_package_test() {
  section "the PostgreSQL 15 Debian package, installed with dpkg"
  local deb
  # Of the tests' build (release profile), already built for 15: see scripts/package.sh.
  if deb=$(LOCKHIER_PACKAGE_PROFILE=release bash scripts/package.sh 15 2>"$OUT/package-15.log"); then
    echo "ok - PostgreSQL 15: built $deb"; count 1 0
    counted "$OUT/test-package.log" count_result '' bash scripts/test_package.sh "$deb"
  else
    cat "$OUT/package-15.log"
    echo "not ok - PostgreSQL 15: the Debian package builds"; count 0 1
  fi
}

# --- the targets ---------------------------------------------------------------------------------
major() {
  case "${1:-}" in 15 | 16 | 17 | 18) ;; *) echo "usage: scripts/test.sh $target 15|16|17|18" >&2; exit 2 ;; esac
}
on_cluster() { # NN SUITE...: the suites, in order, on one fresh cluster
  local v=$1 suite
  shift
  start_cluster "$v" || return 0
  for suite in "$@"; do "run_$suite" "$v"; done
  stop_cluster
}

target=${1:-all}
mkdir -p "$OUT"
case "$target" in
  check)
    setup "$VERSIONS" 0
    run_check
    ;;
  pgtest)
    major "${2:-}"
    setup "$2" 0
    run_pgtest "$2"
    ;;
  demo)
    major "${2:-}"
    run_demo "$2"
    ;;
  sql | clients | reliability | soak)
    major "${2:-}"
    setup "$2" "$([ "$target" = clients ] && echo 1 || echo 0)"
    on_cluster "$2" "$target"
    ;;
  all)
    MAKE_TEST_ALL=1
    rm -rf "$OUT" && mkdir -p "$OUT"
    setup "$VERSIONS" 1
    run_check
    for v in $VERSIONS; do
      run_pgtest "$v"
      if [[ " $FULL_SUITES " == *" $v "* ]]; then
        on_cluster "$v" sql clients reliability
      else
        on_cluster "$v" sql
      fi
    done
    if [[ " $VERSIONS " == *" 15 "* ]]; then
      if [[ " $built " == *" 15 "* ]]; then run_demo 15; else echo "not ok - demo: lockhier did not build for PostgreSQL 15"; count 0 1; fi
      run_package_test
    fi
    echo
    echo "make test took $(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s"
    ;;
  *)
    echo "usage: scripts/test.sh [check | pgtest NN | sql NN | clients NN | reliability NN | demo NN | soak NN]" >&2
    exit 2
    ;;
esac
summary_line
