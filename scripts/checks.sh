# Sourced by the suites with their own runner (the upgrade, standby and package tests): one
# `ok - name` / `not ok - name` line per check, and a last line `RESULT <passed> <failed>` that
# scripts/test.sh adds to its count.
passed=0
failed=0

check() { # name, then the command that must succeed
  local name=$1
  shift
  if "$@"; then echo "ok - $name"; passed=$((passed + 1)); else echo "not ok - $name"; failed=$((failed + 1)); fi
}

# The last line; exits non-zero if any check failed.
checks_result() {
  echo "RESULT $passed $failed"
  [ "$failed" = 0 ]
}
