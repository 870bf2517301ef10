# shellcheck shell=bash
# The helpers the scripts and suite runners share. Source it; it defines LOCKHIER_ROOT and
# functions, and changes no shell option.
#
#   as_root CMD...          run CMD as root (sudo when not root)
#   as_owner CMD...         run CMD as the clusters' OS user, postgres (when root)
#   crate_version           lockhier's version, from Cargo.toml
#   apt_install PKG...      install the Debian packages that are missing
#   python_venv DIR REQS    a virtualenv with REQS' pinned packages, remade when REQS changes
#
# Counting, in one format: a test prints `ok - name` or `not ok - name`; a suite runner ends with
# `RESULT <passed> <failed>`; a make target ends with `<passed> passed, <failed> failed`.
#
#   check NAME CMD...       one test: ok if CMD succeeds
#   count P F               add P passed and F failed
#   result_line             print `RESULT <passed> <failed>`; fails if any failed
#   summary_line            print `<passed> passed, <failed> failed`; fails if any failed
#   count_result LOG        add a suite runner's RESULT line (its last), or one failure
#   count_tap LOG           add the ok / not ok lines of LOG (check_layers.py, check_docs.py)
#   count_cargo LOG         add the `test result:` lines of cargo test, or one failure
#   count_regress LOG       add the lines of pg_regress and pg_isolation_regress, or one failure

LOCKHIER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# env -u: a Rust backtrace setting in the caller's environment would end up in the DETAILs the
# tests read.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    sudo -u postgres env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$@"
  else
    env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$@"
  fi
}

crate_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$LOCKHIER_ROOT/Cargo.toml" | head -n 1; }

# Installs first from the package lists the machine has, and updates them only if that fails:
# a kept machine needs no update, a fresh one has no lists yet.
apt_install() {
  local missing=() pkg log rc=0
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} = 0 ] && return 0
  echo "installing ${missing[*]} (Debian)" >&2
  log=$(mktemp)
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$log" 2>&1 ||
    { as_root apt-get update -qq >>"$log" 2>&1 &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$log" 2>&1; } ||
    { rc=1; cat "$log" >&2; }
  rm -f "$log"
  return "$rc"
}

# The file's hash, kept in DIR/.installed, says whether the packages are those it pins.
python_venv() {
  local venv=$1 reqs=$2 want
  want=$(sha256sum "$reqs" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.installed" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "installing the Python packages of $reqs into $venv" >&2
  rm -rf "$venv"
  # Debian's python3 makes a virtualenv only with python3-venv installed.
  python3 -m venv "$venv" >/dev/null 2>&1 ||
    { rm -rf "$venv" && apt_install python3-venv && python3 -m venv "$venv"; } || return 1
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv --only-binary=:all: -r "$reqs" ||
    return 1
  echo "$want" >"$venv/.installed"
}

# ---------------------------------------------------------------- counting
passed=0
failed=0
count() { passed=$((passed + $1)); failed=$((failed + $2)); }

check() {
  local name=$1
  shift
  if "$@"; then echo "ok - $name"; count 1 0; else echo "not ok - $name"; count 0 1; fi
}

result_line() {
  echo "RESULT $passed $failed"
  [ "$failed" = 0 ]
}

summary_line() {
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}

# A runner that died before its RESULT line counts as one failure, beside what it printed.
count_result() {
  local result
  result=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$1" | tail -n 1)
  if [ -n "$result" ]; then
    count "$(cut -d' ' -f2 <<<"$result")" "$(cut -d' ' -f3 <<<"$result")"
  else
    echo "not ok - no RESULT line in $1: the suite did not finish"
    count 0 1
  fi
}

count_tap() {
  count "$(grep -c '^ok ' "$1")" "$(grep -c '^not ok ' "$1")"
}

count_cargo() {
  local results
  results=$(grep -E '^test result:' "$1")
  if [ -z "$results" ]; then
    echo "not ok - the tests did not run (build failure?): see $1"
    count 0 1
  else
    count "$(awk '{s += $4} END {print s}' <<<"$results")" "$(awk '{s += $6} END {print s}' <<<"$results")"
  fi
}

# One line per test: "... ok" / "... FAILED" up to PostgreSQL 15, "ok 1 - name" / "not ok 1 -
# name" (TAP) from 16. No line at all (the server did not start, say) is a failure.
count_regress() {
  local ok bad
  ok=$(grep -cE '\.\.\. +ok|^ok [0-9]+ ' "$1")
  bad=$(grep -cE '\.\.\. +FAILED|\.\.\. +failed|^not ok [0-9]+ ' "$1")
  if [ "$ok" = 0 ] && [ "$bad" = 0 ]; then
    echo "not ok - no test ran: see $1"
    count 0 1
  else
    count "$ok" "$bad"
  fi
}
