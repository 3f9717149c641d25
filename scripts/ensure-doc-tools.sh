#!/usr/bin/env bash
# The docs' tools, once, into the tools folder outside the clone: mdBook (crates.io),
# which builds docs/ into a browsable book, and markdown-link-check (npm), which checks
# every relative link and anchor of README, CHANGELOG, docs/src and bench/. Node.js and
# npm come from Debian's packages when missing. Prints the two programs' paths.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh
TOOLS="${PULSETRACK_TOOLS:-$HOME/.cache/pulsetrack/tools}"
MDBOOK_VERSION=0.5.4
LINKCHECK_VERSION=3.14.2

mdbook="$TOOLS/bin/mdbook"
if [ "$("$mdbook" --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
  echo "mdbook: building $MDBOOK_VERSION into $TOOLS (once; ~3 min on 2 cores)" >&2
  # Without the default features: no `serve`/`watch` web server, which the check never uses.
  CARGO_TARGET_DIR="$TOOLS/target-mdbook" cargo install mdbook --locked --force --quiet \
    --version "$MDBOOK_VERSION" --no-default-features --features search --root "$TOOLS" >&2
  rm -rf "$TOOLS/target-mdbook"
fi

need=()
need_cmd npm npm
apt_install "${need[@]}"
linkcheck="$TOOLS/node/node_modules/.bin/markdown-link-check"
if [ "$("$linkcheck" --version 2>/dev/null)" != "$LINKCHECK_VERSION" ]; then
  echo "markdown-link-check: installing $LINKCHECK_VERSION into $TOOLS/node" >&2
  mkdir -p "$TOOLS/node"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" "markdown-link-check@$LINKCHECK_VERSION" >&2
fi
echo "$mdbook"
echo "$linkcheck"
