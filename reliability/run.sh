#!/usr/bin/env bash
# lockhier reliability suite: invariants under load, faults, limits, bad input, privileges.
#
#   PGHOST=... PGPORT=... PGUSER=<superuser> reliability/run.sh
#
# Needs a running cluster of PostgreSQL 15 to 18 on this machine with lockhier installed
# (the SIGKILL fault signals a backend process, so run it as root or as the server's OS user).
# Creates (and drops afterwards) database lockhier_rel and role lockhier_rel_user. Installs its
# Python dependencies into reliability/.venv on first use. The last line printed is always
# `RESULT <passed> <failed>`; the exit status is 0 exactly when <failed> is 0.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VENV=$HERE/.venv
LIMIT=${LOCKHIER_REL_TIMEOUT:-420}   # seconds; the suite itself takes about one minute
source "$HERE/../scripts/lib/common.sh"

result() { count "$1" "$2"; result_line; exit; }

if [ -z "${PGHOST:-}" ] || [ -z "${PGPORT:-}" ] || [ -z "${PGUSER:-}" ]; then
  echo "run.sh: PGHOST, PGPORT and PGUSER must point at a running cluster" >&2
  result 0 1
fi

python_venv "$VENV" "$HERE/requirements.txt" || { echo "run.sh: cannot install the Python packages" >&2; result 0 1; }

# --- the suite ---------------------------------------------------------------------------------
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout --kill-after=10 "$LIMIT" "$VENV/bin/python" -u "$HERE/suite.py" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

last=$(tail -n 1 "$out")
if [[ "$last" =~ ^RESULT\ ([0-9]+)\ ([0-9]+)$ ]]; then
  # A non-zero exit with no failure counted is one.
  [ "$status" = 0 ] || [ "${BASH_REMATCH[2]}" != 0 ] || { echo "RESULT ${BASH_REMATCH[1]} 1"; exit 1; }
  exit "$([ "${BASH_REMATCH[2]}" = 0 ] && echo 0 || echo 1)"
fi
# The suite died or timed out before its summary: count what it printed, plus one failure.
ok=$(grep -c '^ok ' "$out")
bad=$(grep -c '^FAIL ' "$out")
if [ "$status" = 124 ]; then
  echo "run.sh: the suite timed out after ${LIMIT} s"
else
  echo "run.sh: the suite ended without its summary (exit status $status)"
fi
result "$ok" "$((bad + 1))"
