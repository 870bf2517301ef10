#!/usr/bin/env bash
# lockhier reliability suite: invariants under load, faults, limits, bad input, privileges.
#
#   PGHOST=... PGPORT=... PGUSER=<superuser> reliability/run.sh
#
# Needs a running PostgreSQL 15 cluster on this machine with the lockhier extension installed
# (the SIGKILL fault signals a backend process, so run it as root or as the server's OS user).
# Creates (and drops afterwards) database lockhier_rel and role lockhier_rel_user. Installs its
# Python dependencies into reliability/.venv on first use. The last line printed is always
# `RESULT <passed> <failed>`; the exit status is 0 exactly when <failed> is 0.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VENV=$HERE/.venv
REQS=$HERE/requirements.txt
LIMIT=${LOCKHIER_REL_TIMEOUT:-420}   # seconds; the suite itself takes about one minute

result_line() { echo "RESULT $1 $2"; exit "$([ "$2" = 0 ] && echo 0 || echo 1)"; }

if [ -z "${PGHOST:-}" ] || [ -z "${PGPORT:-}" ] || [ -z "${PGUSER:-}" ]; then
  echo "run.sh: PGHOST, PGPORT and PGUSER must point at a running cluster" >&2
  result_line 0 1
fi

# --- the virtualenv, idempotently: rebuilt only when requirements.txt changes -----------------
stamp=$VENV/.requirements.sha256
want=$(sha256sum "$REQS" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
   || ! "$VENV/bin/python" -c 'import psycopg' 2>/dev/null; then
  echo "run.sh: installing Python dependencies into $VENV"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's own python3 needs python3-venv for this
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -qq python3-venv >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq python3-venv >/dev/null 2>&1; }
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV" || { echo "run.sh: cannot create a virtualenv" >&2; result_line 0 1; }
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv -r "$REQS" \
    || { echo "run.sh: pip install failed" >&2; result_line 0 1; }
  echo "$want" >"$stamp"
fi

# --- the suite ---------------------------------------------------------------------------------
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout --kill-after=10 "$LIMIT" "$VENV/bin/python" -u "$HERE/suite.py" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

last=$(tail -n 1 "$out")
if [[ "$last" =~ ^RESULT\ ([0-9]+)\ ([0-9]+)$ ]]; then
  [ "$status" = 0 ] || [ "${BASH_REMATCH[2]}" != 0 ] || { echo "RESULT ${BASH_REMATCH[1]} 1"; exit 1; }
  exit "$([ "${BASH_REMATCH[2]}" = 0 ] && echo 0 || echo 1)"
fi
# The suite died or timed out before its summary: count what it printed, plus one failure.
passed=$(grep -c '^ok ' "$out")
failed=$(grep -c '^FAIL ' "$out")
if [ "$status" = 124 ]; then
  echo "run.sh: the suite timed out after ${LIMIT} s"
else
  echo "run.sh: the suite ended without its summary (exit status $status)"
fi
result_line "$passed" "$((failed + 1))"
