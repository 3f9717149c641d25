#!/usr/bin/env python3
"""Writes bench/RESULTS.md (to stdout) from the raw results bench/run.sh collected.

Usage: report.py RESULTS_DIR [LABEL]
"""

import json
import os
import platform
import re
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

SEED = {
    1: "creates avg 0.8-0.9 s (10 clients); lists 1.3 s",
    2: "creates avg 1.6 s (20 clients)",
    3: "creates avg 4.1 s with five 500s (100 clients); lists up to 6.2 s",
}
TARGETS = "scenario 3 with 0 errors and create p99 < 50 ms; create throughput >= 50% of pgbench's; gateway overhead <= 15%; create->analytics p99 < 100 ms"


def load(path):
    with open(path) as f:
        return json.load(f)


def phase(report, name):
    for p in report["phases"]:
        if p["name"] == name:
            return p
    return None


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - a machine fact that cannot be read is left out
        return ""


def machine():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("free -g | awk '/Mem:/ {print $2}'")
    return [
        f"- CPU: {cpu or platform.processor()} x {os.cpu_count()} (everything below ran on it at once: "
        "load generator, gateway, four services, Postgres, tansu)",
        f"- Memory: {mem} GiB; kernel {platform.release()}",
        f"- {sh('psql --version')}; {sh('rustc --version')}",
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
    ]


def pgbench(path):
    text = Path(path).read_text()
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    lat = re.search(r"latency average = ([0-9.]+) ms", text)
    txs = re.search(r"number of transactions actually processed: (\d+)", text)
    return {
        "tps": float(tps.group(1)) if tps else float("nan"),
        "latency_ms": float(lat.group(1)) if lat else float("nan"),
        "commits": int(txs.group(1)) if txs else 0,
    }


def row(p):
    return (
        f"| {p['name']} | {p['via']} | {p['concurrency']} | {p['requests']} | {p['ok']} | {p['client_errors']} | "
        f"{p['server_errors']} | {p['other']} | {p['avg_ms']:.1f} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} | "
        f"{p['p99_ms']:.1f} | {p['max_ms']:.1f} | {p['throughput_per_s']:.0f} |"
    )


HEADER = (
    "| phase | via | clients | requests | ok | 4xx | 5xx | other | avg ms | p50 | p95 | p99 | max | req/s |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def main():
    out = Path(sys.argv[1])
    label = sys.argv[2] if len(sys.argv) > 2 else ""
    lines = ["# PulseTrack benchmark results", ""]
    lines.append(
        "Written by `bench/run.sh` (the raw loadtest JSON, pgbench output and `deployer status` "
        "tables are in the folder it prints). Release builds, `deployer up` with a fresh private "
        "Postgres and tansu, services with the task definitions' settings (`RUST_LOG=info`)."
    )
    if label:
        lines += ["", f"Run: {label}"]
    lines += ["", "## Machine", ""] + machine()

    lines += ["", "## The seed's scenarios, through the gateway", "", HEADER]
    scenarios = {}
    for s in (1, 2, 3):
        report = load(out / f"scenario-{s}.json")
        scenarios[s] = report
        for p in report["phases"]:
            lines.append(row({**p, "name": f"S{s} {p['name']}"}))
    lines += ["", "The seed on a laptop, for comparison: " + "; ".join(f"({k}) {v}" for k, v in SEED.items()) + "."]

    e2e = load(out / "e2e.json")
    lines += ["", "## End-to-end delay after the create response (sequential creates)", "", HEADER]
    for p in e2e["phases"]:
        lines.append(row(p))

    lines += ["", "## Gateway overhead: creates at 100 clients, gateway vs patient-service directly", ""]
    lines += [
        "10000 creates per round (400 last 0.3 s, too short to tell a few percent apart), five "
        "rounds each alternating which goes first, 3 s apart, same clients.",
        "",
        HEADER,
    ]
    gw, direct = [], []
    for r in (1, 2, 3, 4, 5):
        g = phase(load(out / f"overhead-gateway-{r}.json"), "create patient")
        d = phase(load(out / f"overhead-direct-{r}.json"), "create patient")
        lines.append(row({**g, "name": f"round {r} create patient"}))
        lines.append(row({**d, "name": f"round {r} create patient"}))
        gw.append(g)
        direct.append(d)
    gw_tp = statistics.median(p["throughput_per_s"] for p in gw)
    d_tp = statistics.median(p["throughput_per_s"] for p in direct)
    gw_p50 = statistics.median(p["p50_ms"] for p in gw)
    d_p50 = statistics.median(p["p50_ms"] for p in direct)
    paired = [(d["throughput_per_s"] / g["throughput_per_s"] - 1) * 100 for g, d in zip(gw, direct)]
    overhead = statistics.median(paired)
    lines += [
        "",
        f"Median throughput: gateway {gw_tp:.0f}/s, direct {d_tp:.0f}/s. Per round (direct/gateway - 1): "
        f"{', '.join(f'{p:.0f}%' for p in paired)}; median **{overhead:.1f}%**. Median p50: gateway "
        f"{gw_p50:.1f} ms, direct {d_p50:.1f} ms. Round-to-round spread of the same configuration on this "
        "machine is about ±15% (Postgres commits wait on a shared virtual disk), so this ratio moves "
        "between runs: see bench/TUNING.md.",
    ]
    cpu_share = None
    cpu_file = out / "gateway-cpu.txt"
    if cpu_file.exists():
        rows = cpu_file.read_text().split("\n")
        tck = int(rows[0].split()[1])
        per_request = [int(r.split()[2]) / tck / int(r.split()[3]) * 1e6 for r in rows[1:] if r.startswith("round")]
        # What a create costs the whole machine, event pipeline included: the sustained
        # run's CPU per create over every process (bench/sustained.py).
        sustained_json = out / "sustained.json"
        machine_us = (sum(json.loads(sustained_json.read_text())["cpu_ms_per_create"].values()) * 1000
                      if sustained_json.exists() else None)
        if per_request and machine_us:
            us = statistics.median(per_request)
            cpu_share = us / machine_us * 100
            lines += [
                "",
                f"The gateway's own CPU time (user + system, from /proc) per proxied create: median "
                f"**{us:.0f} µs** over the five rounds ({', '.join(f'{u:.0f}' for u in per_request)}), against "
                f"{machine_us:.0f} µs of CPU a create costs the whole machine with its event pipeline "
                f"(the sustained run below): {cpu_share:.0f}%.",
            ]

    lines += ["", "## pgbench: the same commits without the services", ""]
    lines += [
        "`pgbench -f bench/pgbench-create.sql` on the same Postgres: one transaction inserts the "
        "patient row and its two outbox rows, as one create commits; the same clients and commit "
        "count as each scenario's create phase (median of three runs). The ratio compares with "
        "the create phase of the scenario run above.",
        "",
        "| scenario | clients | commits | pgbench tps | pgbench latency ms | PulseTrack creates/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = {}
    for s, clients in ((1, 10), (2, 20), (3, 100)):
        runs = sorted((pgbench(out / f"pgbench-{s}-{r}.txt") for r in (1, 2, 3)), key=lambda p: p["tps"])
        pg = runs[1]  # the median run
        create = phase(scenarios[s], "create patient")
        ratio = create["throughput_per_s"] / pg["tps"] if pg["tps"] else float("nan")
        ratios[s] = ratio
        lines.append(
            f"| {s} | {clients} | {pg['commits']} | {pg['tps']:.0f} | {pg['latency_ms']:.1f} | "
            f"{create['throughput_per_s']:.0f} | {ratio * 100:.0f}% |"
        )

    s3 = phase(scenarios[3], "create patient")
    s3_errors = sum(p["client_errors"] + p["server_errors"] + p["other"] for p in scenarios[3]["phases"])
    analytics = next((p for p in e2e["phases"] if "analytics" in p["name"]), None)
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    lines += ["", "## Targets", "", f"Targets: {TARGETS}.", ""]
    lines.append(f"- Scenario 3 errors: {s3_errors} ({verdict(s3_errors == 0)})")
    lines.append(f"- Scenario 3 create p99: {s3['p99_ms']:.1f} ms ({verdict(s3['p99_ms'] < 50)})")
    lines.append(
        f"- Create throughput vs pgbench, scenario 3: {ratios[3] * 100:.0f}% ({verdict(ratios[3] >= 0.5)})"
    )
    if cpu_share is not None:
        lines.append(
            f"- Gateway overhead, by its CPU per create: {cpu_share:.0f}% of what a create costs the machine "
            f"({verdict(cpu_share <= 15)})"
        )
    lines.append(
        f"- Gateway overhead, by throughput (median of paired rounds): {overhead:.1f}% ({verdict(overhead <= 15)}; "
        "noisy, see above)"
    )
    if analytics:
        lines.append(
            f"- Create → analytics p99: {analytics['p99_ms']:.1f} ms ({verdict(analytics['p99_ms'] < 100)})"
        )

    sustained = out / "sustained.md"
    if sustained.exists():
        lines += ["", "## Sustained creates (issue 17: `bench/sustained.py`)", "", sustained.read_text().rstrip()]

    for name in ("idle-status.txt", "loaded-status.txt"):
        path = out / name
        if path.exists():
            title = "at idle, after start" if name.startswith("idle") else "after the runs"
            lines += ["", f"## Processes {title} (`deployer status --local`)", "", "```", path.read_text().rstrip(), "```"]

    tuning = Path(__file__).with_name("TUNING.md")
    if tuning.exists():
        lines += ["", tuning.read_text().rstrip()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
