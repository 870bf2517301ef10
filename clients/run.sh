#!/usr/bin/env bash
# lockhier from real clients: psycopg 3, Django, SQLAlchemy 2, node-postgres, ActiveRecord and
# psql, each against a running PostgreSQL (15 to 18) with lockhier installed, and psycopg 3 and
# SQLAlchemy 2 through PgBouncer in transaction pooling (pgbouncer/run.sh). The lease suites
# need lockhier in shared_preload_libraries (scripts/cluster.sh puts it there).
#
#   PGHOST=... PGPORT=... PGUSER=postgres clients/run.sh
#   clients/run.sh --install-only      only the dependencies (scripts/setup.sh runs this)
#
# Installs what is missing (pinned: python/requirements.txt into clients/.venv,
# node/package-lock.json into node/node_modules, Debian's ruby-activerecord, ruby-pg and pgbouncer),
# creates its own databases (lockhier_clients_*, dropped and made anew each run), runs every
# language's tests and ends with one line: RESULT <passed> <failed>. Exits 0 iff none failed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
source "$HERE/../scripts/lib/common.sh"
INSTALL_ONLY=0
[ "${1:-}" = "--install-only" ] && INSTALL_ONLY=1
[ "$INSTALL_ONLY" = 1 ] || : "${PGHOST:?PGHOST must point at the cluster}" "${PGPORT:?}" "${PGUSER:?}"
export PGHOST PGPORT PGUSER
# The DETAILs the tests read must not carry a Rust backtrace from the caller's environment.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE PGDATABASE PGOPTIONS PGAPPNAME

OUT=$(mktemp -d /tmp/lockhier-clients.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
say() { printf '\n=== %s\n' "$*"; }
die() { echo "clients/run.sh: $*" >&2; echo "RESULT 0 1"; exit 1; }

# ---------------------------------------------------------------- dependencies (idempotent)
install_node() {
  local stamp
  stamp=$(sha256sum "$HERE/node/package-lock.json" | cut -d' ' -f1)
  if [ -d "$HERE/node/node_modules" ] && [ "$(cat "$HERE/node/node_modules/.installed" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  say "installing node packages (npm ci)"
  (cd "$HERE/node" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  echo "$stamp" >"$HERE/node/node_modules/.installed"
}

python_venv "$HERE/.venv" "$HERE/python/requirements.txt" || die "could not install the Python packages"
install_node || die "could not install the node packages"
apt_install ruby ruby-activerecord ruby-pg pgbouncer || die "could not install ActiveRecord and PgBouncer"
[ "$INSTALL_ONLY" = 1 ] && exit 0
command -v psql >/dev/null || die "psql not found"

# ---------------------------------------------------------------- databases
# One database per suite, so that one suite's leftovers (advisory locks and leases are per
# database) cannot touch another's; the lease suites have theirs, as a lease outlives the test
# that took it. The Django migration databases get their schema from `migrate`.
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL' || die "cannot create the test databases"
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname)
  FROM pg_database WHERE datname LIKE 'lockhier\_clients\_%' \gexec
CREATE DATABASE lockhier_clients_py;
CREATE DATABASE lockhier_clients_node;
CREATE DATABASE lockhier_clients_ruby;
CREATE DATABASE lockhier_clients_django_migrate;
CREATE DATABASE lockhier_clients_sql_migrate;
CREATE DATABASE lockhier_clients_py_leases;
CREATE DATABASE lockhier_clients_node_leases;
CREATE DATABASE lockhier_clients_pgbouncer;
SQL
for db in lockhier_clients_py lockhier_clients_node lockhier_clients_ruby lockhier_clients_sql_migrate \
          lockhier_clients_py_leases lockhier_clients_node_leases lockhier_clients_pgbouncer; do
  psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$HERE/schema.sql" >/dev/null || die "schema of $db failed"
done
psql -X -q -v ON_ERROR_STOP=1 -d lockhier_clients_django_migrate \
  -c 'CREATE EXTENSION lockhier' >/dev/null || die "CREATE EXTENSION failed"

# ---------------------------------------------------------------- suites
SUMMARY=()
count_suite() {  # count_suite NAME PASSED FAILED EXIT_CODE
  local name=$1 p=$2 f=$3 rc=$4
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    f=1  # the runner failed without a failed test to show for it (crash, no tests found...)
  fi
  if [ "$p" = 0 ] && [ "$f" = 0 ]; then
    f=1  # ran no test
  fi
  count "$p" "$f"
  SUMMARY+=("$(printf '%-26s %3d passed, %d failed' "$name" "$p" "$f")")
}

junit_counts() {  # junit_counts FILE -> "passed failed" (skipped counts as failed)
  "$HERE/.venv/bin/python" - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
cases = root.iter("testcase")
passed = failed = 0
for case in cases:
    if any(child.tag in ("failure", "error", "skipped") for child in case):
        failed += 1
    else:
        passed += 1
print(passed, failed)
PY
}

pytest_suite() {  # pytest_suite NAME FILE
  say "$1 (pytest $2)"
  (cd "$HERE/python" && "$HERE/.venv/bin/python" -m pytest -v "$2" --junitxml="$OUT/$2.xml" -o junit_family=xunit1)
  local rc=$? p f
  read -r p f < <(junit_counts "$OUT/$2.xml")
  count_suite "$1" "$p" "$f" "$rc"
}
pytest_suite "Python psycopg 3" test_psycopg.py
pytest_suite "Python SQLAlchemy 2" test_sqlalchemy.py
pytest_suite "Python Django" test_django.py
pytest_suite "Migrations: Django, psql" test_migrations.py
pytest_suite "Python psycopg 3: leases" test_leases_psycopg.py
pytest_suite "Python psycopg 3: rooms" test_room_workers.py
pytest_suite "Python psycopg 3: paths" test_archiver.py

say "Node: node-postgres (node --test)"
(cd "$HERE/node" && node --test --test-concurrency=1 \
   --test-reporter=spec --test-reporter-destination=stdout \
   --test-reporter=junit --test-reporter-destination="$OUT/node.xml" test/)
rc=$?
read -r p f < <(junit_counts "$OUT/node.xml")
count_suite "Node node-postgres" "$p" "$f" "$rc"

say "Ruby: ActiveRecord $(ruby -e 'require "active_record"; print ActiveRecord.version' 2>/dev/null) (minitest)"
ruby -W0 "$HERE/ruby/test_activerecord.rb" --verbose | tee "$OUT/ruby.log"
rc=${PIPESTATUS[0]}
read -r p f < <(sed -n 's/^\([0-9]*\) runs, [0-9]* assertions, \([0-9]*\) failures, \([0-9]*\) errors, \([0-9]*\) skips$/\1 \2 \3 \4/p' "$OUT/ruby.log" |
  awk '{ print $1 - $2 - $3 - $4, $2 + $3 + $4 } END { if (!NR) print 0, 1 }')
count_suite "Ruby ActiveRecord" "$p" "$f" "$rc"

say "PgBouncer in transaction pooling: psycopg 3, SQLAlchemy 2 (pytest pgbouncer/)"
bash "$HERE/pgbouncer/run.sh" --junitxml="$OUT/pgbouncer.xml" -o junit_family=xunit1
rc=$?
read -r p f < <(junit_counts "$OUT/pgbouncer.xml")
count_suite "PgBouncer (transaction)" "$p" "$f" "$rc"

say "Summary"
printf '%s\n' "${SUMMARY[@]}"
result_line
