"""The reader and the causal index (issue 17, item 1): read + CRC + index records/s, side by side.

A synthetic session (bench/_synth.py, the 1,000-node fleet by default) is written once, then
read with `Session` and indexed (`Session.index`), several times. Printed, all from this run:

- read (scan + CRC + inflate + decode) and index build, records/s, medians;
- the msgspec decode ceiling of the same frames: their bodies inflated beforehand, decoded
  typed (`decode_spans`, what every reader must do to validate) and untyped;
- `happens_before` on random pairs of refs, median µs per query;
- with `--baseline DIR` (a checkout before the change, e.g. `git worktree add --detach DIR main`):
  the same read and index with DIR's `_session.py` and `_index.py`, loaded into this process
  and run interleaved with the candidate, so both see the same machine.

- with `--sealed`: the session is sealed and compacted as `edgetrace record` leaves it — the
  candidate reads it compacted with clock references (format 3), the baseline (if given) and
  a second candidate row read it compacted without them, as the previous compaction wrote.

Run: python bench/bench_read.py [--records 1000000] [--nodes 1000] [--repeats 3] [--baseline DIR] [--sealed]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec
from _synth import synth_spans

from edgetrace import Manifest, Session, SessionWriter
from edgetrace._codec import decode_spans
from edgetrace._compact import compact
from edgetrace._frames import Frame, FrameType, scan_frames


def load(checkout: Path, module: str) -> ModuleType:
    """`edgetrace.<module>` as `checkout` has it, under another name (its imports resolve here)."""
    spec = importlib.util.spec_from_file_location(f"_baseline{module}", checkout / "edgetrace" / f"{module}.py")
    assert spec is not None and spec.loader is not None
    found = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(found)
    return found


def ceiling(path: Path) -> dict[str, float]:
    frames = [f for f in scan_frames(open(path, "rb"), 16, path=path)
              if isinstance(f, Frame) and f.type is FrameType.RECORDS]
    t0 = time.perf_counter()
    bodies = [f.body() for f in frames]
    inflate = time.perf_counter() - t0
    found = {"inflate_s": inflate}
    for name, decode in (("typed", decode_spans), ("untyped", msgspec.msgpack.Decoder().decode)):
        t0 = time.perf_counter()
        n = sum(len(decode(b)) for b in bodies)
        found[name] = n / (time.perf_counter() - t0)
        gc.collect()
    found["bytes"] = sum(map(len, bodies)) / n
    return found


def hb_us(index: Any, pairs: list[tuple[str, str]]) -> float:
    hb = index.happens_before
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for a, b in pairs:
            hb(a, b)
        runs.append((time.perf_counter() - t0) / len(pairs) * 1e6)
    return statistics.median(runs)


def one(read: Any, build: Any, path: Path, pairs: list[tuple[str, str]] | None) -> dict[str, float]:
    gc.collect()
    t0 = time.perf_counter()
    session = read(path)
    t1 = time.perf_counter()
    index = build(session)
    t2 = time.perf_counter()
    found = {"read": t1 - t0, "index": t2 - t1, "n": len(session)}
    if pairs is not None:
        found["hb"] = hb_us(index, pairs)
    del session, index
    gc.collect()
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--topology", choices=["fleet", "mesh"], default="fleet")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="a checkout whose reader and index to run side by side")
    ap.add_argument("--sealed", action="store_true", help="read the session sealed and compacted, as record leaves it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.ets"
        plain = Path(tmp) / "plain.ets"
        spans = list(synth_spans(args.records, args.nodes, seed=7, topology=args.topology))
        with SessionWriter(path, Manifest(app="bench", nodes=[])) as w:
            for i in range(0, len(spans), 1000):
                w.append(spans[i : i + 1000])
            if args.sealed:
                w.seal()
        if args.sealed:
            shutil.copy(path, plain)
            compact(path)
            compact(plain, references=False)
        candidates: dict[str, tuple[Any, Any, Path]] = {"this checkout": (Session, lambda s: s.index, path)}
        if args.sealed:
            candidates["this checkout, compacted without references"] = (Session, lambda s: s.index, plain)
        if args.baseline:
            old_index, old_session = load(args.baseline, "_index"), load(args.baseline, "_session")
            candidates[f"baseline {args.baseline}"] = (old_session.Session,
                                                       lambda s: old_index.CausalIndex(s.spans),
                                                       plain if args.sealed else path)
        rng = random.Random(3)
        pairs = [(rng.choice(spans).ref, rng.choice(spans).ref) for _ in range(20000)]
        del spans
        gc.collect()
        how = ("compacted with references (zstd)" if args.sealed else "zlib 1, as the hub writes")
        print(f"== {args.topology}: {args.records:,} records, {args.nodes:,} nodes, "
              f"{path.stat().st_size / args.records:.1f} B/record on disk ({how})"
              + (f"; {plain.stat().st_size / args.records:.1f} B/record compacted without" if args.sealed else ""))
        top = ceiling(path)
        print(f"msgspec decode ceiling of the same frames ({top['bytes']:.0f} B/record inflated): typed "
              f"{top['typed']:,.0f} records/s, untyped {top['untyped']:,.0f} records/s; "
              f"inflating them {args.records / top['inflate_s']:,.0f} records/s (one thread)")
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in candidates}
        for r in range(args.repeats):  # interleaved: both see the same machine noise
            for name, (read, build, where) in candidates.items():
                runs[name].append(one(read, build, where, pairs if r == 0 else None))
        for name, found in runs.items():
            read = statistics.median(f["read"] for f in found)
            index = statistics.median(f["index"] for f in found)
            total = read + index
            print(f"{name}: read + CRC {args.records / read:,.0f} records/s ({read:.2f} s), index "
                  f"{args.records / index:,.0f} records/s ({index:.2f} s) → read + index "
                  f"{args.records / total:,.0f} records/s ({total:.2f} s; {total / args.records * 1e6 * top['typed'] / 1e6:.2f}× "
                  f"the typed decode ceiling's time); happens_before median {found[0]['hb']:.2f} µs "
                  f"(goals ≥ 500k records/s, ≤ 1 µs)")
        if args.baseline:
            new, old = runs["this checkout"], runs[f"baseline {args.baseline}"]
            ratio = statistics.median((o["read"] + o["index"]) / (n["read"] + n["index"]) for n, o in zip(new, old, strict=True))
            print(f"read + index: this checkout {ratio:.2f}× as fast as the baseline (median of {args.repeats} "
                  f"interleaved pairs); happens_before {old[0]['hb'] / new[0]['hb']:.2f}×")


if __name__ == "__main__":
    main()
