"""Explorer responsiveness on synthetic sessions of 1M and 10M spans, against a baseline.

For each session size, in fresh processes, for the code under test and for a baseline
checkout side by side (`--baseline DIR`, e.g. `git worktree add --detach /tmp/base-explorer
BASE`; its code runs with PYTHONPATH=DIR), it measures what a user waits for:

- process start → first rendered trace-list screen (goal ≤ 1 s);
- process start → whole file scanned by the background reader (goal ≤ 2 s at 1M), and the
  same scan with no UI at all (`TraceStore.scan()` in a bare process);
- peak RSS once the whole file is scanned (goal ≤ 500 MB at 10M);
- keystroke → repaint while scrolling the scanned session (j, page down, G);
- at 1M, each filter's time on the fully scanned session (goal ≤ 1 s), up to `--filter-timeout`.

The sessions are the `fleet` topology of bench/_synth.py (1,000 nodes), generated once into
--cache (10M takes a while), in two forms: live, as the hub writes it (zlib frames, every
record's delta clock), and compacted, as `edgetrace record` leaves it (zstd, receive clocks by
reference) — up to --compact-up-to spans, since compacting 10M takes long. Each checkout reads
the session its own compaction wrote, so a change of codec or frame size is measured as a user
would meet it. Prints a table;
--json writes every figure.

    python bench/bench_explore.py [--records 1000000,10000000] [--baseline /tmp/base-explorer]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

FILTERS = ["kind=act", "node~node-000*", "duration>1ms", "weed", "decision=hold",
           "kind=act without after(kind=decide)", "after(kind=state.put)", "spans>2"]

# Runs in the child, with either checkout on PYTHONPATH: only API both versions have.
CHILD = r"""
import asyncio, json, resource, sys, time
T0 = float(sys.argv[2])
FILTERS = json.loads(sys.argv[3])
FILTER_TIMEOUT = float(sys.argv[4])
from edgetrace.tui._app import ExplorerApp

async def main():
    app = ExplorerApp(sys.argv[1])
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        out["first_screen_s"] = time.time() - T0
        out["rows_at_first_screen"] = len(app.store.rows)
        out["rss_first_screen_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        while not app.store.at_end:
            await pilot.pause(0.02)
        out["full_scan_s"] = time.time() - T0
        out["traces"] = len(app.store.rows)
        out["spans"] = app.store.span_count
        await pilot.pause(0.5)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lat = {}  # after the scan: keystrokes timed meanwhile would hold up the scan's figure
        for key in ("j", "pagedown", "G", "g"):
            times = []
            for _ in range(10):
                t = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                times.append((time.perf_counter() - t) * 1e3)
            lat[key] = times
        out["latency_ms"] = lat
        screen = app.screen
        filters = {}
        for text in FILTERS:
            t = time.perf_counter()
            screen.apply_filter(text)
            while "match" not in screen.filter_note and time.perf_counter() - t < FILTER_TIMEOUT:
                await pilot.pause(0.02)
            took = time.perf_counter() - t
            filters[text] = {"s": took, "done": "match" in screen.filter_note, "traces": screen.traces.count}
            screen.apply_filter("")
            await pilot.pause()
        out["filters"] = filters
    out["peak_rss_end_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))

asyncio.run(main())
"""

BARE = r"""
import json, resource, sys, time
t = time.perf_counter()
from edgetrace.tui._store import TraceStore
store = TraceStore(sys.argv[1])
store.scan()
out = {"bare_scan_s": time.perf_counter() - t, "spans": store.span_count,
       "bare_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print(json.dumps(out))
"""


def make_session(path: Path, records: int, nodes: int) -> None:
    sys.path.insert(0, str(HERE))
    from _synth import synth_spans

    from edgetrace import Manifest, SessionWriter

    tmp = path.with_name(path.name + ".tmp")
    with SessionWriter(tmp, Manifest(app="bench", nodes=[])) as w:
        batch = []
        for span in synth_spans(records, nodes, seed=7, topology="fleet"):
            batch.append(span)
            if len(batch) == 1000:
                w.append(batch)
                batch = []
        w.append(batch)
        w.seal()
    os.replace(tmp, path)


def _compacted(path: Path, checkout: Path) -> Path:
    """`path` compacted by `checkout`'s own code (cached under a digest of that code): a change
    of codec or frame size is measured as its users would meet it."""
    code = b"".join((checkout / "edgetrace" / f).read_bytes() for f in ("_compact.py", "_frames.py", "_clockref.py"))
    out = path.with_name(f"{path.stem}-compacted-{hashlib.sha256(code).hexdigest()[:10]}.ets")
    if not out.exists():
        # in a process of its own: a child's peak RSS on Linux starts from its parent's at the
        # fork, so compacting here would inflate every RSS figure measured after it
        t = time.perf_counter()
        tmp = out.with_suffix(".tmp")
        subprocess.run([sys.executable, "-c", "import sys; from edgetrace._compact import compact; "
                        "compact(sys.argv[1], out=sys.argv[2])", str(path), str(tmp)],
                       check=True, env={**os.environ, "PYTHONPATH": str(checkout)},
                       cwd=tempfile.gettempdir())  # not here: `-c` puts the cwd first on sys.path
        os.replace(tmp, out)
        print(f"compacted {out} with {checkout} in {time.perf_counter() - t:.0f} s")
    return out


def _run(code: str, args: list[str], pythonpath: Path, timeout: float) -> dict[str, object]:
    env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(pythonpath)}
    try:
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              cwd=tempfile.gettempdir(), env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure(path: Path, pythonpath: Path, *, filters: list[str], filter_timeout: float,
            timeout: float) -> dict[str, object]:
    bare = _run(BARE, [str(path)], pythonpath, timeout)
    t0 = time.time()
    app = _run(CHILD, [str(path), repr(t0), json.dumps(filters), str(filter_timeout)], pythonpath, timeout)
    return {**bare, **app}


def _median_of(results: list[dict[str, object]]) -> dict[str, object]:
    """One run's figures from several: the median of each number (keystroke samples pooled,
    each filter's time the median, done only if every run finished it); `runs` says how many."""
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[0]
    out: dict[str, object] = {**ok[0], "runs": len(ok)}
    for key, value in ok[0].items():
        if isinstance(value, float):
            out[key] = statistics.median(float(r[key]) for r in ok if isinstance(r.get(key), (int, float)))
    lat = [r.get("latency_ms") for r in ok]
    if all(isinstance(x, dict) for x in lat):
        out["latency_ms"] = {k: [v for x in lat for v in x[k]] for k in lat[0]}  # type: ignore[union-attr]
    flt = [r.get("filters") for r in ok]
    if all(isinstance(x, dict) for x in flt) and flt[0]:
        out["filters"] = {text: {"s": statistics.median(x[text]["s"] for x in flt),  # type: ignore[index]
                                 "done": all(x[text]["done"] for x in flt),  # type: ignore[index]
                                 "traces": flt[0][text]["traces"]} for text in flt[0]}  # type: ignore[index]
    return out


def _ratio(*values: object) -> str:
    """baseline ÷ this checkout, when both figures exist (a lower bound when the baseline timed out)."""
    if len(values) != 2 or not all(isinstance(v, (int, float)) and v for v in values):
        return ""
    base, this = values
    return f"{float(base) / float(this):>15.1f}×"  # type: ignore[arg-type]


def _fmt(value: object, unit: str = "s") -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:.2f} {unit}" if unit == "s" else f"{value:.0f} {unit}"


def report(size: int, runs: dict[str, dict[str, object]], form: str = "live") -> None:
    names = list(runs)
    print(f"\n{size:,} spans ({form}), median of {runs[names[-1]].get('runs', 1)} run(s) — " + "  vs  ".join(f"{n}: {runs[n].get('traces', '?'):,} traces" if isinstance(
        runs[n].get("traces"), int) else f"{n}: {runs[n].get('error', '?')}" for n in names))
    rows = [
        ("first rendered screen (goal ≤ 1 s)", "first_screen_s", "s"),
        ("whole file scanned, in the app (goal ≤ 2 s at 1M)", "full_scan_s", "s"),
        ("whole file scanned, no UI", "bare_scan_s", "s"),
        ("RSS at the first screen", "rss_first_screen_mb", "MB"),
        ("peak RSS, whole file scanned (goal ≤ 500 MB at 10M)", "peak_rss_mb", "MB"),
        ("peak RSS, no UI", "bare_rss_mb", "MB"),
    ]
    width = max(len(r[0]) for r in rows) + 2
    print(" " * width + "".join(f"{n:>16}" for n in names) + ("   baseline/this" if len(names) == 2 else ""))
    for label, key, unit in rows:
        print(f"{label:<{width}}" + "".join(f"{_fmt(runs[n].get(key), unit):>16}" for n in names)
              + _ratio(*(runs[n].get(key) for n in names)))
    for key in ("j", "pagedown", "G"):
        cells = []
        for n in names:
            lat = runs[n].get("latency_ms")
            values = lat.get(key) if isinstance(lat, dict) else None
            cells.append(f"{statistics.median(values):.0f} ms" if values else "-")
        print(f"{'keystroke → repaint ' + repr(key) + ' (median)':<{width}}" + "".join(f"{c:>16}" for c in cells))
    filters = {n: runs[n].get("filters") for n in names}
    if any(isinstance(f, dict) and f for f in filters.values()):
        print("filters on the scanned session (goal ≤ 1 s):")
        for text in FILTERS:
            cells = []
            for n in names:
                f = filters[n]
                one = f.get(text) if isinstance(f, dict) else None
                if not isinstance(one, dict):
                    cells.append("-")
                elif not one.get("done"):
                    cells.append(f"> {one['s']:.0f} s")
                else:
                    cells.append(f"{one['s']:.2f} s")
            secs = [f[text]["s"] if isinstance(f, dict) and isinstance(f.get(text), dict) else None  # type: ignore[index]
                    for f in filters.values()]
            print(f"  {text:<{width - 2}}" + "".join(f"{c:>16}" for c in cells) + _ratio(*secs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", default="1000000,10000000", help="session sizes, comma-separated")
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--baseline", type=Path, default=Path("/tmp/base-explorer"),
                    help="a checkout of the code to compare with (skipped if missing)")
    ap.add_argument("--filter-timeout", type=float, default=60.0, help="give up on one filter after this long")
    ap.add_argument("--filters-up-to", type=int, default=2_000_000, help="time filters on sessions up to this size")
    ap.add_argument("--timeout", type=float, default=1800.0, help="give up on one run after this long")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "edgetrace-bench")
    ap.add_argument("--repeats", type=int, default=1, help="runs per checkout and size; figures are medians")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--compact-up-to", type=int, default=2_000_000,
                    help="also measure the compacted form of sessions up to this size")
    args = ap.parse_args()
    checkouts = {"this checkout": ROOT}
    if args.baseline and (args.baseline / "edgetrace").is_dir():
        checkouts = {"baseline": args.baseline.resolve(), **checkouts}
    else:
        print(f"no baseline at {args.baseline}: measuring this checkout only")
    args.cache.mkdir(parents=True, exist_ok=True)
    everything: dict[str, dict[str, dict[str, object]]] = {}
    for size in (int(s) for s in args.records.split(",")):
        path = args.cache / f"explore-{size}-{args.nodes}.ets"
        if not path.exists():
            t = time.perf_counter()
            make_session(path, size, args.nodes)
            print(f"generated {path} in {time.perf_counter() - t:.0f} s")
        forms: dict[str, dict[str, Path]] = {"live": dict.fromkeys(checkouts, path)}
        if size <= args.compact_up_to:  # each checkout reads what its own compaction writes
            forms["compacted"] = {name: _compacted(path, where) for name, where in checkouts.items()}
        filters = FILTERS if size <= args.filters_up_to else []
        for form, sessions in forms.items():
            for name, session in sessions.items():
                print(f"session {session} ({form}, {name}): {session.stat().st_size / 1e6:.1f} MB", flush=True)
            raw: dict[str, list[dict[str, object]]] = {name: [] for name in checkouts}
            for _ in range(args.repeats):  # interleaved: drift on a shared machine hits both alike
                for name, where in checkouts.items():
                    raw[name].append(measure(sessions[name], where, filters=filters,
                                             filter_timeout=args.filter_timeout, timeout=args.timeout))
            runs = {name: _median_of(results) for name, results in raw.items()}
            everything[f"{size} {form}"] = runs
            report(size, runs, form)
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
