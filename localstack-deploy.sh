#!/usr/bin/env bash
# Deploys PulseTrack to LocalStack (or any LocalStack-compatible endpoint) with the
# deployer, and prints the gateway's :4004 URL. Replaces the seed's script.
#   ./localstack-deploy.sh [deployer deploy options, e.g. -c desired-count=2]
# Endpoint: AWS_ENDPOINT_URL, else LOCALSTACK_HOST, else localhost.localstack.cloud:4566,
# else 127.0.0.1:4566. Credentials test/test and region us-east-1 unless set.
# No image step by hand: `deploy` builds the five images from the release binaries
# (no Docker needed), pushes them to the ECR repositories it declares (or to
# -c image-registry=host:port/path) and names them by digest in the task definitions.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"
scripts/ensure-build-tools.sh
base="$(scripts/ensure-containers.sh)"
cargo build --quiet --release --workspace --bins
outputs="$(mktemp)"
trap 'rm -f "$outputs"' EXIT
"$CARGO_TARGET_DIR/release/deployer" deploy --localstack --require-approval never \
  --bin-dir "$CARGO_TARGET_DIR/release" --base "$base" --outputs-file "$outputs" "$@"
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("GatewayUrl",""))' "$outputs")
if [ -n "$url" ]; then
  echo "PulseTrack gateway: $url"
else
  echo "the stack has no GatewayUrl output" >&2
  exit 1
fi
