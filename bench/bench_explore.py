"""Explorer responsiveness on a synthetic session of 1,000,000 spans.

Measures, in a fresh process each time (what a user waits for):
- time from process start to the first rendered trace-list screen, and peak RSS once the
  background scan has read the whole file (goal ≤ 1 s, ≤ 250 MB);
- keystroke-to-repaint latency while scrolling the trace list (j, page down, G).
Prints medians. The session is generated once and cached in --cache.

    python bench/bench_explore.py [--records 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Runs in the child: start the app headless, note when the first screen is painted,
# then drive keys and time each repaint.
CHILD = r"""
import asyncio, json, resource, sys, time
T0 = float(sys.argv[2])
from edgetrace.tui._app import ExplorerApp
from edgetrace.tui._trace_list import TraceList

async def main():
    app = ExplorerApp(sys.argv[1])
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        out["first_screen_s"] = time.time() - T0
        out["rows_at_first_screen"] = len(app.store.rows)
        lst = app.screen.query_one(TraceList)
        lat = {}
        # "f12" is bound to nothing: its time is Pilot's own overhead, subtract it mentally.
        for key in ("f12", "j", "pagedown", "G", "k", "g"):
            times = []
            for _ in range(15):
                t = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                times.append((time.perf_counter() - t) * 1e3)
            lat[key] = times
        out["latency_ms"] = lat
        t = time.perf_counter()
        while not app.store.at_end:
            await pilot.pause(0.05)
        out["full_scan_s"] = time.time() - T0
        out["traces"] = len(app.store.rows)
        out["spans"] = app.store.span_count
        await pilot.pause(0.3)
        t = time.perf_counter()
        await pilot.press("G")
        await pilot.pause()
        out["G_after_full_scan_ms"] = (time.perf_counter() - t) * 1e3
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))

asyncio.run(main())
"""


def make_session(path: Path, records: int, nodes: int) -> None:
    sys.path.insert(0, str(HERE))
    from _synth import synth_spans

    from edgetrace import Manifest, SessionWriter

    with SessionWriter(path, Manifest(app="bench", nodes=[])) as w:
        batch = []
        for span in synth_spans(records, nodes, seed=7, topology="fleet"):
            batch.append(span)
            if len(batch) == 1000:
                w.append(batch)
                batch = []
        w.append(batch)
        w.seal()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "edgetrace-bench")
    ap.add_argument("--session", type=Path, help="use this session instead of a synthetic one")
    args = ap.parse_args()
    path = args.session
    if path is None:
        args.cache.mkdir(parents=True, exist_ok=True)
        path = args.cache / f"explore-{args.records}-{args.nodes}.ets"
        if not path.exists():
            t = time.perf_counter()
            make_session(path, args.records, args.nodes)
            print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    print(f"session {path}: {path.stat().st_size / 1e6:.0f} MB")
    results = []
    for _ in range(args.runs):
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path), repr(t0)], capture_output=True,
                              text=True, cwd=tempfile.gettempdir(), env={**os.environ, "TERM": "xterm-256color"})
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = lambda xs: statistics.median(xs)  # noqa: E731
    r0 = results[0]
    print(f"spans {r0['spans']:,}  traces {r0['traces']:,}  runs {len(results)}")
    print(f"process start → first rendered screen: median {med([r['first_screen_s'] for r in results]):.2f} s "
          f"({r0['rows_at_first_screen']:,} traces on it; goal ≤ 1 s)")
    print(f"process start → whole file scanned (background): median "
          f"{med([r['full_scan_s'] for r in results]):.2f} s")
    print(f"peak RSS: median {med([r['peak_rss_mb'] for r in results]):.0f} MB (goal ≤ 250 MB)")
    for key in r0["latency_ms"]:
        allv = [v for r in results for v in r["latency_ms"][key]]
        print(f"keystroke → repaint '{key}'{' (unbound: Pilot overhead)' if key == 'f12' else ''}: median {med(allv):.1f} ms, max {max(allv):.1f} ms")
    print(f"'G' after the full scan: median {med([r['G_after_full_scan_ms'] for r in results]):.1f} ms")


if __name__ == "__main__":
    main()
