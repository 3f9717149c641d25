# Sourced by the bench scripts that load one service alone: every service verifies its
# caller's token itself, so such a bench starts the auth-service binary beside it (on a
# fresh database of $PG, open signup) and logs a USER in.
#   start_auth BIN_DIR PORT OUT  → exports AUTH_PID, AUTH_URL and AUTH_TOKEN (a USER's,
#                                  good for 10 minutes); auth-service logs to OUT/auth.log
#   stop_auth                    → stops it and drops its database
start_auth() {
  local bin_dir=$1 port=$2 out=$3
  AUTH_DB="pt_bench_auth_$port"
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $AUTH_DB" -c "CREATE DATABASE $AUTH_DB"
  JWT_SIGNING_SECRET="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" \
    DATABASE_URL="$PG/$AUTH_DB" PORT="$port" RUST_LOG=warn SIGNUP_MODE=open PASSWORD_POLICY=basic \
    "$bin_dir/auth-service" >"$out/auth.log" 2>&1 &
  AUTH_PID=$!
  AUTH_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -sf "$AUTH_URL/health" >/dev/null && break; sleep 0.1; done
  local body='{"email":"bench@example.com","username":"bench","password":"bench-password-1"}'
  curl -sf "$AUTH_URL/auth/signup" -H 'content-type: application/json' -d "$body" >/dev/null
  AUTH_TOKEN="$(curl -sf "$AUTH_URL/auth/login" -H 'content-type: application/json' -d "$body" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
  export AUTH_PID AUTH_URL AUTH_TOKEN
}

stop_auth() {
  kill "$AUTH_PID" 2>/dev/null || true
  wait "$AUTH_PID" 2>/dev/null || true
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $AUTH_DB"
}
