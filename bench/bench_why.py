"""Causal cuts at fleet scale (issue 13): the cut of one finding in a 1M-record session.

A synthetic 1,000-node fleet (bench/_synth.py: regions of tractors calling their gateway,
gateways syncing with the centre; handler program order as the runtime records it) of 1M
records. Measured: building the session's causal index (the baseline every causal question
pays once), the one-time lookups the cuts add on top, and the cut of one finding — a state
reply late in the session, whose cut walks program order, messages and the last writes of the
key it wrote, across nodes — median over 20 findings. Goal: ≤ 50 ms per cut.

Run: python bench/bench_why.py [--records 1000000] [--nodes 1000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _synth import synth_spans

from edgetrace._index import CausalIndex
from edgetrace._records import SpanKind
from edgetrace._why import Why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--nodes", type=int, default=1000)
    args = parser.parse_args()
    spans = list(synth_spans(args.records, args.nodes, seed=1, parents=True))
    t0 = time.perf_counter()
    index = CausalIndex(spans)
    t_index = time.perf_counter() - t0
    why = Why(spans, index)
    gc.collect()
    gc.freeze()  # a million spans are long-lived: keep the collector's full passes out of the timings
    findings = [s for s in spans[-200_000:] if s.kind is SpanKind.RECV][-20:]
    t0 = time.perf_counter()
    why.cut(findings[0])  # the first cut builds the per-node streams and per-key writes once
    t_first = time.perf_counter() - t0
    times, sizes = [], []
    for f in findings[1:]:
        t0 = time.perf_counter()
        cut = why.cut(f)
        times.append(time.perf_counter() - t0)
        sizes.append(len(cut))
    past = len(index.causal_past(findings[-1]))
    print(f"causal cut of one finding   {args.records:,} records, {args.nodes:,} nodes")
    print(f"  causal index build (base) {t_index:.2f} s")
    print(f"  first cut (+ lookups)     {t_first:.2f} s, once per session")
    print(f"  cut of one finding        median {statistics.median(times) * 1e3:.1f} ms "
          f"(max {max(times) * 1e3:.1f} ms; goal ≤ 50 ms); median {statistics.median(sizes):.0f} steps "
          f"of a causal past of {past:,}")


if __name__ == "__main__":
    main()
