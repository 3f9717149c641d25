#!/usr/bin/env python3
"""Issue 17's sustained run, against a running `deployer up` (release services).

Creates through the gateway from CLIENTS closed-loop connections for SECONDS (wrk,
bench/wrk/create-patient.lua with an ADMIN's token), and meanwhile, every second, the
outbox's backlog and oldest pending age (patient-service's /metrics). Afterwards:
  - latency percentiles and errors (wrk), and when the slow creates happened: the
    gateway's latency histogram of `POST /api/patients`, read every half-second, gives
    each half-second's share of creates over 32, 64 and 128 ms (stalls show up as
    windows, CPU queueing as a spread);
  - CPU seconds per 1,000 creates of every process (/proc: the five services, tansu,
    and the private Postgres with its backends), over the run;
  - the create -> analytics delay of every patient created in the run (analytics'
    received_at - the event's occurred_at, both stamped on this machine), p50/p99/max,
    and how long the pipeline took to drain after the load stopped;
  - pgbench's tps for one create's commit (bench/pgbench-create.sql) at CLIENTS on the
    same Postgres, right after.
Prints a markdown section and writes the numbers as JSON (--json-out).
Usage: bench/sustained.py DATA_DIR GATEWAY_URL PATIENT_SERVICE_URL [--seconds 60]
       [--clients 100] [--json-out FILE]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parent.parent


def ticks(pid, children=False):
    """utime+stime of pid (and, with children, of its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    own = int(fields[11]) + int(fields[12])
    return own + (int(fields[13]) + int(fields[14]) if children else 0)


def children_of(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def cpu_snapshot(state):
    """Ticks per process group: each process `up` runs, and Postgres (the postmaster,
    its reaped children, and its live backends)."""
    snap = {name: ticks(p["pid"]) for name, p in state["processes"].items() if p.get("pid")}
    postmaster = state.get("postgres_pid")
    if postmaster:
        snap["postgres"] = ticks(postmaster, children=True) + sum(ticks(c) for c in children_of(postmaster))
    return snap


def db_counters(url):
    """The whole cluster's commits and WAL bytes so far (over the run: per create)."""
    commits, wal = psql(url, "SELECT (SELECT sum(xact_commit) FROM pg_stat_database), "
                             "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')").split("|")
    return {"commits": float(commits), "wal_bytes": float(wal)}


def http_json(url, body=None, token=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def outbox_sample(patient_url):
    text = urllib.request.urlopen(f"{patient_url}/metrics", timeout=5).read().decode()
    sample = {}
    for name in ("outbox_pending", "outbox_oldest_pending_age_seconds"):
        for m in re.finditer(rf'^{name}{{destination="([a-z-]+)"}} (\S+)$', text, re.M):
            sample.setdefault(m.group(1), {})[name] = float(m.group(2))
    hold = re.search(r"^outbox_create_hold_seconds (\S+)$", text, re.M)
    return sample, float(hold.group(1)) if hold else None


CREATE_BUCKETS = re.compile(r'^http_server_request_duration_seconds_bucket\{([^}]*)\} (\S+)$', re.M)


def create_histogram(gateway_url):
    """Cumulative counts of the gateway's `POST /api/patients` durations by bucket bound."""
    text = urllib.request.urlopen(f"{gateway_url}/metrics", timeout=5).read().decode()
    buckets = {}
    for labels, value in CREATE_BUCKETS.findall(text):
        if 'method="POST"' in labels and 'route="/api/patients"' in labels:
            bound = re.search(r'le="([^"]+)"', labels).group(1)
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return buckets


def slow_windows(histograms):
    """Per window between two histogram reads: its start (s into the run), creates/s and
    the shares over 32, 64 and 128 ms."""
    windows = []
    start = histograms[0][0] if histograms else 0
    for (t0, a), (t1, b) in zip(histograms, histograms[1:]):
        total = b.get("+Inf", 0) - a.get("+Inf", 0)
        if total <= 0:
            continue
        over = lambda bound: (total - (b.get(bound, 0) - a.get(bound, 0))) / total  # noqa: E731
        windows.append([round(t0 - start, 2), total / (t1 - t0), over("0.032"), over("0.064"), over("0.128")])
    return windows


def psql(url, sql):
    out = subprocess.run(["psql", "-qAt", url, "-c", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def wrk_latency(text, pct):
    m = re.search(rf"^\s+{pct}%\s+(\S+)$", text, re.M)
    if not m:
        return None
    value = m.group(1)
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit) and not (unit == "s" and value.endswith(("us", "ms"))):
            return float(value[: -len(unit)]) * scale
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("gateway")
    parser.add_argument("patient_service")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    data = Path(args.data_dir)
    state = json.loads((data / "up.json").read_text())
    password = (data / "postgres-password").read_text().strip()
    address = state["postgres"].rsplit("@", 1)[-1]
    db = lambda name: f"postgres://pulsetrack:{password}@{address}/{name}"  # noqa: E731

    login = http_json(f"{args.gateway}/auth/login", {
        "email": state.get("admin_email") or os.environ["PULSETRACK_ADMIN_EMAIL"],
        "password": (data / "admin-password").read_text().strip(),
    })
    token = login["token"]

    samples = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            try:
                samples.append((time.time(), *outbox_sample(args.patient_service)))
            except OSError:
                pass
            stop.wait(1.0)

    started_db = psql(db("patient_service"), "SELECT now()")
    db_before = db_counters(db("postgres"))
    before = cpu_snapshot(state)
    histograms = []
    load_done = threading.Event()

    def histogram_sampler():
        while not load_done.is_set():
            try:
                histograms.append((time.time(), create_histogram(args.gateway)))
            except OSError:
                pass
            load_done.wait(0.5)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    tail_thread = threading.Thread(target=histogram_sampler, daemon=True)
    tail_thread.start()
    env = dict(os.environ, AUTH_TOKEN=token, CREATE_PATH="/api/patients")
    wrk = subprocess.run(
        ["wrk", "-t", "2", "-c", str(args.clients), "-d", f"{args.seconds}s", "--latency",
         "-s", str(REPO / "bench/wrk/create-patient.lua"), args.gateway],
        check=True, capture_output=True, text=True, env=env)
    after = cpu_snapshot(state)
    db_after = db_counters(db("postgres"))
    load_ended = time.time()
    # The load's windows only: the sampler stops with wrk, and one last read closes the
    # last window.
    load_done.set()
    tail_thread.join()
    try:
        histograms.append((time.time(), create_histogram(args.gateway)))
    except OSError:
        pass
    windows = slow_windows(histograms)
    ended_db = psql(db("patient_service"), "SELECT now()")
    window = f"created_at BETWEEN '{started_db}' AND '{ended_db}'"
    created = int(psql(db("patient_service"), f"SELECT count(*) FROM patients WHERE {window}"))
    events_sql = f"SELECT count(*) FROM patient_events WHERE event_type = 'PATIENT_CREATED' " \
              f"AND occurred_at BETWEEN '{started_db}' AND '{ended_db}'"
    drained_after = None
    while time.time() - load_ended < 180:
        if int(psql(db("analytics_service"), events_sql)) >= created:
            drained_after = time.time() - load_ended
            break
        time.sleep(0.5)
    stop.set()
    thread.join()
    delays = sorted(float(x) for x in psql(db("analytics_service"),
        "SELECT extract(epoch FROM received_at - occurred_at) FROM patient_events "
        f"WHERE event_type = 'PATIENT_CREATED' AND occurred_at BETWEEN '{started_db}' AND '{ended_db}'").split())

    # pgbench: one create's commit at the same concurrency, on the same Postgres.
    bench_db = db("pgbench_create")
    psql(db("postgres"), "DROP DATABASE IF EXISTS pgbench_create")
    psql(db("postgres"), "CREATE DATABASE pgbench_create")
    for migration in sorted((REPO / "services/patient-service/migrations").glob("*.sql")):
        subprocess.run(["psql", "-q", bench_db, "-f", str(migration)], check=True, capture_output=True)
    pgbench = subprocess.run(
        ["pgbench", "-n", "-f", str(REPO / "bench/pgbench-create.sql"), "-c", str(args.clients), "-j", "2",
         "-T", "20", bench_db], check=True, capture_output=True, text=True).stdout
    psql(db("postgres"), "DROP DATABASE pgbench_create")
    tps = float(re.search(r"^tps = ([\d.]+)", pgbench, re.M).group(1))

    text = wrk.stdout
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    socket_errors = re.search(r"Socket errors: (.*)$", text, re.M)
    cpu = {name: (after.get(name, 0) - before.get(name, 0)) / HZ for name in after}
    backlog = {}
    for _, sample, _ in samples:
        for destination, values in sample.items():
            peak = backlog.setdefault(destination, {"pending": 0.0, "age": 0.0})
            peak["pending"] = max(peak["pending"], values.get("outbox_pending", 0.0))
            peak["age"] = max(peak["age"], values.get("outbox_oldest_pending_age_seconds", 0.0))
    result = {
        "seconds": args.seconds, "clients": args.clients, "requests": requests, "created": created,
        "creates_per_s": requests / args.seconds, "non_2xx": non_2xx,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
        "latency_ms": {p: wrk_latency(text, p) for p in ("50", "90", "99")},
        "cpu_s": cpu, "cpu_ms_per_create": {k: v / max(created, 1) * 1000 for k, v in cpu.items()},
        "delay_s": {"p50": percentile(delays, 0.5), "p99": percentile(delays, 0.99),
                    "max": delays[-1] if delays else None, "events": len(delays)},
        "drained_after_s": drained_after, "outbox_peak": backlog, "pgbench_tps": tps,
        "hold_s": [hold for _, _, hold in samples if hold is not None],
        "windows": windows,
        "per_create": {k: (db_after[k] - db_before[k]) / max(created, 1) for k in db_after},
    }
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    print(markdown(result))


def slow_lines(windows):
    if not windows:
        return "When the slow creates happened: the gateway's histogram was not read."
    worst64 = max(windows, key=lambda w: w[3])
    worst128 = max(windows, key=lambda w: w[4])
    stalled = sum(1 for w in windows if w[3] > 0.02)
    return (
        f"When the slow creates happened (the gateway's histogram, {len(windows)} half-second windows): "
        f"{stalled} windows had more than 2% of their creates over 64 ms; the most over 64 ms in one window "
        f"{100 * worst64[3]:.1f}% (at {worst64[0]:.1f} s), over 128 ms {100 * worst128[4]:.1f}% "
        f"(at {worst128[0]:.1f} s); over 32 ms {100 * min(w[2] for w in windows):.1f}–"
        f"{100 * max(w[2] for w in windows):.1f}% per window."
    )


def markdown(r):
    lat = r["latency_ms"]
    total_cpu = sum(r["cpu_ms_per_create"].values())
    delay = r["delay_s"]
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    lines = [
        f"Sustained creates through the gateway: {r['clients']} connections for {r['seconds']} s (wrk).",
        "",
        "| creates/s | p50 | p90 | p99 | non-2xx | pgbench tps (one create's commit) | creates/s ÷ pgbench |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['creates_per_s']:,.0f} | {fmt(lat['50'], '.1f')} ms | {fmt(lat['90'], '.1f')} ms | "
        f"{fmt(lat['99'], '.1f')} ms | {r['non_2xx']} | {r['pgbench_tps']:,.0f} | "
        f"{r['creates_per_s'] / r['pgbench_tps']:.2f} |",
        "",
        f"Event pipeline: create → analytics delay of the run's {delay['events']:,} events: "
        f"p50 {fmt(delay['p50'], '.3f')} s, p99 {fmt(delay['p99'], '.3f')} s, max {fmt(delay['max'], '.3f')} s; "
        f"everything stored {fmt(r['drained_after_s'], '.1f')} s after the load stopped. Outbox peak during the run: "
        + ", ".join(f"{d} {v['pending']:,.0f} pending (oldest {v['age']:.1f} s)" for d, v in sorted(r["outbox_peak"].items()))
        + ".",
        "",
        "Backpressure (the hold of each create, sampled each second): "
        + (f"mean {1000 * sum(r['hold_s']) / len(r['hold_s']):.1f} ms, max {1000 * max(r['hold_s']):.1f} ms, "
           f"held in {sum(1 for h in r['hold_s'] if h > 0)} of {len(r['hold_s'])} samples."
           if r["hold_s"] else "not reported."),
        "",
        slow_lines(r.get("windows", [])),
        "",
        f"Postgres per create (whole cluster, every service): {r['per_create']['commits']:.2f} commits, "
        f"{r['per_create']['wal_bytes']:,.0f} bytes of WAL.",
        "",
        f"CPU per create (ms, all processes over the run): {total_cpu:.2f} in all — "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(r["cpu_ms_per_create"].items(), key=lambda kv: -kv[1])),
    ]
    if r["socket_errors"]:
        lines.append(f"\nwrk socket errors: {r['socket_errors']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
