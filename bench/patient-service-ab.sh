#!/usr/bin/env bash
# The same load on two patient-service release binaries (A and B: say, built from the
# commits before and after a change), each on a fresh database of the local Postgres,
# straight to patient-service with a USER's token (the auth-service binary beside
# BIN_B runs too, for the keys; no gateway, broker or billing-service: only the
# service and its database are measured;
# the outbox keeps its rows, equally in both). Used for what the audit trail (issue 15)
# and the metrics and traces (issue 16) cost.
#   reads:   GET /patients/{id} of 1,000 patients, 32 connections, 20 s (wrk)
#   creates: POST /patients, 32 connections, 20 s (wrk)
# Prints requests/s and latency percentiles of each, and patient-service's and
# Postgres's CPU seconds per 1,000 requests (from /proc). Not part of CI.
# Usage: bench/patient-service-ab.sh LABEL_A BIN_A LABEL_B BIN_B [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
LABEL_A="$1" BIN_A="$2" LABEL_B="$3" BIN_B="$4" SECONDS_PER_RUN="${5:-20}"
PG="${BENCH_DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-4900}"
. scripts/lib/apt.sh
. bench/lib/auth.sh
command -v wrk >/dev/null || apt_install wrk
OUT="$(mktemp -d /tmp/pulsetrack-ab.XXXXXX)"
start_auth "$(dirname "$BIN_B")" "$((PORT + 1))" "$OUT"
trap stop_auth EXIT
hz=$(getconf CLK_TCK)
cpu_of() { # total utime+stime ticks of the given pids
  local total=0
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
postgres_pids() { pgrep -u postgres -d ' ' postgres || true; }

run() { # label binary
  local label=$1 bin=$2 db="pt_bench_ab_$3"
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  DATABASE_URL="$PG/$db" PORT="$PORT" RUST_LOG=error KAFKA_BROKERS=127.0.0.1:9 \
    BILLING_GRPC_URL=http://127.0.0.1:9 BILLING_GRPC_SECRET="$(head -c 48 /dev/urandom | base64)" \
    OUTBOX_BASE_BACKOFF_MS=60000 OUTBOX_MAX_BACKOFF_MS=600000 \
    AUTH_SERVICE_URL="$AUTH_URL" "$bin" >"$OUT/$label.log" 2>&1 &
  local svc=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  psql -q "$PG/$db" -c "INSERT INTO patients (id, name, email, address, date_of_birth, registered_date)
    SELECT gen_random_uuid(), 'Seeded ' || n, 'seed' || n || '@example.com', 'Somewhere', '1980-01-01', '2026-01-01'
    FROM generate_series(1, 1000) n"
  psql -qAt "$PG/$db" -c "SELECT id FROM patients" >"$OUT/ids.txt"
  for kind in read create; do
    local script=bench/wrk/$kind-patient.lua
    local before_svc before_pg
    before_svc=$(cpu_of "$svc"); before_pg=$(cpu_of $(postgres_pids))
    PATIENT_IDS="$OUT/ids.txt" wrk -t 2 -c 32 -d "${SECONDS_PER_RUN}s" --latency -s "$script" \
      "http://127.0.0.1:$PORT" >"$OUT/$label-$kind.txt"
    local svc_ticks=$(( $(cpu_of "$svc") - before_svc )) pg_ticks=$(( $(cpu_of $(postgres_pids)) - before_pg ))
    local requests; requests=$(awk '/requests in/ {print $1}' "$OUT/$label-$kind.txt")
    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/$label-$kind.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$OUT/$label-$kind.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$OUT/$label-$kind.txt")
    errors=$(awk '/Non-2xx/ {print $NF}' "$OUT/$label-$kind.txt"); errors=${errors:-0}
    printf '| %-22s | %-6s | %9s | %8s | %8s | %6s | %26s |\n' "$label" "$kind" "$rps" "$p50" "$p99" "$errors" \
      "$(python3 -c "print(f'{$svc_ticks/$hz/$requests*1000:.3f} + {$pg_ticks/$hz/$requests*1000:.3f}')")"
    sleep 2
  done
  if [ "$(psql -qAt "$PG/$db" -c "SELECT to_regclass('audit_log') IS NOT NULL")" = t ]; then
    echo "$label: audit entries written: $(psql -qAt "$PG/$db" -c 'SELECT count(*) FROM audit_log')" >&2
  fi
  kill "$svc"; wait "$svc" 2>/dev/null || true
  psql -q "$PG/postgres" -c "DROP DATABASE $db"
}

echo "patient-service alone, 32 connections, ${SECONDS_PER_RUN} s each (raw output in $OUT)"
echo
echo "| binary                 | load   | requests/s | p50      | p99      | non-2xx | CPU s per 1k (service + Postgres) |"
echo "|------------------------|--------|-----------|----------|----------|--------|----------------------------|"
run "$LABEL_A" "$BIN_A" a
run "$LABEL_B" "$BIN_B" b
