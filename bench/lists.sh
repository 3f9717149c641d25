#!/usr/bin/env bash
# Lists as the table grows (issue 17): patient-service (release) alone on a fresh
# database of the local Postgres, seeded with N patients (default 100,000 then
# 1,000,000), straight to the service with a USER's token (the auth-service binary
# beside BIN runs too: patient-service verifies the token with its keys).
# For each N, 8 connections for SECONDS each (wrk):
#   first page        size=20 (numbered: the page and a count of all patients)
#   deep page         page=N/40 (the middle, by OFFSET: every row before it is read)
#   deep keyset page  after=<the middle id> (an index range: no count, no skipping)
#   search            search=<a term matching 1 in ~5,000> (numbered, with its count)
#   search, keyset    the same term, after=<its first match>
#   search, no index  the numbered search with the trigram index dropped (as before it)
# Prints requests/s and latency percentiles (also written to OUT). Not part of CI.
# Usage: bench/lists.sh BIN [SECONDS] [N ...]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$1"
SECONDS_PER_RUN="${2:-10}"
shift $(($# >= 2 ? 2 : 1))
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000)
PG="${BENCH_DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-4901}"
. scripts/lib/apt.sh
. bench/lib/auth.sh
command -v wrk >/dev/null || apt_install wrk
OUT="$(mktemp -d /tmp/pulsetrack-lists.XXXXXX)"
start_auth "$(dirname "$BIN")" "$((PORT + 1))" "$OUT"
trap stop_auth EXIT

measure() { # N label query
  local n=$1 label=$2 query=$3 file
  file="$OUT/$n-${label// /-}.txt"
  LIST_QUERY="$query" wrk -t 2 -c 8 -d "${SECONDS_PER_RUN}s" --latency -s bench/wrk/list-patients.lua \
    "http://127.0.0.1:$PORT" >"$file"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$file")
  p50=$(awk '$1 == "50%" {print $2}' "$file")
  p99=$(awk '$1 == "99%" {print $2}' "$file")
  errors=$(awk '/Non-2xx/ {print $NF}' "$file"); errors=${errors:-0}
  printf '| %9s | %-17s | %9s | %8s | %8s | %6s |\n' "$n" "$label" "$rps" "$p50" "$p99" "$errors"
}

run() { # N
  local n=$1 db="pt_bench_lists_$1"
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  DATABASE_URL="$PG/$db" PORT="$PORT" RUST_LOG=error KAFKA_BROKERS=127.0.0.1:9 \
    BILLING_GRPC_URL=http://127.0.0.1:9 BILLING_GRPC_SECRET="$(head -c 48 /dev/urandom | base64)" \
    AUTH_SERVICE_URL="$AUTH_URL" "$BIN" >"$OUT/service-$n.log" 2>&1 &
  local svc=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  # Names carry a 5-hex-digit tag (1 in ~1M each); "Searchable" marks 1 patient in 5,000.
  psql -q "$PG/$db" -c "INSERT INTO patients (id, name, email, address, date_of_birth, registered_date)
    SELECT gen_random_uuid(),
           CASE WHEN n % 5000 = 0 THEN 'Searchable ' ELSE 'Patient ' END || substr(md5(n::text), 1, 5),
           'seed' || n || '@example.com', 'Somewhere', '1980-01-01', '2026-01-01'
    FROM generate_series(1, $n) n" -c "VACUUM ANALYZE patients"
  local middle first_match
  middle=$(psql -qAt "$PG/$db" -c "SELECT id FROM patients ORDER BY id OFFSET $((n / 2)) LIMIT 1")
  first_match=$(psql -qAt "$PG/$db" -c "SELECT id FROM patients WHERE name LIKE 'Searchable%' ORDER BY id LIMIT 1")
  measure "$n" "first page" "size=20"
  measure "$n" "deep page" "size=20&page=$((n / 40))"
  measure "$n" "deep keyset page" "size=20&after=$middle"
  measure "$n" "search" "size=20&search=searchable"
  measure "$n" "search, keyset" "size=20&search=searchable&after=$first_match"
  psql -q "$PG/$db" -c "DROP INDEX patients_search_trgm"
  measure "$n" "search, no index" "size=20&search=searchable"
  kill "$svc"; wait "$svc" 2>/dev/null || true
  psql -q "$PG/postgres" -c "DROP DATABASE $db"
}

echo "patient-service alone, 8 connections, ${SECONDS_PER_RUN} s each (raw output in $OUT)"
echo
echo "| patients  | list              | requests/s | p50      | p99      | non-2xx |"
echo "|-----------|-------------------|-----------|----------|----------|--------|"
for n in "${SIZES[@]}"; do run "$n"; done
