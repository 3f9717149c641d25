#!/usr/bin/env bash
# Deploys PulseTrack to LocalStack (or any LocalStack-compatible endpoint) with the
# deployer, and prints the gateway's :4004 URL. Replaces the seed's script.
#   ./localstack-deploy.sh [deployer deploy options, e.g. -c image-tag=v2]
# Endpoint: AWS_ENDPOINT_URL, else LOCALSTACK_HOST, else localhost.localstack.cloud:4566,
# else 127.0.0.1:4566. Credentials test/test and region us-east-1 unless set.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"
cargo build --quiet --release -p deployer
outputs="$(mktemp)"
trap 'rm -f "$outputs"' EXIT
"$CARGO_TARGET_DIR/release/deployer" deploy --localstack --require-approval never --outputs-file "$outputs" "$@"
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("GatewayUrl",""))' "$outputs")
if [ -n "$url" ]; then
  echo "PulseTrack gateway: $url"
else
  echo "the stack has no GatewayUrl output" >&2
  exit 1
fi
