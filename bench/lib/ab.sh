# Sourced by the A/B bench scripts (after bench/lib/prepare.sh): two revisions built in
# release and the sustained bench run against each with its own `deployer up`.
#   ab_build BASE WITH       → $OUT/without and $OUT/with hold each side's binaries
#                              (BINARIES=<an earlier run's results folder> reuses them)
#   ab_sustained SIDE ROUND  → $OUT/SIDE-ROUND.json and .md (bench/sustained.py through
#                              the gateway, 100 connections, SECONDS_PER_ROUND seconds);
#                              $OUT/anchors-SIDE-ROUND/ keeps the audit anchors, if any
ab_build() {
  local base=$1 with=$2
  if [ -n "${BINARIES:-}" ]; then
    cp -r "$BINARIES/without" "$BINARIES/with" "$OUT/"
    return
  fi
  # Both revisions in one worktree and one target folder of their own, one after the
  # other: the second build reuses the first one's dependencies.
  local target="$CARGO_TARGET_DIR-ab"
  git worktree add --detach "$OUT/src" "$base" >/dev/null
  trap 'git -C "$REPO" worktree remove --force "$OUT/src" 2>/dev/null || true' EXIT
  for side in without with; do
    local rev=$base
    [ "$side" = with ] && rev=$with
    git -C "$OUT/src" checkout -q --detach "$rev"
    echo "== building $side ($rev) in release"
    CARGO_TARGET_DIR="$target" cargo build -q --release --workspace --bins --manifest-path "$OUT/src/Cargo.toml"
    mkdir -p "$OUT/$side"
    find "$target/release" -maxdepth 1 -type f -executable -exec cp {} "$OUT/$side/" \;
  done
  git -C "$REPO" worktree remove --force "$OUT/src"
  trap - EXIT
}

ab_sustained() {
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
  [ -d "$data/audit-anchors" ] && cp -r "$data/audit-anchors" "$OUT/anchors-$side-$r"
  rm -rf "$data"
  echo "round $r $side: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f creates/s, p99 %s ms" % (r["creates_per_s"], r["latency_ms"]["99"]))' "$OUT/$side-$r.json")"
}
