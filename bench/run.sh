#!/usr/bin/env bash
# Issue 7's benchmark. Starts PulseTrack with `deployer up` (release services, a fresh
# private Postgres and tansu), then on this one machine:
#   1. the seed's three load scenarios through the gateway (loadtest --scenario 1|2|3);
#   2. the end-to-end delay create -> billing account / analytics event (loadtest --e2e);
#   3. the create phase of scenario 3 straight to patient-service (the gateway's overhead);
#   4. pgbench with bench/pgbench-create.sql (one create's rows per commit) on the same
#      Postgres, with the same clients and commit count as each scenario's create phase;
#   5. the sustained run (issue 17, bench/sustained.py): creates at 100 connections for
#      60 s with the outbox sampled each second, CPU per create of every process, the
#      create -> analytics delay of every event, and pgbench at 100 clients after it;
# and writes bench/RESULTS.md (machine, every number, the ratios). Not part of CI.
# Usage: bench/run.sh [--label TEXT]   (env BENCH_PORT_OFFSET shifts every port)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"
LABEL=""
if [ "${1:-}" = "--label" ]; then LABEL="${2:-}"; fi

scripts/ensure-build-tools.sh
. scripts/lib/apt.sh
command -v wrk >/dev/null || apt_install wrk
TANSU_BIN="$(scripts/install-tansu.sh)"
export TANSU_BIN
# The same build as scripts/up.sh: the whole workspace in release, deployer included.
cargo build --release --workspace --bins
REL="$CARGO_TARGET_DIR/release"
OFFSET="${BENCH_PORT_OFFSET:-0}"
GATEWAY="http://127.0.0.1:$((4004 + OFFSET))"
PATIENTS="http://127.0.0.1:$((4000 + OFFSET))"

OUT="$(mktemp -d /tmp/pulsetrack-bench.XXXXXX)"
chmod 755 "$OUT"   # run as root, Postgres runs as the postgres user, which must enter it
DATA="$OUT/data"
echo "bench: data and raw results in $OUT"
"$REL/deployer" up --data-dir "$DATA" --bin-dir "$REL" --port-offset "$OFFSET" >"$OUT/up.log" 2>&1 &
UP=$!
stop() { "$REL/deployer" down --data-dir "$DATA" >/dev/null 2>&1 || kill "$UP" 2>/dev/null || true; wait "$UP" 2>/dev/null || true; }
trap stop EXIT
. bench/lib/up.sh
wait_until_up "$OUT/up.log" "$UP"
"$REL/deployer" status --local --data-dir "$DATA" >"$OUT/idle-status.txt"
cat "$OUT/idle-status.txt"

export PULSETRACK_ADMIN_EMAIL=admin@pulsetrack.local
PULSETRACK_ADMIN_PASSWORD="$(cat "$DATA/admin-password")"
export PULSETRACK_ADMIN_PASSWORD
LT=("$REL/loadtest" --base-url "$GATEWAY" --no-progress)

for s in 1 2 3; do
  echo "== scenario $s (gateway)"
  "${LT[@]}" --scenario "$s" --json-out "$OUT/scenario-$s.json"
done
echo "== end-to-end delays"
"${LT[@]}" --creates 0 --lists 0 --e2e 200 --json-out "$OUT/e2e.json"
# 400 creates last ~0.3 s, too short to tell a few percent apart (connection set-up
# and the previous round's event backlog dominate): 10000 per round (6 s) at 100 clients, five
# rounds each, alternating which goes first, 3 s apart so the event pipeline catches up.
# The gateway's own CPU time per request is read from /proc around its rounds.
echo "== creates at 100 clients: gateway vs patient-service directly (5 rounds each)"
GW_PID="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['processes']['api-gateway']['pid'])" "$DATA/up.json")"
ticks() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }
echo "clk_tck $(getconf CLK_TCK)" >"$OUT/gateway-cpu.txt"
round() {
  local via=$1 r=$2
  if [ "$via" = gateway ]; then
    local before; before=$(ticks)
    "${LT[@]}" --creates 10000 --create-concurrency 100 --lists 0 --json-out "$OUT/overhead-gateway-$r.json" >/dev/null
    echo "round $r $((  $(ticks) - before )) 10000" >>"$OUT/gateway-cpu.txt"
  else
    "${LT[@]}" --creates 10000 --create-concurrency 100 --lists 0 --patient-service-url "$PATIENTS" \
      --json-out "$OUT/overhead-direct-$r.json" >/dev/null
  fi
  sleep 3
}
for r in 1 2 3 4 5; do
  if [ $((r % 2)) = 1 ]; then round gateway "$r"; round direct "$r"; else round direct "$r"; round gateway "$r"; fi
done

echo "== pgbench (same Postgres, one create's rows per commit)"
PGPORT="$(sed -nE 's/.*"postgres": "postgres:\/\/[^@]+@[^:]+:([0-9]+)".*/\1/p' "$DATA/up.json")"
export PGHOST=127.0.0.1 PGPORT PGUSER=pulsetrack PGPASSWORD="$(cat "$DATA/postgres-password")"
psql -q -d postgres -c 'DROP DATABASE IF EXISTS bench' -c 'CREATE DATABASE bench'
# The tables a create writes, from patient-service's own migrations.
for migration in services/patient-service/migrations/*.sql; do psql -q -d bench -f "$migration"; done
# Three runs each (the median is reported): a few hundred commits take a fraction of a second.
for spec in "1:10:500" "2:20:200" "3:100:400"; do
  IFS=: read -r s clients commits <<<"$spec"
  for r in 1 2 3; do
    pgbench -n -d bench -f bench/pgbench-create.sql -c "$clients" -j 2 -t $((commits / clients)) >"$OUT/pgbench-$s-$r.txt" 2>&1
    grep -E "^tps" "$OUT/pgbench-$s-$r.txt"
  done
done

echo "== sustained creates: 100 connections for 60 s through the gateway (issue 17)"
python3 bench/sustained.py "$DATA" "$GATEWAY" "$PATIENTS" --seconds 60 --clients 100 \
  --json-out "$OUT/sustained.json" >"$OUT/sustained.md"
cat "$OUT/sustained.md"

"$REL/deployer" status --local --data-dir "$DATA" >"$OUT/loaded-status.txt"
python3 bench/report.py "$OUT" "$LABEL" > bench/RESULTS.md.new
mv bench/RESULTS.md.new bench/RESULTS.md
echo "bench: wrote bench/RESULTS.md (raw data in $OUT)"
