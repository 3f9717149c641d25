#!/usr/bin/env bash
# Issue 34: what per-service verification costs on the sustained bench, through the
# whole system. Two revisions, each built in release and started with its own
# `deployer up` (a fresh private Postgres and tansu each round):
#   without = BASE (default 9d19e62): the services believed the gateway's X-User-*
#             headers, and billing-service's gRPC took any call;
#   with    = WITH (default 25dba00): every service verifies the bearer token itself
#             (signature, exp, iss, aud, the revocation feed) and billing-service
#             verifies patient-service's gRPC credential; nothing else changed.
# Then ROUNDS rounds, alternating which goes first: bench/sustained.py (creates through
# the gateway at 100 connections for SECONDS, CPU per create of every process, the
# create -> analytics delay and the outbox backlog). Prints a markdown table per round
# and each side's median and spread. Not part of CI.
# Usage: bench/verification-ab.sh [BASE [WITH]]   (env ROUNDS=5 SECONDS_PER_ROUND=60,
#        BINARIES=<an earlier run's results folder> to skip the builds)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"
BASE="${1:-9d19e62}"
WITH="${2:-25dba00}"
ROUNDS="${ROUNDS:-5}"
SECONDS_PER_ROUND="${SECONDS_PER_ROUND:-60}"
. bench/lib/prepare.sh
prepare_bench verification-ab

. bench/lib/ab.sh
ab_build "$BASE" "$WITH"

for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    ab_sustained without "$r"; ab_sustained with "$r"
  else
    ab_sustained with "$r"; ab_sustained without "$r"
  fi
done

python3 bench/ab-summary.py "$OUT" "$ROUNDS"
