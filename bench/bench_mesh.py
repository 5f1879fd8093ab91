"""Dense meshes: bytes and memory of a session whose receives are stored by reference.

The random 1,000-node gossip mesh is the worst case for vector clocks: its receives carry
hundreds of changed entries each (≈ 100M entries in 1M records). This benchmark streams the
records to a live session (never holding them: the spans with their clock dicts alone would
not fit), seals it, and compacts two copies side by side — the baseline without references
(the previous compaction) and with them — then opens each in a fresh process and reports
the peak RSS and the time of read + causal index, and the happens_before median.

    python bench/bench_mesh.py --records 1000000 --nodes 1000

The baseline copy is opened only up to `--baseline-limit` records (default 200k): at 1M
records it needs ≈ 10 GB of clock dicts, over the issue's 4 GB budget by construction.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _synth import synth_spans
from bench_core import otlp_bytes_per_span

from edgetrace._compact import compact
from edgetrace._records import Manifest
from edgetrace._session import SessionWriter

# Run in a fresh process, so that its peak RSS is the read and the index alone (argv[2]: bench/).
_CHILD = """
import random, resource, sys, time
from edgetrace import Session
t0 = time.perf_counter()
session = Session(sys.argv[1])
read = time.perf_counter() - t0
t0 = time.perf_counter()
index = session.index
build = time.perf_counter() - t0
rng = random.Random(3)
spans = session.spans
refs = [(rng.choice(spans).ref, rng.choice(spans).ref) for _ in range(20000)]
sys.path.insert(0, sys.argv[2])
from bench_read import hb_us  # imported after the index is built: its imports are not the index's
print(len(spans), read, build, hb_us(index, refs), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def open_fresh(path: Path) -> tuple[int, float, float, float, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(Path(__file__).resolve().parent)],
                         capture_output=True, text=True, check=True)
    n, read, build, hb, rss = out.stdout.split()
    return int(n), float(read), float(build), float(hb), int(rss) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--topology", choices=["mesh", "fleet"], default="mesh")
    ap.add_argument("--baseline-limit", type=int, default=200_000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        live = Path(tmp) / "live.ets"
        sample = []
        entries = 0
        t0 = time.perf_counter()
        batch = []
        with SessionWriter(live, Manifest(app="bench", session_id="mesh")) as w:
            for i, span in enumerate(synth_spans(args.records, args.nodes, seed=7, topology=args.topology)):
                entries += len(span.vc)
                if i % max(1, args.records // 20000) == 0:
                    sample.append(span)
                batch.append(span)
                if len(batch) == 1000:
                    w.append(batch)
                    batch = []
            if batch:
                w.append(batch)
            w.seal()
        print(f"== {args.topology}: {args.records:,} records, {args.nodes:,} nodes, {entries:,} clock entries "
              f"(generated and written live in {time.perf_counter() - t0:.1f} s)", flush=True)
        otlp = otlp_bytes_per_span(sample)
        plain, refs = Path(tmp) / "plain.ets", Path(tmp) / "refs.ets"
        shutil.copy(live, plain)
        shutil.copy(live, refs)
        t0 = time.perf_counter()
        compact(plain, references=False)
        plain_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        compact(refs)
        refs_s = time.perf_counter() - t0
        n = args.records
        live_b, plain_b, refs_b = (os.path.getsize(p) / n for p in (live, plain, refs))
        print(f"bytes/record: live {live_b:.1f} B ({live_b / otlp:.2f}× OTLP {otlp:.1f} B); compacted without "
              f"references {plain_b:.1f} B ({plain_b / otlp:.2f}×, {plain_s:.1f} s); with references "
              f"{refs_b:.1f} B ({refs_b / otlp:.2f}×, {refs_s:.1f} s) — goal ≤ 0.5× OTLP; "
              f"with/without {refs_b / plain_b:.2f}×", flush=True)
        runs = [("with references", refs)]
        if n <= args.baseline_limit:
            runs.append(("without references", plain))
        else:
            print(f"(the copy without references is not opened: {n:,} records > --baseline-limit)")
        for label, path in runs:
            count, read, build, hb, rss = open_fresh(path)
            assert count == n
            print(f"{label}: read {read:.2f} s + index {build:.2f} s = {n / (read + build):,.0f} records/s; "
                  f"peak RSS {rss:,.0f} MB (goal ≤ 4,096 MB at 1M); happens_before median {hb:.2f} µs", flush=True)


if __name__ == "__main__":
    main()
