"""The replayer: deterministic virtual-time re-execution with faults, invariants and reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgetrace.replay._divergence import Divergence
from edgetrace.replay._loop import VirtualLoop, run_virtual
from edgetrace.replay._replayer import Replayer, parse_substitutions
from edgetrace.replay._report import ReplayReport, TraceReport
from edgetrace.replay._sim import ReplayRun, SimGrid, SimNode

__all__ = [
    "Divergence",
    "ReplayReport",
    "ReplayRun",
    "Replayer",
    "SimGrid",
    "SimNode",
    "TraceReport",
    "VirtualLoop",
    "replay_session",
    "run_virtual",
]


def replay_session(
    session: str | Path,
    *,
    faults: Sequence[str] = (),
    fault_files: Sequence[str | Path] = (),
    seed: int | None = None,
    models: Sequence[str] = (),
    policies: Sequence[str] = (),
    checks: Sequence[str] = (),
    default_checks: bool = True,
    horizon_s: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
    app: Any = None,
) -> tuple[ReplayReport, Replayer, ReplayRun]:
    """What `edgetrace replay` does, as a function: parse everything, run, report."""
    from edgetrace.replay._faults import FaultPlan
    from edgetrace.replay._invariants import resolve

    plan = FaultPlan.parse(list(faults), [Path(f) for f in fault_files])
    replayer = Replayer(session, app=app)
    declared = dict(replayer.app.invariants)
    names = list(checks) if (checks or not default_checks) else sorted(declared)
    if checks and default_checks:
        names = sorted(set(declared) | set(checks))
    invariants = resolve(names, declared)
    if seed is None and plan.seed is not None:
        seed = plan.seed
    report, run = replayer.run(
        plan=plan if plan else None, seed=seed, models=parse_substitutions(models, what="model"),
        policies=parse_substitutions(policies, what="policy"), invariants=invariants,
        horizon_s=horizon_s, progress=progress,
    )
    return report, replayer, run
