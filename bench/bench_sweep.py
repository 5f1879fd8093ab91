"""Sweep benchmarks (issue 17), measured side by side in one run.

1. Seeds per second of the recorded agri session (tests/data/agri-demo.ets) under
   `latency(op=state.*, delay=2s, p=0.1)` on a local process pool: with the inference memo
   (the default) and without it (`--reexecute all`, every model and policy step run again,
   which is what sweeps did before).
2. The same sweep on Ray (a local instance with as many CPUs as the pool has processes), when
   Ray is installed: executor overhead against the process pool.
3. With --full, the goal: 10,000 seeds of the same sweep, minimisation included (≤ 10 min on
   2 cores).

Run: python bench/bench_sweep.py [--seeds 400] [--baseline-seeds 40] [--jobs 2] [--full]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edgetrace.replay._sweep import sweep

SESSION = Path(__file__).resolve().parents[1] / "tests" / "data" / "agri-demo.ets"
PLAN = ["latency(op=state.*, delay=2s, p=0.1)"]


def timed(seeds: int, executor: object, **kw: object) -> tuple[float, object]:
    """Wall time of a sweep on an executor that is already up (workers started, session loaded)."""
    t0 = time.perf_counter()
    report = sweep(SESSION, range(seeds), faults=PLAN, do_minimise=False, executor=executor, **kw)  # type: ignore[arg-type]
    return time.perf_counter() - t0, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=400)
    ap.add_argument("--baseline-seeds", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="also the 10,000-seed sweep with minimisation")
    args = ap.parse_args()

    from edgetrace.replay._executor import ProcessExecutor, RayExecutor

    with ProcessExecutor(args.jobs) as pool:
        timed(2 * args.jobs, pool)  # workers up, session and models loaded
        base_s, base = timed(args.baseline_seeds, pool, reexecute=True)
        memo_s, memo = timed(args.seeds, pool)
        same = json.dumps(timed(args.baseline_seeds, pool)[1].to_dict(), sort_keys=True) \
            == json.dumps(base.to_dict(), sort_keys=True)  # type: ignore[attr-defined]
    print(f"sweep, memo           {args.seeds / memo_s:6.1f} seeds/s  ({args.seeds} seeds in {memo_s:.1f} s, "
          f"{args.jobs} processes)")
    print(f"sweep, re-executing   {args.baseline_seeds / base_s:6.1f} seeds/s  ({args.baseline_seeds} seeds in "
          f"{base_s:.1f} s: every model and policy step run again)  → memo ×{(args.seeds / memo_s) / (args.baseline_seeds / base_s):.1f}"
          f"; same report with and without the memo: {same}")
    try:
        import ray
    except ImportError:
        print("sweep on Ray           (Ray not installed: pip install 'edgetrace[ray]')")
    else:
        ray.init(num_cpus=args.jobs, include_dashboard=False, log_to_driver=False)
        try:
            on = RayExecutor()
            timed(2 * args.jobs, on)  # workers up, session and models loaded
            ray_s, on_ray = timed(args.seeds, on)
        finally:
            ray.shutdown()
        agree = json.dumps(on_ray.to_dict(), sort_keys=True) == json.dumps(memo.to_dict(), sort_keys=True)  # type: ignore[attr-defined]
        print(f"sweep on Ray           {args.seeds / ray_s:6.1f} seeds/s  ({args.seeds} seeds in {ray_s:.1f} s, local Ray "
              f"with {args.jobs} CPUs; process pool {args.seeds / memo_s:.1f}/s); same report: {agree}")
    if args.full:
        t0 = time.perf_counter()
        import resource

        def cpu() -> float:
            return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
                       for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))

        cpu0 = cpu()
        report = sweep(SESSION, range(10_000), faults=PLAN, jobs=args.jobs)
        wall = time.perf_counter() - t0
        used = cpu() - cpu0  # the pool's workers have exited: their time is counted
        print(f"10,000-seed sweep      {wall / 60:.1f} min wall  ({10_000 / wall:.1f} seeds/s, {len(report.failing)} "
              f"failing, minimisation included); {used:.0f} CPU-s = {used / args.jobs / 60:.1f} min on {args.jobs} "
              f"free cores (goal ≤ 10 min on 2 cores)")


if __name__ == "__main__":
    main()
