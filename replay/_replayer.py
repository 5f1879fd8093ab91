"""The replayer: a recorded session in, a deterministic report out.

    session ──Recording──► SimGrid (app handlers, virtual time, faults) ──► replayed spans
        └──────────────── compare by causal position ◄──────────────────────────┘
                                   │
                      divergences + invariant violations ──► ReplayReport

Same session + same plan + same seed ⇒ the same report, byte for byte: nothing here reads
a clock, draws unseeded randomness or iterates a set without sorting it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from edgetrace._errors import UsageError
from edgetrace._handler_errors import is_handler_error
from edgetrace._index import CausalIndex
from edgetrace._records import Manifest, Span
from edgetrace._session import Session, SessionWriter
from edgetrace._stepkey import StepKey, is_step
from edgetrace._trust import choose_app
from edgetrace._version import __version__
from edgetrace._why import Why
from edgetrace.agents._app import App, Artifact
from edgetrace.agents._grid import GridProfile
from edgetrace.agents._scenario import load_app
from edgetrace.replay._counterfactual import MODES, ShadowLog, closed_loop, teacher_forced
from edgetrace.replay._cuts import Cut, CutFinder
from edgetrace.replay._divergence import compare
from edgetrace.replay._findings import (
    cut_rows,
    decision_rows,
    handler_error_rows,
    pair_row,
    step_row,
    violations_per_trace,
)
from edgetrace.replay._memo import DEFAULT_FAITHFUL_VERIFY, InferenceMemo
from edgetrace.replay._races import HoldInjector, confirm, find_races
from edgetrace.replay._recording import Recording
from edgetrace.replay._report import ReplayReport, TraceReport
from edgetrace.replay._resume import CutStart
from edgetrace.replay._sim import ReplayRun, SimGrid
from edgetrace.replay._substitutions import artifact_sha, parse_substitutions
from edgetrace.replay._validate import Universe, check_faults, check_invariants
from edgetrace.replay._world import SharedArtifacts
from edgetrace.replay.faults import FaultInjector, FaultPlan, PlanInjector

__all__ = ["Replayer", "replay_command", "replay_session"]

_S = 1_000_000_000


class Replayer:
    """Re-runs a session's app against its recording."""

    def __init__(self, session: Session | str | os.PathLike[str], *, app: App | str | None = None,
                 trust_session: bool = False) -> None:
        self.session = session if isinstance(session, Session) else Session.open(session)
        manifest = self.session.manifest
        if not isinstance(app, App):  # a session file never picks the code to run (edgetrace._trust)
            app = load_app(choose_app(manifest, source=self.session.path, app=app,
                                      trust_session=trust_session).ref)
        self.app = app
        self.recording = Recording(self.session)
        self.nodes = self.session.nodes
        grid = manifest.meta.get("grid")
        self.profile = GridProfile.from_dict(grid) if isinstance(grid, Mapping) else GridProfile("none")

    def run(
        self,
        *,
        plan: FaultPlan | None = None,
        seed: int | None = None,
        models: Mapping[str, Artifact] | None = None,
        policies: Mapping[str, Artifact] | None = None,
        invariants: Sequence[Any] = (),
        horizon_s: float = 30.0,
        progress: Callable[[int, int], None] | None = None,
        reexecute: bool = False,
        verify_memo: int | None = None,
        artifacts: SharedArtifacts | None = None,
        make_injector: Callable[[], FaultInjector] | None = None,
        why_depth: int | None = 12,
        confirm_races: bool = False,
        mode: str = "closed-loop",
        start: str | Cut | None = None,
    ) -> tuple[ReplayReport, ReplayRun]:
        """`reexecute` runs every model and policy step again instead of serving byte-identical
        ones from the recording (`_memo.py`); `verify_memo` re-executes that many memoised steps
        and fails on a mismatch (default: a sample in faithful replays, none under faults);
        `make_injector` makes the fault injector of each simulation (default: the plan's);
        `start` (`--from`: a cut id, a virtual time, a span ref, or a Cut) restores the state
        snapshots of a consistent cut and replays only what follows it (`_cuts.py`)."""
        if mode not in MODES:
            raise UsageError(f"unknown counterfactual mode {mode!r}; expected one of: {', '.join(MODES)}")
        models = dict(models or {})
        policies = dict(policies or {})
        for name in models:
            if name not in self.app.models:
                raise UsageError(f"--model {name}: the app has no model {name!r}; it has: "
                                 f"{', '.join(sorted(self.app.models)) or 'none'}")
        for name in policies:
            if name not in self.app.policies:
                raise UsageError(f"--policy {name}: the app has no policy {name!r}; it has: "
                                 f"{', '.join(sorted(self.app.policies)) or 'none'}")
        seed = self.session.manifest.seed if seed is None else seed
        if plan:
            check_faults(plan, self.universe)
        check_invariants(list(invariants), self.universe)
        swapped = bool(models or policies)
        forced = swapped and mode == "teacher-forced"
        shadow: ShadowLog | None = None
        if forced:  # substitutes run beside the app's own, on the recorded inputs; they steer nothing
            shadow = ShadowLog({**{("model", n): self.app.build_model(n, a) for n, a in sorted(models.items())},
                                **{("policy", n): self.app.build_policy(n, a) for n, a in sorted(policies.items())}})

        if verify_memo is None:
            verify_memo = DEFAULT_FAITHFUL_VERIFY if not (plan or models or policies) else 0
        cut = self.cut(start) if isinstance(start, str) else start
        resume = CutStart.build(self.recording, self.session.index, cut) if cut is not None else None

        def simulate(holds: dict[StepKey, int] | None = None, tick: Callable[[int, int], None] | None = None,
                     swap: bool = not forced) -> ReplayRun:
            injector: FaultInjector = (make_injector() if make_injector is not None
                                       else PlanInjector(plan, seed) if plan else FaultInjector())
            if holds:
                injector = HoldInjector(injector, holds)
            extra = max((event.until or 0 for event in injector.node_events(self.nodes)), default=0)
            until = max(self.recording.end, extra) + int(horizon_s * _S)
            grid = SimGrid(
                self.app, self.nodes, seed=seed, plan=plan, injector=injector, recording=self.recording,
                profile=self.profile, model_paths=models if swap else {}, policy_paths=policies if swap else {},
                epoch_ns=int(self.session.manifest.meta.get("epoch_ns", 0) or 0),
                shadow=shadow if not swap else None, artifacts=artifacts,
                memo=InferenceMemo(self.recording, reexecute=reexecute, verify=verify_memo),
            )
            if resume is not None:
                grid.resume(resume)
            return grid.run(resume.inputs if resume is not None else self.recording.inputs(), until_ns=until,
                            progress=tick)

        try:
            run = simulate(tick=progress)
        finally:
            for engine in (shadow.shadows.values() if shadow is not None else ()):
                engine.close()
        report = self._report(run, plan=plan, seed=seed, models=models, policies=policies, invariants=invariants,
                              why_depth=why_depth, cut=cut)
        if forced and shadow is not None:
            report.counterfactual = teacher_forced(shadow, len({s.trace for s in run.spans if s.trace}))
        elif swapped:
            baseline = simulate(swap=False)
            before = self._prefix(cut)  # from a cut, invariants see the recorded past before it
            report.counterfactual = closed_loop(baseline.spans, run.spans,
                                                violations_per_trace(invariants, before + baseline.spans),
                                                violations_per_trace(invariants, before + run.spans))
        if confirm_races and report.races:
            found = find_races(run.spans, CausalIndex(run.spans))
            def violated(spans: list[Span]) -> dict[str, int]:
                from edgetrace.replay._invariants import History, check_all

                counts: dict[str, int] = {}
                for v in check_all(list(invariants), History(spans)) if invariants else []:
                    counts[v.invariant] = counts.get(v.invariant, 0) + 1
                return counts

            confirm(found, lambda holds: simulate(holds).spans, run.keys, run.spans, violated=violated)
            report.races = [r.to_dict() for r in found]
        return report, run

    @cached_property
    def cuts(self) -> CutFinder:
        """The consistent cuts this session's snapshots make (`edgetrace show --cuts`)."""
        return CutFinder(self.recording.spans, self.session.index, self.nodes)

    def cut(self, text: str) -> Cut:
        """`--from TEXT`: a cut id (`c12`), a virtual time (`59m`) or a span ref (`node:seq`)."""
        return self.cuts.resolve(text)

    def _prefix(self, cut: Cut | None) -> list[Span]:
        """The recorded spans before a cut (none without one)."""
        return cut.split(self.recording.spans)[0] if cut is not None else []

    @cached_property
    def universe(self) -> Universe:
        """The names a plan or check may use: this session's and its app's (computed once)."""
        return Universe.of(self.app, self.nodes, self.session.spans, where=f"session {self.session.path.name}")

    def _report(self, run: ReplayRun, *, plan: Any, seed: int, models: Mapping[str, Artifact],
                policies: Mapping[str, Artifact], invariants: Sequence[Any],
                why_depth: int | None = 12, cut: Cut | None = None) -> ReplayReport:
        recorded = self.recording.spans
        rec_index = self.session.index
        # from a cut the replay covers the suffixes; its history is the recorded prefix before them
        prefix: list[Span] = []
        if cut is not None:
            prefix, recorded = cut.split(recorded)
        history = prefix + run.spans if prefix else run.spans
        rep_index = CausalIndex(history)
        divergences = compare(recorded, self.recording.keys, rec_index, run.spans, run.keys, rep_index)
        rec_error_keys = {self.recording.keys[s.ref] for s in recorded if is_handler_error(s) and s.ref in self.recording.keys}
        rec_steps = [s for s in recorded if is_step(s)]
        matched = len(rec_steps) - len({d.key for d in divergences if d.kind in ("missing", "changed")})
        violations: list[Any] = []
        from edgetrace.replay._invariants import Coverage

        if invariants:
            from edgetrace.replay._invariants import History, check_all

            violations = check_all(list(invariants), History(history))
            if prefix:
                replayed = {s.ref for s in run.spans}
                violations = [v for v in violations if v.span in replayed]
        by_ref = {s.ref: s for s in history}
        violation_chains = {
            v.span: [step_row(by_ref[ref]) for ref in v.chain if ref in by_ref] for v in violations
        }
        why = Why(history, rep_index)
        why_recorded = Why(recorded, rec_index)
        violation_cuts: dict[str, dict[str, Any]] = {}
        for v in violations:
            if v.span in violation_cuts or v.span not in by_ref:
                continue
            if v.other and v.other in by_ref:
                pair = why.pair(by_ref[v.other], by_ref[v.span], depth=why_depth)
                violation_cuts[v.span] = {"cut": cut_rows(pair.second_cut), "pair": pair_row(pair)}
            else:
                violation_cuts[v.span] = {"cut": cut_rows(why.cut(by_ref[v.span], depth=why_depth))}
        traces: dict[str, TraceReport] = {}
        for d in divergences:
            report = traces.get(d.trace)
            if report is None:
                report = traces[d.trace] = TraceReport(trace=d.trace, first=d)
            report.count += 1
        for trace, report in traces.items():
            first = report.first
            anchor = by_ref.get(first.replayed) if first.replayed else None
            index, spans_ref = (rep_index, anchor) if anchor is not None else (rec_index, self.session.get(first.recorded))
            if spans_ref is not None:
                past = index.causal_past(spans_ref, trace=trace)[-12:]
                report.chain = [step_row(s) for s in [*past, spans_ref]]
                report.why = cut_rows((why if anchor is not None else why_recorded).cut(spans_ref, depth=why_depth))
            report.recorded_decisions = decision_rows(rec_index.causal_sort(s for s in recorded if s.trace == trace))
            report.replayed_decisions = decision_rows(rep_index.causal_sort(s for s in run.spans if s.trace == trace))
        return ReplayReport(
            session=str(self.session.path),
            app=self.app.name,
            seed=seed,
            faults=plan.specs() if plan else [],
            models={k: artifact_sha(v) for k, v in sorted(models.items())},
            policies={k: artifact_sha(v) for k, v in sorted(policies.items())},
            steps_recorded=len(rec_steps),
            steps_replayed=sum(1 for s in run.spans if is_step(s)),
            steps_matched=matched,
            faults_applied=run.faults_applied,
            virtual_ns=run.virtual_ns,
            divergences=divergences,
            traces=[traces[t] for t in sorted(traces)],
            violations=violations,
            violation_chains=violation_chains,
            invariants=[(inv.name, inv.description) for inv in invariants],
            fault_counts=run.fault_counts,
            handler_errors=handler_error_rows(run.spans, run.keys, recorded=rec_error_keys, why=why, depth=why_depth),
            recorded_errors=handler_error_rows(recorded, self.recording.keys),
            nondeterminism=run.nondeterminism,
            violation_cuts=violation_cuts,
            coverage=[(inv.name, inv.mode, inv.reached) for inv in invariants if isinstance(inv, Coverage)],
            races=[r.to_dict() for r in find_races(run.spans, rep_index)],
            cut=cut.to_dict() if cut is not None else None,
        )

    def save(self, run: ReplayRun, report: ReplayReport, out: str | os.PathLike[str]) -> Path:
        """Write the replayed run as a session, so the explorer can diff it with the recording.

        A replay from a cut is written as the recorded prefix followed by the replayed suffix: a
        whole session, which the explorer can diff and a replay can start from the beginning."""
        path = Path(out)
        if path.exists():
            path.unlink()
        base = self.session.manifest
        manifest = Manifest(
            session_id=f"{base.session_id or self.session.path.stem}-replay",
            app=base.app, app_ref=base.app_ref, scenario=base.scenario, profile=base.profile,
            seed=report.seed, nodes=run.nodes,
            models={**base.models, **report.models}, policies={**base.policies, **report.policies},
            edgetrace=__version__,
            meta={**base.meta, "replay_of": str(self.session.path), "faults": report.faults,
                  "seed": report.seed, **({"from_cut": report.cut} if report.cut is not None else {})},
        )
        blobs = dict(run.blobs)
        spans = run.spans
        if report.cut is not None:
            prefix = self._prefix(Cut.from_dict(report.cut))
            for span in prefix:
                for sha in span.blobs.values():
                    if sha not in blobs:
                        blobs[sha] = self.session.blob(sha)
            spans = sorted(prefix + run.spans, key=lambda s: (s.node, s.seq))
        with SessionWriter(path, manifest, compress="zstd") as writer:  # written once: small
            for sha in sorted(blobs):
                writer.put_blob(blobs[sha], sha)
            for i in range(0, len(spans), 512):
                writer.append(spans[i : i + 512])
            writer.seal()
        return path


def replay_session(
    session: str | Path,
    *,
    faults: Sequence[str] = (),
    fault_files: Sequence[str | Path] = (),
    seed: int | None = None,
    models: Sequence[str] | Mapping[str, Any] = (),
    policies: Sequence[str] | Mapping[str, Any] = (),
    checks: Sequence[str] = (),
    default_checks: bool = True,
    horizon_s: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
    app: Any = None,
    replayer: Replayer | None = None,
    reexecute: bool = False,
    verify_memo: int | None = None,
    artifacts: SharedArtifacts | None = None,
    occurrences: Sequence[int] | None = None,
    make_injector: Callable[[], FaultInjector] | None = None,
    why_depth: int | None = 12,
    confirm_races: bool = False,
    mode: str = "closed-loop",
    trust_session: bool = False,
    start: str | None = None,
) -> tuple[ReplayReport, Replayer, ReplayRun]:
    """What `edgetrace replay` does, as a function: parse everything, run, report.

    `app` is an App or a reference (`--app`); without it the session's app must be trusted
    (edgetrace._trust), or `trust_session` given. `occurrences` (`--occurrences`) applies only
    those occurrences of the plan under this seed, numbered as a first replay with the whole
    plan applies them (`replay/_ddmin.py`)."""
    from edgetrace.replay._invariants import resolve

    plan = FaultPlan.parse(list(faults), [Path(f) for f in fault_files])
    # `start` (`--from`): a cut id, a virtual time or a span ref; the suffix after it is replayed
    # one loaded session can serve many replays
    replayer = replayer or Replayer(session, app=app, trust_session=trust_session)
    declared = dict(replayer.app.invariants)
    names = list(checks) if (checks or not default_checks) else sorted(declared)
    if checks and default_checks:
        names = sorted(set(declared) | set(checks))
    invariants = resolve(names, declared)
    if seed is None and plan.seed is not None:
        seed = plan.seed
    options: dict[str, Any] = dict(
        plan=plan if plan else None, seed=seed, models=parse_substitutions(models, what="model"),
        policies=parse_substitutions(policies, what="policy"), invariants=invariants,
        horizon_s=horizon_s, why_depth=why_depth, confirm_races=confirm_races, mode=mode,
        reexecute=reexecute, verify_memo=verify_memo, artifacts=artifacts, make_injector=make_injector,
        start=replayer.cut(start) if start is not None else None,
    )
    if occurrences is not None:
        from edgetrace.replay._ddmin import occurrence_injector

        options["make_injector"] = occurrence_injector(replayer, occurrences, **options)
    report, run = replayer.run(progress=progress, **options)
    return report, replayer, run


def replay_command(
    session: str | Path, *, seed: int | None = None, faults: Sequence[str] = (),
    fault_files: Sequence[str | Path] = (), models: Sequence[str] = (), policies: Sequence[str] = (),
    checks: Sequence[str] = (), app: str = "",
) -> str:
    """The `edgetrace replay` command line that reproduces a replay, quoted for a shell."""
    import shlex

    args = ["edgetrace", "replay", str(session), *(["--app", app] if app else [])]
    if seed is not None:
        args += ["--seed", str(seed)]
    for flag, values in (("--faults", fault_files), ("--fault", faults), ("--model", models),
                         ("--policy", policies), ("--check", checks)):
        for value in values:
            args += [flag, str(value)]
    return shlex.join(args)
