#!/usr/bin/env bash
# Starts PulseTrack on this machine: auth-service (:4005), patient-service (:4000) and
# the api-gateway on 127.0.0.1:4004. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"

scripts/ensure-postgres.sh
cargo build --release -p auth-service -p patient-service -p api-gateway

PG="${PULSETRACK_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
BIN="$CARGO_TARGET_DIR/release"
export PULSETRACK_ADMIN_EMAIL="${PULSETRACK_ADMIN_EMAIL:-admin@pulsetrack.local}"
export PULSETRACK_ADMIN_PASSWORD="${PULSETRACK_ADMIN_PASSWORD:-change-me-admin}"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

wait_ready() {
  local name=$1 url=$2
  for _ in $(seq 1 100); do
    if curl -fsS "$url" >/dev/null 2>&1; then echo "$name ready: $url"; return 0; fi
    sleep 0.1
  done
  echo "$name did not become ready at $url" >&2
  return 1
}

DATABASE_URL="$PG/auth_service" PORT=4005 "$BIN/auth-service" > >(sed -u 's/^/[auth-service] /') 2>&1 &
pids+=($!)
wait_ready auth-service http://127.0.0.1:4005/ready

DATABASE_URL="$PG/patient_service" PORT=4000 "$BIN/patient-service" > >(sed -u 's/^/[patient-service] /') 2>&1 &
pids+=($!)
wait_ready patient-service http://127.0.0.1:4000/ready

PORT=4004 "$BIN/api-gateway" > >(sed -u 's/^/[api-gateway] /') 2>&1 &
pids+=($!)
wait_ready api-gateway http://127.0.0.1:4004/ready

echo
echo "PulseTrack is up: http://127.0.0.1:4004  (admin: $PULSETRACK_ADMIN_EMAIL)"
wait
