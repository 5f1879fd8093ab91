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

from edgetrace import _attrs as attr
from edgetrace._artifacts import callable_sha256, file_sha256
from edgetrace._errors import UsageError
from edgetrace._index import CausalIndex
from edgetrace._records import Manifest, SpanKind
from edgetrace._session import Session, SessionWriter
from edgetrace._trust import choose_app
from edgetrace._version import __version__
from edgetrace.agents._app import App, Artifact
from edgetrace.agents._grid import GridProfile
from edgetrace.agents._scenario import load_app
from edgetrace.replay._divergence import compare
from edgetrace.replay._recording import Recording
from edgetrace.replay._report import ReplayReport, TraceReport
from edgetrace.replay._sim import ReplayRun, SimGrid
from edgetrace.replay._validate import Universe, check_faults, check_invariants
from edgetrace.replay.faults import FaultInjector, FaultPlan, PlanInjector

__all__ = ["Replayer", "parse_substitutions", "replay_command", "replay_session"]

_S = 1_000_000_000


def parse_substitutions(items: Sequence[str] | Mapping[str, Any], *, what: str) -> dict[str, Artifact]:
    """What stands in for a model or policy: `NAME=PATH` or `NAME=MODULE:ATTR` / `NAME=FILE.py:ATTR`
    strings (from --model / --policy), or a mapping of names to paths or Python callables."""
    pairs = list(items.items()) if isinstance(items, Mapping) else []
    if not isinstance(items, Mapping):
        for item in items:
            name, sep, ref = item.partition("=")
            if not sep or not name or not ref:
                raise UsageError(f"bad --{what} {item!r}: expected NAME=PATH or NAME=MODULE:FUNCTION")
            pairs.append((name, ref))
    found: dict[str, Artifact] = {}
    for name, value in pairs:
        found[name] = _artifact(name, value, what)
    return found


def _artifact(name: str, value: Any, what: str) -> Artifact:
    if callable(value):
        func: Callable[[Any], Any] = value
        return func
    text = str(value)
    if Path(text).is_file():
        return Path(text)
    module, sep, attr_name = text.rpartition(":")
    if sep and module and attr_name and (module.endswith(".py") or "/" not in module):
        from edgetrace.agents._scenario import import_ref

        found = import_ref(text, what=f"--{what} {name}")
        if not callable(found):
            raise UsageError(f"--{what} {name}: {text} is a {type(found).__name__}, not a function")
        return found  # type: ignore[no-any-return]
    raise UsageError(f"--{what} {name}: no file at {text} (a Python {what} is MODULE:FUNCTION or FILE.py:FUNCTION)")


def _sha(artifact: Artifact) -> str:
    return callable_sha256(artifact) if callable(artifact) else file_sha256(artifact)


def artifact_ref(artifact: Artifact) -> str:
    """How a command line names an artifact: its path, or where a Python function can be imported."""
    if not callable(artifact):
        return str(artifact)
    import inspect

    module = inspect.getmodule(artifact)
    qual = getattr(artifact, "__qualname__", "")
    file = inspect.getsourcefile(artifact) if module is not None else None
    if module is not None and getattr(module, qual, None) is artifact:
        installed = file is not None and any(p in ("site-packages", "dist-packages") for p in Path(file).parts)
        if installed or file is None:
            return f"{module.__name__}:{qual}"
        return f"{Path(file).resolve()}:{qual}"
    return f"<{qual or artifact!r}: not importable by name>"


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
        self.nodes = sorted(set(manifest.nodes) | {s.node for s in self.session.spans})
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
    ) -> tuple[ReplayReport, ReplayRun]:
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
        injector = PlanInjector(plan, seed) if plan else FaultInjector()
        extra = max((event.until or 0 for event in injector.node_events(self.nodes)), default=0)
        until = max(self.recording.end, extra) + int(horizon_s * _S)
        grid = SimGrid(
            self.app, self.nodes, seed=seed, plan=plan, injector=injector, recording=self.recording,
            profile=self.profile, model_paths=models, policy_paths=policies,
        )
        run = grid.run(self.recording.inputs(), until_ns=until, progress=progress)
        report = self._report(run, plan=plan, seed=seed, models=models, policies=policies, invariants=invariants)
        return report, run

    @cached_property
    def universe(self) -> Universe:
        """The names a plan or check may use: this session's and its app's (computed once)."""
        return Universe.of(self.app, self.nodes, self.session.spans, where=f"session {self.session.path.name}")

    def _report(self, run: ReplayRun, *, plan: Any, seed: int, models: Mapping[str, Artifact],
                policies: Mapping[str, Artifact], invariants: Sequence[Any]) -> ReplayReport:
        recorded = self.recording.spans
        rec_index = self.session.index
        rep_index = CausalIndex(run.spans)
        divergences = compare(recorded, self.recording.keys, rec_index, run.spans, run.keys, rep_index)
        rec_steps = [s for s in recorded if s.kind is not SpanKind.FAULT]
        matched = len(rec_steps) - len({d.key for d in divergences if d.kind in ("missing", "changed")})
        violations: list[Any] = []
        if invariants:
            from edgetrace.replay._invariants import History, check_all

            violations = check_all(list(invariants), History(run.spans))
        by_ref = {s.ref: s for s in run.spans}
        violation_chains = {
            v.span: [_step(by_ref[ref]) for ref in v.chain if ref in by_ref] for v in violations
        }
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
                report.chain = [_step(s) for s in [*past, spans_ref]]
            report.recorded_decisions = _decisions(rec_index.causal_sort(s for s in recorded if s.trace == trace))
            report.replayed_decisions = _decisions(rep_index.causal_sort(s for s in run.spans if s.trace == trace))
        return ReplayReport(
            session=str(self.session.path),
            app=self.app.name,
            seed=seed,
            faults=plan.specs() if plan else [],
            models={k: _sha(v) for k, v in sorted(models.items())},
            policies={k: _sha(v) for k, v in sorted(policies.items())},
            steps_recorded=len(rec_steps),
            steps_replayed=sum(1 for s in run.spans if s.kind is not SpanKind.FAULT),
            steps_matched=matched,
            faults_applied=run.faults_applied,
            virtual_ns=run.virtual_ns,
            divergences=divergences,
            traces=[traces[t] for t in sorted(traces)],
            violations=violations,
            violation_chains=violation_chains,
            invariants=[(inv.name, inv.description) for inv in invariants],
            fault_counts=run.fault_counts,
        )

    def save(self, run: ReplayRun, report: ReplayReport, out: str | os.PathLike[str]) -> Path:
        """Write the replayed run as a session, so the explorer can diff it with the recording."""
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
                  "seed": report.seed},
        )
        with SessionWriter(path, manifest, compress="lzma") as writer:  # written once: small
            for sha in sorted(run.blobs):
                writer.put_blob(run.blobs[sha], sha)
            for i in range(0, len(run.spans), 512):
                writer.append(run.spans[i : i + 512])
            writer.seal()
        return path


def _step(span: Any) -> dict[str, Any]:
    attrs = span.attrs
    summary: Any = None
    if span.kind is SpanKind.INFER:
        summary = attrs.get(attr.OUTPUT)
    elif span.kind is SpanKind.DECIDE:
        summary = {"decision": attrs.get(attr.DECISION), "fired": attrs.get(attr.RULES_FIRED)}
    elif span.kind is SpanKind.ACT:
        summary = attrs.get(attr.ACT_ARGS)
    elif span.kind in (SpanKind.STATE_GET, SpanKind.STATE_PUT):
        summary = {"key": attrs.get(attr.STATE_KEY), "value": attrs.get(attr.STATE_VALUE)}
    elif span.kind in (SpanKind.INPUT, SpanKind.RECV, SpanKind.SEND):
        summary = attrs.get(attr.PAYLOAD)
    elif span.kind is SpanKind.FAULT:
        summary = attrs.get(attr.FAULT)
    return {"ref": span.ref, "kind": span.kind.value, "name": span.name, "status": span.status.value,
            "error": span.error, "summary": summary}


def _decisions(spans: list[Any]) -> list[dict[str, Any]]:
    found = []
    for s in spans:
        if s.kind is SpanKind.DECIDE:
            found.append({"node": s.node, "step": "decide", "name": s.name,
                          "value": s.attrs.get(attr.DECISION), "error": s.error})
        elif s.kind is SpanKind.ACT:
            found.append({"node": s.node, "step": "act", "name": s.name, "value": s.attrs.get(attr.ACT_ARGS),
                          "error": s.error})
    return found


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
    trust_session: bool = False,
) -> tuple[ReplayReport, Replayer, ReplayRun]:
    """What `edgetrace replay` does, as a function: parse everything, run, report.

    `app` is an App or a reference (`--app`); without it the session's app must be trusted
    (edgetrace._trust), or `trust_session` given.
    """
    from edgetrace.replay._invariants import resolve

    plan = FaultPlan.parse(list(faults), [Path(f) for f in fault_files])
    # one loaded session can serve many replays
    replayer = replayer or Replayer(session, app=app, trust_session=trust_session)
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
