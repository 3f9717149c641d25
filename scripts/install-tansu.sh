#!/usr/bin/env bash
# Installs the tansu Kafka-wire broker once, into a cache outside the clone, and
# prints its path. Later runs reuse it (a build takes ~20 min on 2 cores).
# Built with SQLite storage (`libsql`, durable across restarts) besides memory and
# Postgres; a cached build made with other features is rebuilt.
set -euo pipefail
TOOLS="${PULSETRACK_TOOLS:-$HOME/.cache/pulsetrack/tools}"
TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
TANSU_FEATURES="dynostore,postgres,libsql"
bin="$TOOLS/bin/tansu"
stamp="$TOOLS/tansu.build"
want="tansu $TANSU_VERSION features $TANSU_FEATURES"
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$bin"
  exit 0
fi
echo "tansu: building $want into $TOOLS (once; ~20 min)" >&2
CARGO_TARGET_DIR="$TOOLS/target" cargo install tansu --locked --force \
  --version "$TANSU_VERSION" --features "$TANSU_FEATURES" --root "$TOOLS" >&2
rm -rf "$TOOLS/target"
echo "$want" >"$stamp"
echo "$bin"
