#!/usr/bin/env python3
"""What share of the machine's CPU goes to issue 16's instrumentation (metrics and
traces), from a system-wide profile taken during a sustained run.

Reads `perf script -F comm,ip,sym` output (samples with call chains, recorded with
`perf record -a --call-graph dwarf`) on stdin. A sample is the instrumentation's when
any frame of its stack is in the metrics or tracing code: prometheus_client, the
OpenTelemetry crates, tracing-opentelemetry, and our own metrics, trace-context and
pool-wait modules. Allocation and hashing done on their behalf is counted with them
(the frames above it are theirs). Log lines (tracing-subscriber's fmt layer) existed
before issue 16 and are reported on their own. Prints, per process and in all, the
samples and the shares.
Usage: perf script -F comm,ip,sym -i perf.data | bench/instrumentation-share.py
"""

import re
import sys
from collections import Counter

INSTRUMENTATION = re.compile(
    r"prometheus_client|opentelemetry|tracing_opentelemetry|pulsetrack_common::metrics|"
    r"pulsetrack_common::trace_context|pulsetrack_common::pool_wait|analytics_service::consumer::store_span|"
    r"GrpcMetrics|billing_service::grpc::GrpcMetrics|ConsumerMetrics"
)
LOG_LINES = re.compile(r"tracing_subscriber::fmt")


def samples(lines):
    """(command, [frames]) per sample: a header line, then indented frames, then a blank."""
    comm, frames = None, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
        elif line[0].isspace():
            frames.append(line.strip())
        else:
            comm = line.split()[0]
    if comm is not None:
        yield comm, frames


def main():
    total, instrumented, logging = Counter(), Counter(), Counter()
    for comm, frames in samples(sys.stdin):
        # By thread name: the services' tokio workers all share one ("tokio-runtime-w").
        total[comm] += 1
        stack = " ".join(frames)
        if INSTRUMENTATION.search(stack):
            instrumented[comm] += 1
        elif LOG_LINES.search(stack):
            logging[comm] += 1
    all_samples = sum(total.values())
    print(f"{all_samples} samples in all")
    print(f"{'command':<20} {'samples':>8} {'instrumentation':>16} {'log lines':>10}")
    for comm, n in total.most_common(15):
        print(f"{comm:<20} {n:>8} {instrumented[comm]:>9} ({instrumented[comm] / n:5.1%}) {logging[comm]:>5}")
    share = sum(instrumented.values()) / max(all_samples, 1)
    print(f"instrumentation: {sum(instrumented.values())} samples, {share:.2%} of all the machine's samples")
    print(f"log lines: {sum(logging.values())} samples, {sum(logging.values()) / max(all_samples, 1):.2%}")


if __name__ == "__main__":
    main()
