#!/usr/bin/env bash
# Starts PulseTrack on this machine: a tansu Kafka broker (:9092 or a free port), billing-service
# (:4001 HTTP, :9001 gRPC), analytics-service (:4002), auth-service (:4005),
# patient-service (:4000) and the api-gateway on 127.0.0.1:4004. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"

scripts/ensure-postgres.sh
TANSU="$(scripts/install-tansu.sh)"
cargo build --release -p auth-service -p patient-service -p api-gateway -p billing-service -p analytics-service

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

wait_port() {
  local name=$1 port=$2
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$name ready on :$port"; return 0; fi
    sleep 0.1
  done
  echo "$name did not listen on :$port" >&2
  return 1
}

# The broker's port: KAFKA_PORT, else 9092 when free, else any free port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
if [ -z "${KAFKA_PORT:-}" ]; then
  if (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then KAFKA_PORT=$(free_port); else KAFKA_PORT=9092; fi
fi
export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
RUST_LOG=warn "$TANSU" broker --listener-url "tcp://$KAFKA_BROKERS" --advertised-listener-url "tcp://$KAFKA_BROKERS" \
  --storage-engine memory://tansu/ > >(sed -u 's/^/[tansu] /') 2>&1 &
pids+=($!)
wait_port tansu "$KAFKA_PORT"

DATABASE_URL="$PG/billing_service" PORT=4001 GRPC_PORT=9001 "$BIN/billing-service" > >(sed -u 's/^/[billing-service] /') 2>&1 &
pids+=($!)
wait_ready billing-service http://127.0.0.1:4001/ready

DATABASE_URL="$PG/analytics_service" PORT=4002 "$BIN/analytics-service" > >(sed -u 's/^/[analytics-service] /') 2>&1 &
pids+=($!)
wait_ready analytics-service http://127.0.0.1:4002/ready

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
