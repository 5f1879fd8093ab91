"""Determinism under load (issue 12): the same replay twice must give the same report, byte for byte.

The recorded agri session (tests/data/agri-demo.ets) is replayed under a probabilistic plan —
latency drawn from a distribution on a third of the state calls, random drops, a crash and a
restart of the hub — once per seed, twice: by two process pools started with different
PYTHONHASHSEED values, so dict and set order, process state and scheduling all differ between
the two runs of a seed. Each report's sha256 is compared. The figure is the number of seeds
whose two reports differ (goal: 0 of 1,000), plus the replay rate.

Run: python bench/bench_determinism.py [--seeds 1000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path

SESSION = Path(__file__).resolve().parents[1] / "tests" / "data" / "agri-demo.ets"
PLAN = ["latency(op=state.*, delay=uniform(0s,2s), p=0.3)", "drop(p=0.05)", "crash(node=hub, at=3s, restart=4s)"]
_REPLAYER = None


def _digest(seed: int) -> tuple[int, str, float, int]:
    global _REPLAYER
    from edgetrace.replay import Replayer, replay_session

    if _REPLAYER is None:
        _REPLAYER = Replayer(SESSION)
    started = time.perf_counter()
    report, _, _ = replay_session(SESSION, faults=PLAN, seed=seed, replayer=_REPLAYER)
    return seed, hashlib.sha256(report.to_json()).hexdigest(), time.perf_counter() - started, len(report.divergences)


def _pool_digests(seeds: list[int], jobs: int, hashseed: str) -> tuple[dict[int, str], list[float], list[int]]:
    os.environ["PYTHONHASHSEED"] = hashseed  # inherited by the spawned workers of this pool
    found: dict[int, str] = {}
    times: list[float] = []
    divergences: list[int] = []
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        for seed, digest, took, diverged in pool.map(_digest, seeds, chunksize=8):
            found[seed] = digest
            times.append(took)
            divergences.append(diverged)
    return found, times, divergences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    first, times_a, changed = _pool_digests(seeds, args.jobs, "1")
    second, times_b, _ = _pool_digests(seeds, args.jobs, "2")
    wall = time.perf_counter() - started
    mismatched = [s for s in seeds if first[s] != second[s]]
    replays = 2 * len(seeds)
    print(f"same-seed double replays  {len(seeds):,} seeds × 2 (PYTHONHASHSEED 1 vs 2, separate processes)")
    print(f"  reports that differ     {len(mismatched)} of {len(seeds):,} seeds (goal 0)"
          + (f": seeds {mismatched[:10]}" if mismatched else ""))
    print(f"  plan                    {'; '.join(PLAN)}")
    print(f"  what-if divergences     median {statistics.median(changed):.0f} steps per replay "
          f"(the plan changes the run; the two replays of a seed agree on every one)")
    print(f"  replay time             median {statistics.median(times_a + times_b) * 1e3:.0f} ms per replay; "
          f"{replays / wall:.1f} replays/s on {args.jobs} processes ({wall:.0f} s in all)")


if __name__ == "__main__":
    main()
