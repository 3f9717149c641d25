#!/usr/bin/env bash
# Installs the tansu Kafka-wire broker once, into a cache outside the clone, and
# prints its path. Later runs reuse it.
# Built with only the storage engines PulseTrack uses: SQLite (`libsql`: `deployer up`'s
# durable broker) and memory (`dynostore`: the tests' throwaway brokers). Postgres
# storage is left out (nothing here uses it; docs/src/running-locally.md has the build times).
# A cached build made with other features is rebuilt.
set -euo pipefail
TOOLS="${PULSETRACK_TOOLS:-$HOME/.cache/pulsetrack/tools}"
TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
TANSU_FEATURES="dynostore,libsql"
bin="$TOOLS/bin/tansu"
stamp="$TOOLS/tansu.build"
want="tansu $TANSU_VERSION features $TANSU_FEATURES"
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$bin"
  exit 0
fi
echo "tansu: building $want into $TOOLS (once; ~12 min on 2 cores)" >&2
CARGO_TARGET_DIR="$TOOLS/target" cargo install tansu --locked --force \
  --version "$TANSU_VERSION" --features "$TANSU_FEATURES" --root "$TOOLS" >&2
rm -rf "$TOOLS/target"
echo "$want" >"$stamp"
echo "$bin"
