#!/usr/bin/env python3
"""Runs every command block of README.md and docs/src/*.md, as a reader would.

A fenced block with the info string `sh` is a command block; every other fence must
name its language (`text`, `json`, ...), so that a command cannot hide in an unnamed
block. Each page's command blocks run in order in one bash shell (`set -euo pipefail`)
from the repository root, in a clean environment: what an earlier block of the page
sets is visible to the later ones, and nothing the caller exported is, apart from
PULSETRACK_PROFILE and CARGO_TARGET_DIR (which build the docs' commands run). Pages are
independent of each other.

Two markers, as the block's first line, which readers see too:
  # not run by the docs check: REASON
      skipped; listed with its reason (LocalStack Pro, AWS, Docker Hub, this check's
      own caller).
  # keeps running; the next blocks use it from another shell
      started in the background; the page goes on once its output says
      "PulseTrack is up", and `scripts/deployer down` stops it when the page ends.

Usage: scripts/check-docs.py [--list] [PAGE...]   (default: README.md and docs/src)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = "# not run by the docs check:"
BACKGROUND = "# keeps running; the next blocks use it from another shell"
READY_LINE = "PulseTrack is up"
READY_TIMEOUT_S = 900
PASSED_ENV = ("PULSETRACK_PROFILE", "CARGO_TARGET_DIR")
FENCE = re.compile(r"^(```+)\s*([^\s`]*)")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    lines: list[str]

    @property
    def first(self) -> str:
        return self.lines[0].strip() if self.lines else ""

    @property
    def skip_reason(self) -> str | None:
        return self.first[len(SKIP):].strip() if self.first.startswith(SKIP) else None

    @property
    def background(self) -> bool:
        return self.first == BACKGROUND

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse(path: Path) -> Page:
    page = Page(path)
    open_fence: tuple[str, Block] | None = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = FENCE.match(line)
        if open_fence is None:
            if match:
                block = Block(path, number, match.group(2), [])
                open_fence = (match.group(1), block)
                if not block.lang:
                    page.errors.append(f"{block.where}: a fence without a language (sh for commands, text otherwise)")
        elif line.strip() == open_fence[0]:
            page.blocks.append(open_fence[1])
            open_fence = None
        else:
            open_fence[1].lines.append(line)
    if open_fence is not None:
        page.errors.append(f"{open_fence[1].where}: the fence is never closed")
    commands = [b for b in page.blocks if b.lang == "sh"]
    if sum(b.background for b in commands) > 1:
        page.errors.append(f"{path.relative_to(ROOT)}: more than one block that keeps running")
    for block in commands:
        if block.skip_reason == "":
            page.errors.append(f"{block.where}: a skipped block must say why")
    page.blocks = commands
    return page


def script(page: Page) -> str:
    """The page's blocks as one bash script; a background block is waited for."""
    out = ["set -euo pipefail", f"cd {sh_quote(str(ROOT))}"]
    for block in page.blocks:
        if block.skip_reason is not None:
            continue
        body = "\n".join(block.lines[1:] if block.background else block.lines)
        out.append(f"echo {sh_quote('== ' + block.where)} >&2")
        if block.background:
            out.append(background(body))
        else:
            out.append(body)
    return "\n".join(out) + "\n"


def background(body: str) -> str:
    """Starts `body` in the background and waits until it reports the system up."""
    return f"""docs_log=$(mktemp)
( {body}
) >"$docs_log" 2>&1 &
docs_pid=$!
docs_stop() {{
  scripts/deployer down >/dev/null 2>&1 || kill "$docs_pid" 2>/dev/null || true
  wait "$docs_pid" 2>/dev/null || true
}}
trap docs_stop EXIT
for _ in $(seq 1 {READY_TIMEOUT_S}); do
  grep -q {sh_quote(READY_LINE)} "$docs_log" && break
  if ! kill -0 "$docs_pid" 2>/dev/null; then
    echo "the block ended before {READY_LINE}:" >&2; tail -n 40 "$docs_log" >&2; exit 1
  fi
  sleep 1
done
grep -q {sh_quote(READY_LINE)} "$docs_log" || {{ echo "not up after {READY_TIMEOUT_S} s" >&2; tail -n 40 "$docs_log" >&2; exit 1; }}"""


def sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def clean_env() -> dict[str, str]:
    keep = ("HOME", "PATH", "USER", "LOGNAME", "LANG", "TERM", "TMPDIR") + PASSED_ENV
    return {k: v for k, v in os.environ.items() if k in keep}


def pages(args: list[str]) -> list[Path]:
    if args:
        return [Path(a).resolve() for a in args]
    return [ROOT / "README.md", *sorted((ROOT / "docs" / "src").rglob("*.md"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the blocks and markers, run nothing")
    parser.add_argument("pages", nargs="*")
    args = parser.parse_args()
    parsed = [parse(p) for p in pages(args.pages)]
    errors = [e for p in parsed for e in p.errors]
    for e in errors:
        print(f"docs: {e}", file=sys.stderr)
    ran = skipped = 0
    failed: list[str] = []
    for page in parsed:
        for block in page.blocks:
            if block.skip_reason is not None:
                skipped += 1
                print(f"docs: skipped {block.where}: {block.skip_reason}")
        runnable = [b for b in page.blocks if b.skip_reason is None]
        if not runnable or args.list:
            for block in runnable:
                print(f"docs: would run {block.where}{' (keeps running)' if block.background else ''}")
            continue
        print(f"docs: running {len(runnable)} block(s) of {page.path.relative_to(ROOT)}", flush=True)
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
            f.write(script(page))
        result = subprocess.run(["bash", f.name], cwd=ROOT, env=clean_env(), check=False)
        os.unlink(f.name)
        ran += len(runnable)
        if result.returncode != 0:
            failed.append(f"{page.path.relative_to(ROOT)} (exit {result.returncode})")
    print(f"docs: {ran} block(s) run, {skipped} skipped, {len(failed)} page(s) failed, {len(errors)} format error(s)")
    for f in failed:
        print(f"docs: FAILED {f}", file=sys.stderr)
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
