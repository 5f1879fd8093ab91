"""Sweeps: one fault plan replayed under many seeds, and the smallest plan that still fails.

A plan with probabilities (`drop(p=0.05)`, jitter, distributions) is a family of runs; one
seed is one member. A sweep runs the members in a local process pool, reports which seeds
break an invariant, and minimises the plan for the first failing seed by taking faults away
while the failure persists — so the on-call engineer reads "this one fault, this seed", not
a page of specs. Results are ordered by seed and each run is itself deterministic, so the
sweep's report does not depend on the pool's scheduling.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetrace._errors import UsageError

__all__ = ["SeedResult", "SweepReport", "minimise", "sweep"]


@dataclass(frozen=True)
class SeedResult:
    seed: int
    verdict: str
    violations: int
    divergences: int
    first: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "verdict": self.verdict, "violations": self.violations,
                "divergences": self.divergences, "first_violation": self.first}


@dataclass
class SweepReport:
    session: str
    faults: list[str]
    fault_files: list[str]
    options: dict[str, list[str]]
    results: list[SeedResult]
    minimal: list[str] | None = None
    minimal_seed: int | None = None
    tries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> list[int]:
        return [r.seed for r in self.results if r.violations]

    def exit_code(self) -> int:
        return 1 if self.failing else 0

    def command(self, seed: int, faults: Sequence[str] | None = None) -> str:
        import shlex

        args = ["edgetrace", "replay", self.session, "--seed", str(seed)]
        if faults is None:
            for f in self.fault_files:
                args += ["--faults", f]
            faults = self.faults
        for spec in faults:
            args += ["--fault", spec]
        for flag, values in self.options.items():
            for v in values:
                args += [flag, v] if v else [flag]
        return shlex.join(args)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "faults": self.faults,
            "fault_files": self.fault_files,
            "seeds": len(self.results),
            "failing_seeds": self.failing,
            "failure_rate": round(len(self.failing) / len(self.results), 6) if self.results else 0.0,
            "results": [r.to_dict() for r in self.results],
            "minimal_plan": self.minimal,
            "minimal_seed": self.minimal_seed,
            "minimise_tries": self.tries,
            "reproduce": self.command(self.minimal_seed, self.minimal) if self.minimal_seed is not None else None,
        }

    def render_text(self) -> str:
        n, bad = len(self.results), self.failing
        out = [f"sweep of {self.session}: {n} seeds, plan: {'; '.join(self.faults) or '(files only)'}"]
        out.append(f"  {len(bad)}/{n} seeds violate an invariant ({len(bad) / max(n, 1):.0%})")
        if bad:
            shown = ", ".join(str(s) for s in bad[:20]) + (" …" if len(bad) > 20 else "")
            out.append(f"  failing seeds: {shown}")
            first = next(r for r in self.results if r.violations)
            if first.first:
                out.append(f"  seed {first.seed}: {first.first['invariant']} at {first.first['span']} "
                           f"(trace {first.first['trace']})")
        if self.minimal is not None and self.minimal_seed is not None:
            out.append(f"  smallest plan that still fails on seed {self.minimal_seed} "
                       f"({self.tries} replays to find it):")
            for spec in self.minimal or ["(no fault: the recording itself violates)"]:
                out.append(f"    {spec}")
            out.append(f"  reproduce: {self.command(self.minimal_seed, self.minimal)}")
        elif not bad:
            out.append("  every seed kept every invariant")
        return "\n".join(out) + "\n"


_LOADED: dict[tuple[str, int, int, str, bool], Any] = {}  # per process, so a worker loads a session once


def _replayer(session: str, app: str = "", trust_session: bool = False) -> Any:
    """The loaded session for this file as it is now (a rewritten file is loaded again)."""
    from edgetrace.replay._replayer import Replayer

    try:
        stat = os.stat(session)
    except OSError:
        return Replayer(session, app=app or None, trust_session=trust_session)  # the usual one-line error
    key = (session, stat.st_mtime_ns, stat.st_size, app, trust_session)
    loaded = _LOADED.get(key)
    if loaded is None:
        _LOADED.clear()  # one session per sweep: keep only the newest
        loaded = _LOADED[key] = Replayer(session, app=app or None, trust_session=trust_session)
    return loaded


def _run_one(session: str, faults: list[str], fault_files: list[str], seed: int,
             options: dict[str, Any]) -> SeedResult:
    from edgetrace.replay._replayer import replay_session

    options = dict(options)
    app, trust = options.pop("app", ""), options.pop("trust_session", False)
    report, _, _ = replay_session(session, faults=faults, fault_files=fault_files, seed=seed,
                                  replayer=_replayer(session, app, trust), **options)
    first = None
    if report.violations:
        v = report.violations[0]
        first = {"invariant": v.invariant, "span": v.span, "trace": v.trace, "message": v.message}
    return SeedResult(seed, report.verdict, len(report.violations), len(report.divergences), first)


def sweep(
    session: str | Path,
    seeds: Sequence[int],
    *,
    faults: Sequence[str] = (),
    fault_files: Sequence[str | Path] = (),
    models: Sequence[str] = (),
    policies: Sequence[str] = (),
    checks: Sequence[str] = (),
    jobs: int | None = None,
    do_minimise: bool = True,
    progress: Callable[[int, int], None] | None = None,
    app: str = "",
    trust_session: bool = False,
) -> SweepReport:
    """Replay `session` under every seed; minimise the plan for the first failing one.

    `app` (a reference, as `--app`) is the app to run; without it the session's own must be
    trusted (edgetrace._trust) or `trust_session` given.
    """
    from edgetrace.replay.faults import FaultPlan

    if not seeds:
        raise UsageError("a sweep needs at least one seed")
    FaultPlan.parse(list(faults), [Path(f) for f in fault_files])  # a bad plan fails before any work
    _replayer(str(session), app, trust_session)  # and a session that cannot be replayed (kept in-process)
    options = {"models": list(models), "policies": list(policies), "checks": list(checks), "app": app,
               "trust_session": trust_session}
    files = [str(f) for f in fault_files]
    jobs = max(1, jobs or os.cpu_count() or 1)
    results: dict[int, SeedResult] = {}
    if jobs == 1 or len(seeds) == 1:
        for seed in seeds:
            results[seed] = _run_one(str(session), list(faults), files, seed, options)
            if progress:
                progress(len(results), len(seeds))
    else:
        # spawn, not fork: ONNX Runtime and regopy hold threads and native state
        with cf.ProcessPoolExecutor(max_workers=min(jobs, len(seeds)), mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_run_one, str(session), list(faults), files, seed, options): seed
                       for seed in seeds}
            for fut in cf.as_completed(futures):
                results[futures[fut]] = fut.result()
                if progress:
                    progress(len(results), len(seeds))
    report = SweepReport(str(session), list(faults), files,
                         {"--app": [app] if app else [], "--model": list(models), "--policy": list(policies),
                          "--check": list(checks), "--trust-session": [""] if trust_session else []},
                         [results[s] for s in sorted(results)])
    if do_minimise and report.failing:
        seed = report.failing[0]
        specs = FaultPlan.parse(list(faults), [Path(f) for f in fault_files]).specs()
        report.minimal, report.tries = minimise(
            specs, lambda plan: _run_one(str(session), plan, [], seed, options).violations > 0)
        report.minimal_seed = seed
    return report


def minimise(specs: list[str], fails: Callable[[list[str]], bool]) -> tuple[list[str], int]:
    """Greedy one-at-a-time reduction (ddmin's last phase): drop any fault whose removal keeps
    the failure, until every remaining fault is needed. Returns (plan, replays tried)."""
    current = list(specs)
    tries = 0
    changed = True
    while changed and current:
        changed = False
        for i in range(len(current)):
            candidate = current[:i] + current[i + 1:]
            tries += 1
            if fails(candidate):
                current = candidate
                changed = True
                break
    return current, tries
