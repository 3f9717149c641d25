#!/usr/bin/env bash
# The docs gate (scripts/test.sh runs it after the tests): builds the book (mdBook),
# checks every relative link and anchor (markdown-link-check; links to the web are not
# followed, these machines have no way out), then runs every command block of README
# and docs/src as written (scripts/check-docs.py; its header lists the markers).
# The blocks start PulseTrack on :4004 and stop it again. PULSETRACK_PROFILE=dev runs
# them on the debug build that the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
{ read -r mdbook; read -r linkcheck; } < <(scripts/ensure-doc-tools.sh)

echo "docs: building the book"
"$mdbook" build docs

echo "docs: checking links"
config=$(mktemp)
trap 'rm -f "$config"' EXIT
# Relative links and anchors only.
echo '{"ignorePatterns": [{"pattern": "^https?://"}, {"pattern": "^mailto:"}]}' >"$config"
mapfile -t files < <(git ls-files -co --exclude-standard -- README.md CHANGELOG.md 'docs/src/*.md' 'bench/*.md')
"$linkcheck" --quiet --config "$config" "${files[@]}"

scripts/check-docs.py "$@"
