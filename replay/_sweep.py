"""Sweeps: one fault plan replayed under many seeds, and the cause of the failures it finds.

A plan with probabilities (`drop(p=0.05)`, jitter, distributions) is a family of runs; one
seed is one member. A sweep runs the members through an executor (`_executor.py`: a local
process pool by default, this process, or Ray), reports which seeds break an invariant, and
minimises the failure (`_ddmin.py`): the smallest plan that still fails across the failing
seeds, then the injected events of it that still break the invariant — so the on-call
engineer reads "this drop, that delay, this seed", not a page of specs. Results are ordered by
seed and each run is itself deterministic (model and policy steps byte-identical to the
recording come from the inference memo, `_memo.py`), so the sweep's report does not depend on
the executor or its scheduling.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetrace._errors import UsageError
from edgetrace.replay._ddmin import Cause, find_cause
from edgetrace.replay._executor import (
    ExecutorKind,
    SeedResult,
    SweepExecutor,
    SweepTask,
    batches,
    loaded,
    make_executor,
    run_one,
)

__all__ = ["SeedResult", "SweepReport", "minimise", "sweep"]


@dataclass
class SweepReport:
    session: str
    faults: list[str]
    fault_files: list[str]
    options: dict[str, list[str]]
    results: list[SeedResult]
    minimal: list[str] | None = None
    minimal_seed: int | None = None
    minimal_first: dict[str, Any] | None = None  # the violation the minimal plan's command shows
    tries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    cause: Cause | None = None

    @property
    def failing(self) -> list[int]:
        return [r.seed for r in self.results if r.violations]

    def exit_code(self) -> int:
        return 1 if self.failing else 0

    def coverage(self) -> list[dict[str, Any]]:
        """Per `sometimes`/`reachable` check: in how many seeds it was reached — so a green sweep
        shows it exercised the dangerous state (or that it never did)."""
        names = sorted({name for r in self.results for name, _ in r.coverage})
        return [{"name": name, "seeds_reached": sum(1 for r in self.results if dict(r.coverage).get(name, 0) > 0),
                 "seeds": len(self.results)} for name in names]

    def command(self, seed: int, faults: Sequence[str] | None = None,
                occurrences: Sequence[int] | None = None) -> str:
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
        if occurrences is not None:
            args += ["--occurrences", ",".join(str(n) for n in occurrences)]
        return shlex.join(args)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "faults": self.faults,
            "fault_files": self.fault_files,
            "seeds": len(self.results),
            "failing_seeds": self.failing,
            "failure_rate": round(len(self.failing) / len(self.results), 6) if self.results else 0.0,
            "results": [{**r.to_dict(), "reproduce": self.command(r.seed) if r.violations else None}
                        for r in self.results],
            "minimal_plan": self.minimal,
            "minimal_seed": self.minimal_seed,
            "minimal_violation": self.minimal_first,
            "minimise_tries": self.tries,
            "reproduce": self.command(self.minimal_seed, self.minimal) if self.minimal_seed is not None else None,
            "cause": self._cause_dict(),
            "coverage": self.coverage(),
        }

    def _cause_dict(self) -> dict[str, Any] | None:
        cause = self.cause
        if cause is None:
            return None
        return {
            "plan": cause.plan,
            "seed": cause.seed,
            "seeds_judged": cause.seeds_judged,
            "one_minimal": cause.complete,
            "occurrences_logged": cause.logged,
            "occurrences": [{"number": n, **o.to_dict()} for n, o in cause.occurrences],
            "occurrence_tries": cause.occurrence_tries,
            "violation": cause.occurrence_first,
            "reproduce": self.command(cause.seed, cause.plan, cause.numbers) if cause.plan else None,
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
                out.append(f"  reproduce: {self.command(first.seed)}")
        if self.minimal is not None and self.minimal_seed is not None:
            judged = len(self.cause.seeds_judged) if self.cause is not None else 1
            out.append(f"  smallest plan that still fails (judged on {judged} failing seed{'s' * (judged != 1)}; "
                       f"first on seed {self.minimal_seed}; {self.tries} replays to find it):")
            for spec in self.minimal or ["(no fault: the recording itself violates)"]:
                out.append(f"    {spec}")
            if self.minimal_first:
                m = self.minimal_first
                out.append(f"  which shows {m['invariant']} at {m['span']} (trace {m['trace']})")
            out.append(f"  reproduce: {self.command(self.minimal_seed, self.minimal)}")
            out.extend(self._cause_lines())
        elif not bad:
            out.append("  every seed kept every invariant")
        for c in self.coverage():
            never = "" if c["seeds_reached"] else "  ← never exercised: the sweep says nothing about it"
            out.append(f"  {c['name']}: reached in {c['seeds_reached']} of {c['seeds']} seeds{never}")
        return "\n".join(out) + "\n"

    def _cause_lines(self) -> list[str]:
        cause = self.cause
        if cause is None or not cause.plan:
            return []
        n = len(cause.occurrences)
        out = [f"  the injected events that still break it ({n} of the {cause.logged} the plan makes on seed "
               f"{cause.seed}; {cause.occurrence_tries} replays{'' if cause.complete else ', stopped early'}):"]
        for number, occ in cause.occurrences:
            out.append(f"    #{number}  {occ.text}  [{occ.spec}]")
        if cause.occurrence_first:
            m = cause.occurrence_first
            out.append(f"  which shows {m['invariant']} at {m['span']} (trace {m['trace']})")
        out.append(f"  reproduce: {self.command(cause.seed, cause.plan, cause.numbers)}")
        return out


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
    executor: SweepExecutor | ExecutorKind | str | None = None,
    address: str | None = None,
    reexecute: bool = False,
    verify_memo: int = 0,
    minimise_seeds: int = 8,
    minimise_tries: int = 400,
    app: str = "",
    trust_session: bool = False,
    start: str = "",
) -> SweepReport:
    """Replay `session` under every seed; find the cause of the failures.

    `executor` is where seeds run: an executor, or its kind ("process", the default with more
    than one job; "inline"; "ray", on the cluster at `address`). `reexecute` turns the inference
    memo off; `verify_memo` re-executes that many memoised steps per replay. Minimisation judges
    smaller plans on the first `minimise_seeds` failing seeds and stops after `minimise_tries`
    replays per phase. `app` (a reference, as `--app`) is the app to run; without it the
    session's own must be trusted (edgetrace._trust) or `trust_session` given. `start` (`--from`)
    replays every seed from that consistent cut of the session's snapshots (docs/replay.md).
    """
    from edgetrace.replay.faults import FaultPlan

    if not seeds:
        raise UsageError("a sweep needs at least one seed")
    plan = FaultPlan.parse(list(faults), [Path(f) for f in fault_files])  # a bad plan fails before any work
    extra: tuple[tuple[str, Any], ...] = (("app", app or None), ("trust_session", trust_session),
                                         *((("start", start),) if start else ()))
    task = SweepTask(str(session), tuple(faults), tuple(str(f) for f in fault_files), tuple(models),
                     tuple(policies), tuple(checks), reexecute=reexecute, verify_memo=verify_memo, extra=extra)
    replayer, _ = loaded(task.session, task.extra)  # and so does a session that cannot be replayed
    if start:
        replayer.cut(start)  # a bad --from too, before any work
    seeds = list(seeds)
    results: dict[int, SeedResult] = {}
    own = not isinstance(executor, SweepExecutor)
    runner = make_executor(executor or (ExecutorKind.INLINE if len(seeds) == 1 else ExecutorKind.PROCESS),
                           jobs=jobs, address=address) if not isinstance(executor, SweepExecutor) else executor
    try:
        for done in runner.map(task, batches(seeds, runner.workers)):
            for result in done:
                results[result.seed] = result
            if progress:
                progress(len(results), len(seeds))
    finally:
        if own:
            runner.close()
    report = SweepReport(task.session, list(faults), list(task.fault_files),
                         {"--app": [app] if app else [], "--model": list(models), "--policy": list(policies),
                          "--check": list(checks), "--trust-session": [""] if trust_session else [],
                          "--from": [start] if start else []},
                         [results[s] for s in sorted(results)])
    if do_minimise and report.failing:
        cause = minimise_failure(task, plan.specs(), report.failing, seeds=minimise_seeds, most=minimise_tries)
        report.cause = cause
        report.minimal, report.tries = cause.plan, cause.tries
        report.minimal_seed, report.minimal_first = cause.seed, cause.first
    return report


def minimise_failure(task: SweepTask, specs: list[str], failing: Sequence[int], *, seeds: int = 8,
                     most: int = 400) -> Cause:
    """The cause of a sweep's failures (`_ddmin.find_cause`), replaying in this process."""
    from edgetrace.replay._ddmin import occurrence_log
    from edgetrace.replay._invariants import resolve
    from edgetrace.replay._substitutions import parse_substitutions
    from edgetrace.replay.faults import FaultPlan, Occurrence, OccurrenceInjector

    def run(plan: list[str], seed: int, chosen: list[Occurrence] | None) -> tuple[bool, dict[str, Any] | None]:
        make = (lambda: OccurrenceInjector(FaultPlan.parse(plan), chosen)) if chosen is not None else None
        result, _ = run_one(task, seed, faults=plan, fault_files=[], make_injector=make)
        return result.violations > 0, result.first

    def log(plan: list[str], seed: int) -> list[Any]:
        replayer, artifacts = loaded(task.session, task.extra)
        declared = dict(replayer.app.invariants)
        names = sorted(set(declared) | set(task.checks))
        return occurrence_log(replayer, plan=FaultPlan.parse(plan), seed=seed, invariants=resolve(names, declared),
                              models=parse_substitutions(list(task.models), what="model"),
                              policies=parse_substitutions(list(task.policies), what="policy"),
                              reexecute=task.reexecute, verify_memo=task.verify_memo, artifacts=artifacts)

    return find_cause(specs, failing, run, log, seeds=seeds, most=most)


def minimise(specs: list[str], fails: Callable[[list[str]], bool]) -> tuple[list[str], int]:
    """Greedy one-at-a-time reduction on one judge (what sweeps did before ddmin; kept as the
    baseline its tests compare with): drop any fault whose removal keeps the failure, until
    every remaining fault is needed. Returns (plan, replays tried)."""
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
