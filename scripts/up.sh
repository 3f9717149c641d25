#!/usr/bin/env bash
# README's start command: installs what is missing (build tools, PostgreSQL's server
# tools, the tansu broker), builds the services (release) and the deployer, then runs
# `deployer up`: the stack model on this machine, the gateway on 127.0.0.1:4004.
# Arguments go to `deployer up` (see `deployer up --help`). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"

scripts/ensure-build-tools.sh
TANSU_BIN="$(scripts/install-tansu.sh)"
export TANSU_BIN
cargo build --release -p auth-service -p patient-service -p api-gateway -p billing-service -p analytics-service -p loadtest
# The deployer only supervises here: its debug build (with the workspace's features,
# so it is the very build the tests use) is enough.
cargo build --workspace --bins
exec "$CARGO_TARGET_DIR/debug/deployer" up --bin-dir "$CARGO_TARGET_DIR/release" "$@"
