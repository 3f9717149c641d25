#!/usr/bin/env bash
# Installs the tansu Kafka-wire broker once, into a cache outside the clone, and
# prints its path. Later runs reuse it (a build takes ~20 min on 2 cores).
set -euo pipefail
TOOLS="${PULSETRACK_TOOLS:-$HOME/.cache/pulsetrack/tools}"
TANSU_VERSION="${TANSU_VERSION:-}"
bin="$TOOLS/bin/tansu"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
echo "tansu: building into $TOOLS (once; ~20 min)" >&2
args=(install tansu --locked --features dynostore,postgres --root "$TOOLS")
[ -n "$TANSU_VERSION" ] && args+=(--version "$TANSU_VERSION")
CARGO_TARGET_DIR="$TOOLS/target" cargo "${args[@]}" >&2
rm -rf "$TOOLS/target"
echo "$bin"
