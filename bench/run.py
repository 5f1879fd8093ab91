"""Run every benchmark, one after the other, and print their figures with their baselines.

Run: python bench/run.py [--quick]

Each benchmark measures its baseline and candidate side by side in its own run (the machines
are noisy), so their figures are ratios and medians; running them one after the other keeps
them from competing for the two cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHES = {
    "core (issue 2: session size, clocks, happens-before, throughput)": (
        ["bench_core.py"], ["bench_core.py", "--records", "100000", "--nodes", "200"]),
    "dense mesh (issue 17: the 1M 1,000-node gossip mesh, bytes vs OTLP and read + index RSS, with and without clock references)": (
        ["bench_mesh.py"], ["bench_mesh.py", "--records", "100000"]),
    "replay from a cut (issue 17: the last minute of a one-hour session vs the full replay)": (
        ["bench_cut.py"], ["bench_cut.py", "--minutes", "10", "--repeats", "1"]),
    "live path (issue 3: record cost vs OTel, hub ingest)": (
        ["bench_live.py"], ["bench_live.py", "--steps", "10000", "--repeats", "3", "--records", "100000"]),
    "reader and index (issue 17: read + CRC + causal index records/s vs the msgspec decode ceiling)": (
        ["bench_read.py"], ["bench_read.py", "--records", "100000", "--repeats", "2"]),
    "record cost (issue 17: the whole step path, ctx.log to spool, vs the OTel SDK)": (
        ["bench_record.py"], ["bench_record.py", "--steps", "5000", "--repeats", "3"]),
    "replay (issue 4: virtual-time speed, overhead vs model+rule time)": (
        ["bench_replay.py"], ["bench_replay.py", "--repeats", "3", "--virtual", "1200"]),
    "explorer (issues 6, 15: first screen, full scan, memory, filters at 1M and 10M spans)": (
        ["bench_explore.py"], ["bench_explore.py", "--records", "100000"]),
    "causal cuts (issue 13: the cut of one finding in a 1M-record session)": (
        ["bench_why.py"], ["bench_why.py", "--records", "100000", "--nodes", "200"]),
    "sweeps (issue 17: seeds/s with and without the inference memo, process pool vs Ray)": (
        ["bench_sweep.py"], ["bench_sweep.py", "--seeds", "60", "--baseline-seeds", "10"]),
    "determinism (issue 12: 1,000 same-seed double replays under a probabilistic plan)": (
        ["bench_determinism.py"], ["bench_determinism.py", "--seeds", "10"]),
    "hardening (issue 14: hub RSS and fds under strangers, TLS vs plain TCP ingest)": (
        ["bench_harden.py"], ["bench_harden.py", "--connections", "50", "--attempts", "500", "--spans", "2000",
                              "--repeats", "2"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs: a smoke run, not the quoted figures")
    parser.add_argument("--only", help="run benchmarks whose title contains this word")
    args = parser.parse_args()
    failed = 0
    for title, (full, quick) in BENCHES.items():
        if args.only and args.only not in title:
            continue
        print(f"\n== {title}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, *(quick if args.quick else full)], cwd=HERE)
        print(f"   ({time.perf_counter() - t0:.0f} s{'' if code == 0 else f', exit {code}'})", flush=True)
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
