"""Replay from a consistent cut vs the full replay (issue 17, item 7), in one run.

A long recording of the agri fleet (ONNX extractor, Rego policy, state on the hub) made on the
simulated grid with state snapshots every 10 s, then, alternately and `--repeats` times each:
the full replay, and the replay from the latest cut at or before `--from-end` before the end.
Both are timed end to end as `edgetrace replay` runs them — open the session, index it, build the
recording, replay, compare, report — and both must reproduce the recording (fidelity 100 %).

Run: python bench/bench_cut.py [--minutes 60] [--tractors 2] [--repeats 3] [--from-end 60s]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from edgetrace import _attrs as attr
from edgetrace._snapshot import is_snapshot
from edgetrace._units import parse_duration
from edgetrace.replay import Replayer
from edgetrace.replay._cuts import at_text
from edgetrace.replay.testing import GridHarness

S = 1_000_000_000


def record(folder: Path, minutes: float, tractors: int, snapshot_every: str = "10s") -> tuple[Path, float]:
    from edgetrace.scenarios.agri import scenario as agri

    grid = GridHarness(agri.app, agri.nodes(tractors), profile=agri.SCENARIO.profiles["good"], seed=1,
                       snapshot_every=snapshot_every)
    grid.inputs(agri.inputs(seed=1, size=tractors, duration_s=minutes * 60))
    t0 = time.perf_counter()
    run = grid.run(until=f"{minutes * 60 + 30}s")
    wall = time.perf_counter() - t0
    return run.save(folder / f"agri-long-{snapshot_every}.ets"), wall


def timed(session: Path, start: str | None) -> tuple[float, int, float, str]:
    from edgetrace.scenarios.agri import scenario as agri

    t0 = time.perf_counter()
    replayer = Replayer(session, app=agri.app)
    report, _ = replayer.run(start=start)
    wall = time.perf_counter() - t0
    assert report.fidelity == 1.0 and not report.divergences, (start, report.fidelity)
    return wall, report.steps_replayed, report.fidelity, report.cut["id"] if report.cut else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="virtual minutes of recording")
    parser.add_argument("--tractors", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--from-end", default="60s", help="replay from the latest cut this long before the end")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        session, record_wall = record(Path(tmp), args.minutes, args.tractors)
        from edgetrace._session import Session

        opened = Session.open(session)
        snapshots = [s for s in opened.spans if is_snapshot(s)]
        end = max(s.end for s in opened.spans)
        target = at_text(max(0, end - parse_duration(args.from_end)))
        size = session.stat().st_size
        state = sum(int(s.attrs.get(attr.SNAPSHOT_BYTES, 0)) for s in snapshots)
        print(f"recording             {args.minutes:g} virtual min, {args.tractors} tractors + hub: "
              f"{len(opened.spans):,} records ({len(snapshots):,} snapshots), {size / 1e6:.1f} MB compacted, "
              f"recorded in {record_wall:.1f} s")
        print(f"snapshot state        {state / 1e6:.1f} MB before compression and dedup (its blobs are "
              f"content-addressed: an unchanged rng or state is stored once)")
        plain, plain_wall = record(Path(tmp), args.minutes, args.tractors, "0s")
        plain_size = plain.stat().st_size
        plain_records = len(Session.open(plain).spans)
        print(f"same run, no snapshots {plain_records:,} records, {plain_size / 1e6:.1f} MB compacted, recorded in "
              f"{plain_wall:.1f} s → snapshots cost {size / plain_size:.2f}× the bytes, "
              f"{len(opened.spans) / plain_records:.2f}× the records, {record_wall / plain_wall:.2f}× the recording time")
        full: list[float] = []
        cut: list[float] = []
        steps = (0, 0)
        which = ""
        for _ in range(args.repeats):  # alternate, so both see the same machine
            wall, n_full, _, _ = timed(session, None)
            full.append(wall)
            wall, n_cut, _, which = timed(session, target)
            cut.append(wall)
            steps = (n_full, n_cut)
        f, c = statistics.median(full), statistics.median(cut)
        print(f"full replay           {f:.2f} s  ({steps[0]:,} steps, median of {args.repeats})")
        print(f"replay --from {target:<8} {c:.2f} s  (cut {which}: {steps[1]:,} steps after it, "
              f"median of {args.repeats})")
        print(f"ratio                 {f / c:.1f}× faster from the cut; both at fidelity 100 %")


if __name__ == "__main__":
    main()
