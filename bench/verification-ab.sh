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

# Both revisions in one worktree and one target folder of their own, one after the
# other: the second build reuses the first one's dependencies. BINARIES=<folder> reuses
# the without/ and with/ binaries an earlier run copied there instead.
if [ -n "${BINARIES:-}" ]; then
  cp -r "$BINARIES/without" "$BINARIES/with" "$OUT/"
else
  AB_TARGET="$CARGO_TARGET_DIR-ab"
  git worktree add --detach "$OUT/src" "$BASE" >/dev/null
  trap 'git -C "$REPO" worktree remove --force "$OUT/src" 2>/dev/null || true' EXIT
  for side in without with; do
    rev=$BASE
    [ "$side" = with ] && rev=$WITH
    git -C "$OUT/src" checkout -q --detach "$rev"
    echo "== building $side ($rev) in release"
    CARGO_TARGET_DIR="$AB_TARGET" cargo build -q --release --workspace --bins --manifest-path "$OUT/src/Cargo.toml"
    mkdir -p "$OUT/$side"
    find "$AB_TARGET/release" -maxdepth 1 -type f -executable -exec cp {} "$OUT/$side/" \;
  done
  git -C "$REPO" worktree remove --force "$OUT/src"
  trap - EXIT
fi

round() {
  local side=$1 r=$2 bin="$OUT/$1" data="$OUT/data-$1-$2"
  "$bin/deployer" up --data-dir "$data" --bin-dir "$bin" >"$OUT/up-$side-$r.log" 2>&1 &
  local up=$!
  . bench/lib/up.sh
  wait_until_up "$OUT/up-$side-$r.log" "$up"
  PULSETRACK_ADMIN_EMAIL=admin@pulsetrack.local python3 bench/sustained.py "$data" \
    http://127.0.0.1:4004 http://127.0.0.1:4000 --seconds "$SECONDS_PER_ROUND" --clients 100 \
    --json-out "$OUT/$side-$r.json" >"$OUT/$side-$r.md"
  "$bin/deployer" down --data-dir "$data" >/dev/null 2>&1 || kill "$up" 2>/dev/null || true
  wait "$up" 2>/dev/null || true
  rm -rf "$data"
  echo "round $r $side: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f creates/s, p99 %s ms" % (r["creates_per_s"], r["latency_ms"]["99"]))' "$OUT/$side-$r.json")"
}

for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then round without "$r"; round with "$r"; else round with "$r"; round without "$r"; fi
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {side: [json.load(open(f"{out}/{side}-{r}.json")) for r in range(1, rounds + 1)] for side in ("without", "with")}
def cpu(r, names=None):
    return sum(v for k, v in r["cpu_ms_per_create"].items() if names is None or k in names)
metrics = [
    ("creates/s", lambda r: r["creates_per_s"], "{:.0f}"),
    ("p99 (ms)", lambda r: r["latency_ms"]["99"], "{:.1f}"),
    ("CPU ms per create, all processes", cpu, "{:.2f}"),
    ("CPU ms per create, gateway + patient-service", lambda r: cpu(r, {"api-gateway", "patient-service"}), "{:.3f}"),
    ("create -> analytics p99 (s)", lambda r: r["delay_s"]["p99"] or 0.0, "{:.2f}"),
]
print("| round | side | creates/s | p99 ms | CPU ms/create (all) | gateway + patient ms/create | non-2xx |")
print("|---|---|---|---|---|---|---|")
for i in range(rounds):
    for side in ("without", "with"):
        r = rows[side][i]
        print(f"| {i + 1} | {side} | {r['creates_per_s']:.0f} | {r['latency_ms']['99']:.1f} | {cpu(r):.2f} | "
              f"{cpu(r, {'api-gateway', 'patient-service'}):.3f} | {r['non_2xx']} |")
print()
print("| metric | without: median (min–max) | with: median (min–max) |")
print("|---|---|---|")
for name, f, fmt in metrics:
    cells = []
    for side in ("without", "with"):
        values = [f(r) for r in rows[side]]
        cells.append(f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})")
    print(f"| {name} | {cells[0]} | {cells[1]} |")
PY
