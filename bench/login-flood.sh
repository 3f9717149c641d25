#!/usr/bin/env bash
# Logins while a flood of bad logins runs (issue 15): auth-service (release) on a fresh
# database of the local Postgres, straight (as the gateway forwards: X-Forwarded-For
# carries the client address). A user logs in with 4 connections for SECONDS alone,
# then while 64 connections flood:
#   brute-one:    wrong passwords for the ADMIN account from one address
#   brute-many:   wrong passwords for the ADMIN account, every request from another address
#   unknown-many: emails no account has, every request from another address (each costs
#                 a hash: an unknown email must take as long as a wrong password)
# and prints the user's logins/s, p50, p99 and failures, and how the flood was answered.
# Every attempt is an entry in auth-service's audit trail (issue 35): its key and
# anchor file are made here. LOGIN_FLOOD_JSON=<file> also writes the numbers as JSON.
# Not part of CI. Usage: bench/login-flood.sh AUTH_SERVICE_BIN [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$1" SECONDS_PER_RUN="${2:-15}"
PG="${BENCH_DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-4905}"
DB=pt_bench_login_flood
OUT="$(mktemp -d /tmp/pulsetrack-login-flood.XXXXXX)"
. scripts/lib/apt.sh
command -v wrk >/dev/null || apt_install wrk
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
ADMIN_EMAIL=admin@bench.local ADMIN_PASSWORD="$(head -c 18 /dev/urandom | base64)"
DATABASE_URL="$PG/$DB" PORT="$PORT" RUST_LOG=error SIGNUP_MODE=open \
  JWT_SIGNING_SECRET="$(head -c 48 /dev/urandom | base64)" \
  AUDIT_KEY="$(head -c 48 /dev/urandom | base64)" AUDIT_ANCHORS="file:$OUT/anchors.jsonl" \
  GATEWAY_AUDIT_SECRET="$(head -c 48 /dev/urandom | base64)" \
  PULSETRACK_ADMIN_EMAIL="$ADMIN_EMAIL" PULSETRACK_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  "$BIN" >"$OUT/auth.log" 2>&1 &
AUTH=$!
trap 'kill $AUTH 2>/dev/null; wait $AUTH 2>/dev/null; psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
USER_EMAIL=user@bench.local USER_PASSWORD=correct-horse-battery
curl -sf "http://127.0.0.1:$PORT/auth/signup" -H 'content-type: application/json' \
  -d "{\"email\":\"$USER_EMAIL\",\"username\":\"user\",\"password\":\"$USER_PASSWORD\"}" >/dev/null
URL="http://127.0.0.1:$PORT"
user_logins() { # label
  LOGIN_MODE=valid LOGIN_EMAIL="$USER_EMAIL" LOGIN_PASSWORD="$USER_PASSWORD" \
    wrk -t 1 -c 4 -d "${SECONDS_PER_RUN}s" --latency -s bench/wrk/login.lua "$URL" >"$OUT/user-$1.txt"
  local f="$OUT/user-$1.txt"
  printf '| %-14s | %8s | %8s | %8s | %-22s |' "$1" "$(awk '/Requests\/sec/ {print $2}' "$f")" \
    "$(awk '$1 == "50%" {print $2}' "$f")" "$(awk '$1 == "99%" {print $2}' "$f")" "$(sed -n 's/^statuses: //p' "$f")"
}
echo "auth-service alone; the user: 4 connections, the flood: 64 (raw output in $OUT)"
echo
echo "| flood          | logins/s | p50      | p99      | the user's answers     | the flood's answers |"
echo "|----------------|----------|----------|----------|------------------------|---------------------|"
user_logins none; echo " - |"
for flood in brute-one brute-many unknown-many; do
  LOGIN_MODE="$flood" LOGIN_EMAIL="$ADMIN_EMAIL" \
    wrk -t 1 -c 64 -d "$((SECONDS_PER_RUN + 2))s" -s bench/wrk/login.lua "$URL" >"$OUT/flood-$flood.txt" &
  FLOOD=$!
  sleep 1
  user_logins "$flood"
  wait "$FLOOD"
  echo " $(awk '/Requests\/sec/ {printf "%s/s ", $2}' "$OUT/flood-$flood.txt")$(sed -n 's/^statuses: //p' "$OUT/flood-$flood.txt") |"
  sleep 2
done
if [ -n "${LOGIN_FLOOD_JSON:-}" ]; then
  python3 - "$OUT" "$LOGIN_FLOOD_JSON" <<'PY'
import json, re, sys
out, dest = sys.argv[1], sys.argv[2]
def ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
def read(name):
    text = open(f"{out}/{name}.txt").read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    row = {"per_s": rate}
    for label in ("50%", "99%"):
        found = re.search(rf"^\s+{label}\s+(\S+)", text, re.M)
        if found:
            row[label] = ms(found.group(1))
    return row
runs = {"none": {"user": read("user-none")}}
for flood in ("brute-one", "brute-many", "unknown-many"):
    runs[flood] = {"user": read(f"user-{flood}"), "flood": read(f"flood-{flood}")}
json.dump(runs, open(dest, "w"), indent=2)
PY
fi
