"""The sustained A/B's tables: each round of each side, then each side's median and
spread (min to max). Usage: python3 bench/ab-summary.py OUT ROUNDS (the json files
bench/lib/ab.sh's ab_sustained wrote there)."""

import json
import statistics
import sys

SIDES = ("without", "with")


def cpu(r, names=None):
    return sum(v for k, v in r["cpu_ms_per_create"].items() if names is None or k in names)


METRICS = [
    ("creates/s", lambda r: r["creates_per_s"], "{:.0f}"),
    ("p99 (ms)", lambda r: r["latency_ms"]["99"], "{:.1f}"),
    ("CPU ms per create, all processes", cpu, "{:.2f}"),
    ("CPU ms per create, gateway + patient-service", lambda r: cpu(r, {"api-gateway", "patient-service"}), "{:.3f}"),
    ("create -> analytics p99 (s)", lambda r: r["delay_s"]["p99"] or 0.0, "{:.2f}"),
]


def spread(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main(out, rounds):
    rows = {side: [json.load(open(f"{out}/{side}-{r}.json")) for r in range(1, rounds + 1)] for side in SIDES}
    print("| round | side | creates/s | p99 ms | CPU ms/create (all) | gateway + patient ms/create | non-2xx |")
    print("|---|---|---|---|---|---|---|")
    for i in range(rounds):
        for side in SIDES:
            r = rows[side][i]
            print(f"| {i + 1} | {side} | {r['creates_per_s']:.0f} | {r['latency_ms']['99']:.1f} | {cpu(r):.2f} | "
                  f"{cpu(r, {'api-gateway', 'patient-service'}):.3f} | {r['non_2xx']} |")
    print()
    print("| metric | without: median (min–max) | with: median (min–max) |")
    print("|---|---|---|")
    for name, f, fmt in METRICS:
        cells = [spread([f(r) for r in rows[side]], fmt) for side in SIDES]
        print(f"| {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
