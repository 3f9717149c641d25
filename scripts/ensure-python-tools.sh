#!/usr/bin/env bash
# cfn-lint (template validation) and moto's server (the LocalStack-compatible AWS
# endpoint the deployer tests deploy to), from PyPI, when missing.
set -euo pipefail
missing=()
command -v cfn-lint >/dev/null 2>&1 || missing+=(cfn-lint)
command -v moto_server >/dev/null 2>&1 || missing+=('moto[server]')
if [ ${#missing[@]} -gt 0 ]; then
  command -v pip3 >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null; }
  echo "python tools: installing ${missing[*]}"
  pip3 install --quiet "${missing[@]}" || pip3 install --quiet --break-system-packages "${missing[@]}"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash
  hash -r
fi
echo "cfn-lint $(cfn-lint --version 2>&1 | awk '{print $2}'), moto_server $(command -v moto_server)"
