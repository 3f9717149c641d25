#!/usr/bin/env bash
# README's start command: installs what is missing (build tools, PostgreSQL's server
# tools, the tansu broker), builds the whole workspace in one profile (debug, the one
# `scripts/test.sh` builds too), then runs `deployer up`: the stack model on this
# machine, the gateway on 127.0.0.1:4004. Arguments go to `deployer up` (see
# `deployer up --help`). Ctrl-C stops everything.
#
# On a fresh machine tansu and the workspace build side by side (tansu's output goes to
# a log in the tools folder): each has long single-crate stretches that leave a core
# idle, which the other fills. docs/src/running-locally.md has the phases and their times.
# The build leaves out the deployer's AWS clients (its `aws` feature: `up` needs none of
# them); `scripts/deployer` adds them the first time a command calls AWS.
# PULSETRACK_PROFILE=release builds and runs the release profile instead (for the
# benchmarks' speed; a first start then takes twice as long).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"
PROFILE="${PULSETRACK_PROFILE:-dev}"
features=(--no-default-features)
case "$PROFILE" in
  release) out="$CARGO_TARGET_DIR/release" ;;
  dev) out="$CARGO_TARGET_DIR/debug" ;;
  *) echo "PULSETRACK_PROFILE must be release or dev, not '$PROFILE'" >&2; exit 2 ;;
esac

scripts/ensure-build-tools.sh
TOOLS="${PULSETRACK_TOOLS:-$HOME/.cache/pulsetrack/tools}"
mkdir -p "$TOOLS"
tansu_out="$TOOLS/install-tansu.out"
tansu_log="$TOOLS/install-tansu.log"
scripts/install-tansu.sh >"$tansu_out" 2>"$tansu_log" &
tansu_pid=$!
echo "up: building the workspace ($PROFILE); tansu is made beside it if missing (log: $tansu_log)"
cargo build --profile "$PROFILE" --workspace --bins "${features[@]}"
if ! wait "$tansu_pid"; then
  echo "up: building tansu failed; the end of $tansu_log:" >&2
  tail -n 30 "$tansu_log" >&2
  exit 1
fi
TANSU_BIN="$(cat "$tansu_out")"
export TANSU_BIN
exec "$out/deployer" up --bin-dir "$out" "$@"
