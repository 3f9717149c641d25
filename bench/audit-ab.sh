#!/usr/bin/env bash
# Issue 35: what auditing every security event (and sealing the trails with a key,
# anchored every 30 s) costs. Two revisions built in release:
#   without = BASE (default a27340d): the trails of patient data only, unkeyed;
#   with    = WITH (default HEAD): auth-service's trail of every security event, the
#             gateway's refusal counts, billing's disclosures, HMAC seals and anchors.
# ROUNDS rounds, alternating which side goes first, each round:
#   - the sustained bench through the whole system (bench/lib/ab.sh's ab_sustained:
#     creates, every one a login-free audited access, plus the outbox's disclosures);
#   - bench/login-flood.sh against that side's auth-service: a user's logins while
#     floods of bad logins run, every one of them now an entry.
# Prints each round and each side's median and spread, and the interval between
# anchors the with-side wrote. Not part of CI.
# Usage: bench/audit-ab.sh [BASE [WITH]]   (env ROUNDS=5 SECONDS_PER_ROUND=60
#        FLOOD_SECONDS=15, BINARIES=<an earlier run's results folder> to skip the builds)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"
BASE="${1:-a27340d}"
WITH="${2:-$(git rev-parse --short HEAD)}"
ROUNDS="${ROUNDS:-5}"
SECONDS_PER_ROUND="${SECONDS_PER_ROUND:-60}"
FLOOD_SECONDS="${FLOOD_SECONDS:-15}"
. bench/lib/prepare.sh
prepare_bench audit-ab
. bench/lib/ab.sh
ab_build "$BASE" "$WITH"

flood() {
  local side=$1 r=$2
  LOGIN_FLOOD_JSON="$OUT/flood-$side-$r.json" bench/login-flood.sh "$OUT/$side/auth-service" "$FLOOD_SECONDS" \
    >"$OUT/flood-$side-$r.md" 2>&1
  echo "round $r $side: login flood done"
}

for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then order="without with"; else order="with without"; fi
  for side in $order; do ab_sustained "$side" "$r"; done
  for side in $order; do flood "$side" "$r"; done
done

python3 bench/ab-summary.py "$OUT" "$ROUNDS"
echo
python3 - "$OUT" "$ROUNDS" <<'PY'
import glob, json, statistics, sys
from datetime import datetime
out, rounds = sys.argv[1], int(sys.argv[2])
def spread(values, fmt="{:.0f}"):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"
print("| login flood | metric | without: median (min–max) | with: median (min–max) |")
print("|---|---|---|---|")
runs = {s: [json.load(open(f"{out}/flood-{s}-{r}.json")) for r in range(1, rounds + 1)] for s in ("without", "with")}
for flood in ("none", "brute-one", "brute-many", "unknown-many"):
    for who, key, label, fmt in [("user", "per_s", "user logins/s", "{:.0f}"), ("user", "99%", "user p99 ms", "{:.1f}"),
                                 ("flood", "per_s", "flood answers/s", "{:.0f}")]:
        if who not in runs["with"][0][flood]:
            continue
        cells = [spread([run[flood][who][key] for run in runs[s]], fmt) for s in ("without", "with")]
        print(f"| {flood} | {label} | {cells[0]} | {cells[1]} |")
print()
gaps = []
for folder in glob.glob(f"{out}/anchors-with-*"):
    for path in glob.glob(f"{folder}/*.jsonl"):
        times = sorted(datetime.fromisoformat(json.loads(line)["at"].replace("Z", "+00:00"))
                       for line in open(path) if line.strip())
        gaps += [(b - a).total_seconds() for a, b in zip(times, times[1:])]
if gaps:
    gaps.sort()
    print(f"anchor interval observed (with, every trail, {len(gaps)} gaps): median {statistics.median(gaps):.1f} s, "
          f"max {gaps[-1]:.1f} s")
PY
