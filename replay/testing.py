"""Testing an app under faults: a simulated grid a test drives, and assertions over causality.

This is what the pytest plugin's fixtures hand out, usable without pytest too:

    grid = GridHarness(app, ["hub", "tractor-01"], seed=7, faults=["latency(op=state.*, delay=2s)"])
    grid.input("tractor-01", "frame", {...}, at="0.1s")
    run = grid.run(until="30s")
    run.assert_invariants("no-spray-without-weed")

Everything runs on the replayer's virtual-time loop: a 30 s scenario takes milliseconds and
the same seed gives the same spans. Assertion failures are `CausalAssertionError`s whose
message shows the spans involved and the causal chain that led to them, because "assert
False" is not something an engineer on call can act on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from edgetrace._errors import UsageError
from edgetrace._index import CausalIndex
from edgetrace._records import Manifest, Span, is_session_id
from edgetrace._session import SessionWriter
from edgetrace._vclock import Order
from edgetrace._version import __version__
from edgetrace.agents._app import App
from edgetrace.agents._grid import GridProfile, parse_duration
from edgetrace.replay._findings import step_row
from edgetrace.replay._invariants import (
    History,
    Invariant,
    Precedes,
    Selector,
    Violation,
    check_all,
    parse_selector,
)
from edgetrace.replay._recording import RecordedInput
from edgetrace.replay._report import _step_line
from edgetrace.replay._sim import SimGrid
from edgetrace.replay._substitutions import parse_substitutions
from edgetrace.replay._validate import Universe, check_faults, check_invariants
from edgetrace.replay.faults import FaultPlan

__all__ = [
    "CausalAssertionError",
    "GridHarness",
    "GridResult",
    "assert_concurrent",
    "assert_every_preceded",
    "assert_happens_before",
    "assert_invariants",
    "format_chain",
]

SpanLike = Span | str | Selector


class CausalAssertionError(AssertionError):
    """An assertion about a run's causal history failed; the message holds the chain."""


def _ns(value: Any, what: str) -> int:
    return parse_duration(value, what=what)


@dataclass
class GridResult:
    """A finished simulated run: its spans, causal index and everything needed to save it."""

    app: App
    spans: list[Span]
    blobs: dict[str, bytes]
    nodes: list[str]
    seed: int
    faults: list[str]
    profile: GridProfile
    virtual_ns: int
    stopped_by: str = ""
    inputs: list[RecordedInput] = field(default_factory=list)
    #: calls a replay cannot repeat that handler code made, with their lines (see `_sandbox`)
    nondeterminism: list[dict[str, Any]] = field(default_factory=list)
    #: invariant expressions the test checked that the app does not declare (the printed
    #: `edgetrace replay` line passes them as --check, so it checks what the test did)
    checks: list[str] = field(default_factory=list)

    @cached_property
    def history(self) -> History:
        """Built on first use: a run that is only saved or counted never pays for the index."""
        return History(self.spans)

    @property
    def index(self) -> CausalIndex:
        return self.history.index

    # --- finding steps ------------------------------------------------------------------------

    def find(self, selector: str | Selector) -> list[Span]:
        """Spans matching a selector such as `act(spray) at tractor-*` or `infer where output.type == "weed"`."""
        sel = parse_selector(selector) if isinstance(selector, str) else selector
        return [s for s in self.spans if sel.matches(s)]

    def one(self, which: SpanLike) -> Span:
        """Exactly one span: by object, by ref (`node:seq`) or by a selector matching one step."""
        __tracebackhide__ = True
        if isinstance(which, Span):
            return which
        if isinstance(which, str):
            found = self.history.get(which)
            if found is not None:
                return found
        matches = self.find(which)
        if len(matches) != 1:
            listing = "".join(f"\n    {_line(s)}" for s in matches[:10])
            more = f"\n    ... and {len(matches) - 10} more" if len(matches) > 10 else ""
            raise CausalAssertionError(
                f"{which!s} matches {len(matches)} steps, expected exactly one{listing}{more}"
            )
        return matches[0]

    def acts(self, name: str = "*") -> list[Span]:
        return self.find(f"act({name})")

    # --- invariants and assertions ------------------------------------------------------------

    def violations(self, *names: str | Invariant) -> list[Violation]:
        """Violations of the named invariants (the app's declared ones when none are named)."""
        invariants = _resolve(self.app, names)
        check_invariants(invariants, Universe.of(self.app, self.nodes, self.spans, where="the grid"))
        for name in names:
            if isinstance(name, str) and name not in self.app.invariants and name not in self.checks:
                self.checks.append(name)
        return check_all(invariants, self.history)

    def assert_invariants(self, *names: str | Invariant) -> None:
        __tracebackhide__ = True
        assert_invariants(self, *names)

    def assert_happens_before(self, a: SpanLike, b: SpanLike) -> None:
        __tracebackhide__ = True
        assert_happens_before(self, a, b)

    def assert_concurrent(self, a: SpanLike, b: SpanLike) -> None:
        __tracebackhide__ = True
        assert_concurrent(self, a, b)

    def assert_every_preceded(self, target: str, required: str) -> None:
        __tracebackhide__ = True
        assert_every_preceded(self, target, required)

    def assert_replays(self) -> None:
        """The run replays faithfully: saved and replayed, every step comes back the same, and no
        handler did anything a replay cannot repeat (the check Temporal's users ask for)."""
        __tracebackhide__ = True
        import tempfile

        from edgetrace.replay._replayer import Replayer

        problems = [f"{n['call']} at {n['at']}" + (f" ({n['count']}×)" if n["count"] > 1 else "")
                    for n in self.nondeterminism]
        with tempfile.TemporaryDirectory(prefix="edgetrace-auto-replay-") as tmp:
            report, _ = Replayer(self.save(Path(tmp) / "run.ets"), app=self.app).run()
        problems += [d.describe() for d in report.divergences[:5]]
        if problems:
            raise CausalAssertionError(
                f"the run does not replay faithfully (seed {self.seed}; fidelity {report.fidelity:.1%}):\n"
                + "\n".join(f"  {p}" for p in problems))

    # --- saving -------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the run as a session that `edgetrace replay` and `edgetrace explore` can open.

        Injected faults are already in the recorded timings and FAULT spans, so a faithful
        replay of the saved session reproduces this run; replaying it with the same faults
        again would apply them twice.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(
            # named after its file (what a trust list entry or a hub needs to tell sessions apart)
            session_id=path.stem if is_session_id(path.stem) else "",
            app=self.app.name, app_ref=self.app.reference(), nodes=list(self.nodes), seed=self.seed,
            edgetrace=__version__,
            meta={"grid": self.profile.to_dict(), "faults": list(self.faults), "source": "edgetrace.replay.testing"},
        )
        models, policies = self.app.artifact_hashes()
        manifest.models, manifest.policies = models, policies
        if path.exists():
            path.unlink()
        with SessionWriter(path, manifest, compress="zstd") as writer:  # written once: small
            for sha in sorted(self.blobs):
                writer.put_blob(self.blobs[sha], sha)
            writer.append(self.spans)
            writer.seal()
        return path


class GridHarness:
    """A simulated grid for one test: feed inputs, inject faults, run in virtual time."""

    def __init__(
        self,
        app: App,
        nodes: Sequence[str],
        *,
        profile: GridProfile | Mapping[str, Any] | None = None,
        seed: int = 0,
        faults: Sequence[str] = (),
        fault_files: Sequence[str | os.PathLike[str]] = (),
        models: Mapping[str, str | os.PathLike[str] | Callable[[Any], Any]] | None = None,
        policies: Mapping[str, str | os.PathLike[str] | Callable[[Any], Any]] | None = None,
        auto_replay: bool = False,
        snapshot_every: Any = 0,
    ) -> None:
        if not isinstance(app, App):
            raise UsageError(f"GridHarness needs an edgetrace App, got {type(app).__name__}")
        if not nodes:
            raise UsageError("GridHarness needs at least one node")
        self.app = app
        self.nodes = sorted(set(nodes))
        if isinstance(profile, Mapping):
            profile = GridProfile.from_mapping(str(profile.get("name", "test")), profile)
        self.profile = profile or GridProfile("none")
        self.seed = seed
        self.fault_specs = list(faults)
        self.fault_files = [Path(f) for f in fault_files]
        # swapped artifacts: files, or Python functions standing in for a model or a policy
        self.models = parse_substitutions(models or {}, what="model")
        self.policies = parse_substitutions(policies or {}, what="policy")
        self._inputs: list[RecordedInput] = []
        self.result: GridResult | None = None
        self.auto_replay = auto_replay  # every run is also replayed and must come back the same
        # periodic state snapshots ("10s"; 0 = none): the saved run can be replayed from a cut
        self.snapshot_every_ns = _ns(snapshot_every, "snapshot_every")
        FaultPlan.parse(self.fault_specs, self.fault_files)  # a bad spec fails at construction

    def fault(self, *specs: str) -> GridHarness:
        """Add fault specs (the CLI's grammar, docs/faults.md)."""
        FaultPlan.parse(list(specs))
        self.fault_specs.extend(specs)
        return self

    def input(self, node: str, topic: str, payload: Any, *, at: Any = 0, trace: str | None = None) -> GridHarness:
        """An external input arriving at `node` at virtual time `at` (seconds or '150ms')."""
        if node not in self.nodes:
            raise UsageError(f"input for unknown node {node!r}; the grid has: {', '.join(self.nodes)}")
        trace = trace or f"{topic}-{len(self._inputs) + 1:04d}"
        self._inputs.append(RecordedInput(_ns(at, "input time"), node, topic, trace, payload))
        return self

    def inputs(self, items: Iterable[Any]) -> GridHarness:
        """Many inputs, e.g. a scenario's ScheduledInputs (`at` in seconds) or (at, node, topic, payload)."""
        for item in items:
            if isinstance(item, tuple):
                at, node, topic, payload = item
                self.input(node, topic, payload, at=at)
            else:
                self.input(item.node, item.topic, item.payload, at=item.at, trace=item.trace or None)
        return self

    def run(self, *, until: Any = "60s", stop_when: Callable[[list[Span]], bool] | str | None = None) -> GridResult:
        """Run until the virtual deadline, until the grid is idle, or until `stop_when` holds.

        `stop_when` is a predicate over the spans so far, or a selector string meaning
        "stop once a step like this has happened" (e.g. `act(spray)`).
        """
        plan = FaultPlan.parse(self.fault_specs, self.fault_files)
        universe = Universe.of(self.app, self.nodes, where="the grid")
        universe.topics |= {i.topic for i in self._inputs}
        check_faults(plan, universe)
        predicate = stop_when
        if isinstance(stop_when, str):
            sel = parse_selector(stop_when)
            predicate = lambda spans: any(sel.matches(s) for s in spans)  # noqa: E731
        grid = SimGrid(self.app, self.nodes, seed=self.seed, plan=plan if plan else None, profile=self.profile,
                       model_paths=self.models, policy_paths=self.policies,
                       snapshot_every_ns=self.snapshot_every_ns)
        inputs = sorted(self._inputs, key=lambda i: (i.at, i.node, i.trace))
        run = grid.run(inputs, until_ns=_ns(until, "until"), stop_when=predicate)  # type: ignore[arg-type]
        self.result = GridResult(
            app=self.app, spans=run.spans, blobs=run.blobs, nodes=run.nodes, seed=self.seed,
            faults=plan.specs() if plan else [], profile=self.profile, virtual_ns=run.virtual_ns,
            stopped_by=grid.stopped_by or ("deadline" if run.virtual_ns >= _ns(until, "until") else "idle"),
            inputs=inputs, nondeterminism=run.nondeterminism,
        )
        if self.auto_replay:
            __tracebackhide__ = True
            self.result.assert_replays()
        return self.result


# --- assertions ------------------------------------------------------------------------------------


def _line(span: Span) -> str:
    """One step as the replay report prints it, plus its trace (a test's run has many)."""
    return f"{_step_line(step_row(span))}  [trace {span.trace}]"


def format_chain(history: History, span: Span, *, limit: int = 15) -> str:
    """The steps that led to `span`, one per line, oldest first."""
    return "\n".join(f"    {_line(s)}" for s in history.chain(span, limit=limit))


def _chain_block(run: GridResult, span: Span, title: str) -> str:
    return f"  {title} {span.ref} — causal chain:\n{format_chain(run.history, span)}"


def _order(run: GridResult, a: Span, b: Span) -> Order:
    if a.ref == b.ref:
        return Order.EQUAL
    if run.index.happens_before(a, b):
        return Order.BEFORE
    if run.index.happens_before(b, a):
        return Order.AFTER
    return Order.CONCURRENT


def _assert_order(run: GridResult, a: SpanLike, b: SpanLike, want: Order, expectation: str) -> None:
    __tracebackhide__ = True
    sa, sb = run.one(a), run.one(b)
    order = _order(run, sa, sb)
    if order is want:
        return
    raise CausalAssertionError(
        f"expected A={sa.ref} {expectation} B={sb.ref}, but A is {order.value} B\n"
        f"{_chain_block(run, sa, 'A')}\n{_chain_block(run, sb, 'B')}"
    )


def assert_happens_before(run: GridResult, a: SpanLike, b: SpanLike) -> None:
    """`a` → `b` in the happens-before order (not by timestamps, which may be skewed)."""
    __tracebackhide__ = True
    _assert_order(run, a, b, Order.BEFORE, "to happen before")


def assert_concurrent(run: GridResult, a: SpanLike, b: SpanLike) -> None:
    """Neither step could have influenced the other."""
    __tracebackhide__ = True
    _assert_order(run, a, b, Order.CONCURRENT, "to be concurrent with")


def assert_every_preceded(run: GridResult, target: str, required: str) -> None:
    """Every step matching `target` has a step matching `required` in its causal past, in its trace."""
    __tracebackhide__ = True
    expr = f"every {target} after {required}"
    inv = Precedes(expr, parse_selector(target), parse_selector(required))
    if expr not in run.checks:
        run.checks.append(expr)
    _raise_if(run, check_all([inv], run.history))


def assert_invariants(run: GridResult, *names: str | Invariant) -> None:
    """The named invariants (declared names or expressions; all declared ones when none given) hold."""
    __tracebackhide__ = True
    _raise_if(run, run.violations(*names))


def _raise_if(run: GridResult, violations: list[Violation], *, shown: int = 3) -> None:
    __tracebackhide__ = True
    if not violations:
        return
    blocks = []
    for v in violations[:shown]:
        span = run.history.get(v.span)
        chain = format_chain(run.history, span) if span is not None else ""
        blocks.append(f"  [{v.invariant}] {v.message}\n{chain}")
    more = f"\n  ... and {len(violations) - shown} more" if len(violations) > shown else ""
    names = sorted({v.invariant for v in violations})
    raise CausalAssertionError(
        f"{len(violations)} violation(s) of {', '.join(names)} (seed {run.seed}"
        f"{', faults: ' + '; '.join(run.faults) if run.faults else ''})\n" + "\n".join(blocks) + more
    )


def _resolve(app: App, names: Sequence[str | Invariant]) -> list[Invariant]:
    from edgetrace.replay._invariants import resolve

    declared = dict(app.invariants)
    if not names:
        return resolve(sorted(declared), declared)
    found: list[Invariant] = []
    for name in names:
        found.extend([name] if isinstance(name, Invariant) else resolve([name], declared))
    return found
