#!/usr/bin/env bash
# Issue 33: what the gateway's revocation check costs on creates. One `deployer up`
# (release, this revision) and, beside its gateway, a second gateway process of BASE's
# revision (default 5f1f700, the last commit before sessions: it verifies tokens the same
# way but follows no revocation feed and checks no session), with the same environment
# on port +100. Then ROUNDS rounds of SECONDS of creates at 100 connections through
# each (wrk, bench/wrk/create-patient.lua, with the seeded ADMIN's token: a role both
# revisions let create), alternating which goes first, 3 s apart so the event pipeline
# catches up: creates/s and p99 per round, and each gateway's CPU time per 1,000
# creates (/proc). Prints a markdown table and each side's median and spread. Not
# part of CI.
# Usage: bench/revocation-ab.sh [BASE]   (env ROUNDS=5 SECONDS_PER_ROUND=10)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"
BASE="${1:-5f1f700}"
ROUNDS="${ROUNDS:-5}"
SECONDS_PER_ROUND="${SECONDS_PER_ROUND:-10}"
. bench/lib/prepare.sh
prepare_bench revocation-ab

# BASE's gateway, in a target folder of its own (the workspace's path crates of two
# revisions must not share one), copied aside; then this revision's workspace.
git worktree add --detach "$OUT/base" "$BASE" >/dev/null
CARGO_TARGET_DIR="$CARGO_TARGET_DIR-base" cargo build --release -p api-gateway --manifest-path "$OUT/base/Cargo.toml"
cp "$CARGO_TARGET_DIR-base/release/api-gateway" "$OUT/base-gateway"
git worktree remove --force "$OUT/base"
cargo build --release --workspace --bins
REL="$CARGO_TARGET_DIR/release"

DATA="$OUT/data"
"$REL/deployer" up --data-dir "$DATA" --bin-dir "$REL" >"$OUT/up.log" 2>&1 &
UP=$!
BASE_GW=""
stop() {
  [ -n "$BASE_GW" ] && kill "$BASE_GW" 2>/dev/null || true
  "$REL/deployer" down --data-dir "$DATA" >/dev/null 2>&1 || kill "$UP" 2>/dev/null || true
  wait "$UP" 2>/dev/null || true
}
trap stop EXIT
. bench/lib/up.sh
wait_until_up "$OUT/up.log" "$UP"

NEW_PID="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['processes']['api-gateway']['pid'])" "$DATA/up.json")"
# The base gateway: the same environment as up's gateway, but PORT + 100.
python3 - "$NEW_PID" "$OUT/base-gateway" "$OUT/base-gateway.log" <<'PY' &
import os, sys
pid, binary, log = sys.argv[1], sys.argv[2], sys.argv[3]
env = dict(item.split("=", 1) for item in open(f"/proc/{pid}/environ").read().split("\0") if "=" in item)
env["PORT"] = str(int(env.get("PORT", "4004")) + 100)
fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(fd, 1)
os.dup2(fd, 2)
os.execve(binary, [binary], env)
PY
BASE_GW=$!
NEW_URL="http://127.0.0.1:4004"
BASE_URL="http://127.0.0.1:4104"
for _ in $(seq 1 100); do
  curl -sf "$BASE_URL/ready" >/dev/null && break
  sleep 0.2
done
curl -sf "$BASE_URL/ready" >/dev/null || { echo "the base gateway did not become ready"; cat "$OUT/base-gateway.log"; exit 1; }

ADMIN_TOKEN="$(curl -sf "$NEW_URL/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"admin@pulsetrack.local\",\"password\":\"$(cat "$DATA/admin-password")\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
round() {
  local side=$1 r=$2 url pid before
  if [ "$side" = with ]; then url=$NEW_URL pid=$NEW_PID; else url=$BASE_URL pid=$BASE_GW; fi
  before=$(ticks "$pid")
  AUTH_TOKEN="$ADMIN_TOKEN" CREATE_PATH=/api/patients wrk -t 2 -c 100 -d "${SECONDS_PER_ROUND}s" --latency \
    -s bench/wrk/create-patient.lua "$url" >"$OUT/$side-$r.txt"
  echo "$side $r $(( $(ticks "$pid") - before ))" >>"$OUT/cpu.txt"
  sleep 3
}
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then round with "$r"; round without "$r"; else round without "$r"; round with "$r"; fi
done

python3 - "$OUT" "$(getconf CLK_TCK)" <<'PY'
import re, statistics, sys
from pathlib import Path
out, hz = Path(sys.argv[1]), int(sys.argv[2])
def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rows = {"with": [], "without": []}
for line in (out / "cpu.txt").read_text().split("\n"):
    if not line:
        continue
    side, r, t = line.split()
    text = (out / f"{side}-{r}.txt").read_text()
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = int(bad.group(1)) if bad else 0
    rows[side].append((int(r), rate, p99, int(t) / hz / max(requests, 1) * 1e6, errors))
print("| gateway | round | creates/s | p99 ms | gateway CPU ms per 1,000 creates | non-2xx |")
print("|---|---|---|---|---|---|")
for side, label in (("with", "with the check (this revision)"), ("without", "without (BASE)")):
    for r, rate, p99, cpu, errors in sorted(rows[side]):
        print(f"| {label} | {r} | {rate:.0f} | {p99:.1f} | {cpu:.0f} | {errors} |")
print()
for side in ("with", "without"):
    for i, name in ((1, "creates/s"), (2, "p99 ms"), (3, "CPU ms/1k")):
        values = [row[i] for row in rows[side]]
        print(f"{side:8} {name:10} median {statistics.median(values):8.1f}  min {min(values):8.1f}  max {max(values):8.1f}")
PY
