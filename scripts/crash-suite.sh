#!/usr/bin/env bash
# The crash suite, longer than CI's bounded run: for each of the seven processes of
# `deployer up` (the broker, Postgres, the five services), creates at 8 clients, a
# SIGKILL 3 s in, load for PULSETRACK_CRASH_LOAD_SECS (default 30) after the kill, then
# the invariant over the databases. Prints one line per fault: recovery time, how far
# the pipeline was behind when the load stopped, when everything was delivered, and
# that nothing was lost or duplicated (the tests fail otherwise). One fault at a time,
# so that the numbers are each system's own.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"
export PULSETRACK_CRASH_LOAD_SECS="${PULSETRACK_CRASH_LOAD_SECS:-30}"
scripts/ensure-postgres.sh >/dev/null
TANSU_BIN="$(scripts/install-tansu.sh)"
export TANSU_BIN
cargo build --workspace --bins
log="$(mktemp)"
cargo nextest run -p deployer --test crash --no-fail-fast --test-threads 1 --no-capture 2>&1 | tee "$log" | grep -E 'CRASH-RESULT|PASS|FAIL' || true
echo
echo "fault                created  failed  restarted_s  behind_events  all_delivered_s  lost"
grep -o 'CRASH-RESULT.*' "$log" | while read -r _ line; do
  declare -A f=()
  for kv in $line; do f[${kv%%=*}]=${kv#*=}; done
  printf '%-20s %7s  %6s  %11s  %13s  %15s  %4s\n' "${f[fault]}" "${f[created]}" "${f[failed_requests]}" \
    "${f[restarted_s]}" "${f[behind_events]}" "${f[all_delivered_s]}" "${f[lost]}"
done
# nextest's own result lines (the services' logs, shown with --no-capture, hold
# librdkafka's "FAIL [thrd:…]" lines, which are not test results).
! grep -qE '^ +(FAIL|SIGSEGV|SIGABRT|SIGKILL|TIMEOUT) +\[' "$log"
