"""The simulated world of one node: virtual time, simulated links, recorded timings, faults.

Given to an ordinary `NodeRuntime` by the simulator. Its clock is the virtual loop's (as the
node's local clock reads it under skew and drift); its messages go through the `SimNetwork`;
a model or policy step really runs (ONNX Runtime, regopy — one loaded artifact shared by the
whole grid) unless the inference memo holds it (the same artifact and byte-identical inputs at
the same causal position: the recorded output, `_memo.py`), and then takes the duration it took
in the recording; the fault injector may break the step instead; actuations are recorded,
never carried out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace._artifacts import callable_sha256
from edgetrace._errors import ModelError
from edgetrace._records import Span, SpanKind
from edgetrace._snapshot import is_snapshot
from edgetrace._stepkey import StepKey
from edgetrace.agents._app import App, Artifact
from edgetrace.agents._message import Message
from edgetrace.agents._models import ModelResult, ModelRunner
from edgetrace.agents._recorder import Recorder, StepScope
from edgetrace.agents._rules import Decision, RuleEngine
from edgetrace.agents._sink import MemorySink
from edgetrace.agents._world import NodeWorld
from edgetrace.replay._loop import VirtualLoop
from edgetrace.replay.faults import FaultInjector

if TYPE_CHECKING:
    from edgetrace.replay._counterfactual import ShadowLog
    from edgetrace.replay._memo import InferenceMemo
    from edgetrace.replay._network import Lifecycle, SimNetwork
    from edgetrace.replay._recording import Recording

__all__ = ["FaultLog", "SharedArtifacts", "SimWorld"]

_S = 1_000_000_000


class FaultLog:
    """Records each injected effect as a FAULT span on the node it hit, and counts them."""

    def __init__(self) -> None:
        self.applied = 0

    def emit(self, recorder: Recorder, now_ns: int, fault: str, spec: str, trace: str,
             attrs: dict[str, Any]) -> None:
        self.applied += 1
        recorder.record(SpanKind.FAULT, fault, trace=trace, start=now_ns, attrs={attr.FAULT: spec, **attrs})


class SharedArtifacts:
    """One model session and one compiled policy per artifact for the whole simulated grid.

    A replay runs every node in one process, one step at a time, and runners are stateless
    between calls, so eight tractors need not load the same ONNX file eight times (0.13 s of
    a 1 s replay). Closed once, by the grid.
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str, str], ModelRunner | RuleEngine] = {}

    def get(self, kind: str, name: str, path: Artifact | None,
            build: Callable[[], ModelRunner | RuleEngine]) -> ModelRunner | RuleEngine:
        key = (kind, name, f"py:{callable_sha256(path)}" if callable(path) else str(path or ""))
        found = self._loaded.get(key)
        if found is None:
            found = self._loaded[key] = build()
        return found

    def close(self) -> None:
        for key in sorted(self._loaded):
            self._loaded[key].close()


class SimWorld(NodeWorld):
    """One node's view of the simulation."""

    def __init__(self, node: str, *, loop: VirtualLoop, sink: MemorySink, network: SimNetwork,
                 lifecycle: Lifecycle, injector: FaultInjector, faults: FaultLog, artifacts: SharedArtifacts,
                 positions: dict[str, StepKey], recording: Recording | None,
                 memo: InferenceMemo | None = None) -> None:
        self.node = node
        self._lifecycle = lifecycle
        self.sink = sink
        self._loop = loop
        self._network = network
        self._injector = injector
        self._faults = faults
        self._artifacts = artifacts
        self._positions = positions
        self._recording = recording
        self._memo = memo
        self.recorder: Recorder | None = None  # the node's, bound once its runtime exists
        self.shadow: ShadowLog | None = None  # teacher-forced counterfactuals: substitutes run alongside

    def bind(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def now_ns(self) -> int:
        return self._injector.local_time(self.node, self._loop.time_ns())

    def transmit(self, msg: Message, span: Span) -> None:
        # a reply or a send recorded at a paced start leaves then, not before
        self._network.route(self.node, msg, span, hold_ns=max(0, span.start - self.now_ns()))

    # --- the recorded timeline ---------------------------------------------------------------

    def _paced(self, scope: StepScope, key: StepKey) -> int | None:
        """When this step started in the recording, relative to the handler's previous step:
        the previous step's end here plus the recorded time between the two; None off the
        recorded path."""
        recording, last = self._recording, scope.last_step
        if recording is None or last is None:
            return None
        now_rec, prev_rec = recording.by_key.get(key), recording.by_key.get(last[0])
        if now_rec is None or prev_rec is None:
            return None
        return last[1] + max(0, now_rec.start - prev_rec.end)

    async def pace(self, scope: StepScope, key: StepKey) -> None:
        target = self._paced(scope, key)
        if target is not None:
            await self._sleep_ns(target - self.now_ns())

    def start_at(self, scope: StepScope, key: StepKey) -> int:
        now = self.now_ns()
        target = self._paced(scope, key)
        return now if target is None else max(now, target)

    async def _duration_sleep(self, ns: int) -> None:
        """A step's recorded duration passes (a zero duration still yields, as a step would)."""
        if ns <= 0:
            await asyncio.sleep(0)
        else:
            await self._sleep_ns(ns)

    async def _sleep_ns(self, ns: int) -> None:
        """Sleep exactly `ns` of virtual time (no float rounding: a replayed timestamp is exact)."""
        if ns <= 0:
            return
        future = self._loop.create_future()
        self._loop.call_at_ns(self._loop.time_ns() + ns, self._fire, _resolve, (future,))
        await future

    async def sleep(self, seconds: float) -> None:
        await self._sleep_ns(round(seconds * _S))

    def call_later(self, seconds: float, callback: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        return self._loop.call_at_ns(self._loop.time_ns() + round(seconds * _S), self._fire, callback, args)

    def _fire(self, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        """A timer of this node is due: a paused node feels it when it resumes, a crashed one never."""
        if self.node in self._lifecycle.down:
            return
        held = self._lifecycle.held_until(self.node)
        if held > self._loop.time_ns():
            self._loop.call_at_ns(held, self._fire, callback, args)
            return
        callback(*args)

    def observe(self, span: Span, key: StepKey) -> None:
        self._positions[span.ref] = key
        self.replay_history_records(span.seq, snapshots=False)

    def idle(self) -> None:
        # the recording took its snapshot when the node went idle after this seq: so does the replay
        if self.recorder is not None:
            self.replay_history_records(self.recorder.seq)

    def replay_history_records(self, after_seq: int, *, snapshots: bool = True) -> None:
        """Re-emit the records that are not steps (a simulated recording's faults, snapshots) the
        recording has right after `after_seq` on this node. A fault record follows its step at
        once; a snapshot waits for the node to go idle (`idle`), where the recording took it — a
        reply the step sent left before it. A snapshot comes back without its state blobs: the
        state is the recording's, which a replay under faults need not share."""
        records = self._recording.history_records.get(self.node) if self._recording is not None else None
        if not records or self.recorder is None:
            return
        seq = after_seq + 1
        while seq in records:
            f = records[seq]
            if not snapshots and is_snapshot(f):
                return
            self.recorder.record(f.kind, f.name, trace=f.trace, start=f.start, end=f.end, attrs=f.attrs,
                                 error=f.error)
            seq += 1

    def load(self, app: App, kind: str, name: str, path: Artifact | None) -> ModelRunner | RuleEngine:
        return self._artifacts.get(kind, name, path, lambda: super(SimWorld, self).load(app, kind, name, path))

    def _fault(self, fault: str, spec: str, trace: str, attrs: dict[str, Any]) -> None:
        assert self.recorder is not None
        self._faults.emit(self.recorder, self.now_ns(), fault, spec, trace, attrs)

    def _duration(self, key: StepKey, kind: str, name: str) -> int:
        return self._recording.step_duration(key, kind, name) if self._recording is not None else 0

    async def run_model(self, runner: ModelRunner, inputs: Any, key: StepKey) -> ModelResult:
        duration = self._duration(key, "infer", runner.name)
        fault = self._injector.model(self.node, runner.name, self._loop.time_ns(), key)
        if fault is not None:
            self._fault("model", fault.spec, key[0], {attr.FAULT_MODE: fault.mode})
            if fault.mode == "slow":
                duration = int(duration * (fault.factor or 1.0)) + int(fault.extra_ns or 0)
            elif fault.mode == "error":
                await self._duration_sleep(duration)
                raise ModelError(f"model {runner.name!r}: injected fault ({fault.spec})", model=runner.name)
            else:
                result = _faulty_result(runner, inputs, fault.mode, fault.tokens)
                await self._duration_sleep(duration)
                return result
        memo = self._memo.model(runner, inputs, key) if self._memo is not None else None
        result = memo if memo is not None else runner.run(inputs)
        if self.shadow is not None:
            self.shadow.model(runner.name, key, inputs, result)
        await self._duration_sleep(duration)
        return result

    async def run_policy(self, engine: RuleEngine, document: Any, timeout: float | None,
                         key: StepKey) -> Decision:
        duration = self._duration(key, "decide", engine.name)
        fault = self._injector.rule_timeout(self.node, engine.name, self._loop.time_ns(), key)
        if fault is not None:
            self._fault("rule_timeout", str(fault), key[0], {})
            await self._duration_sleep(round(timeout * _S) if timeout is not None else duration)
            return Decision(None, None, [], timed_out=True)
        if timeout is not None and duration > timeout * _S:
            await self._duration_sleep(round(timeout * _S))
            return Decision(None, None, [], timed_out=True)
        memo = self._memo.policy(engine, document, key) if self._memo is not None else None
        decision = memo if memo is not None else engine.evaluate(document)
        if self.shadow is not None:
            self.shadow.policy(engine.name, key, document, decision)
        await self._duration_sleep(duration)
        return decision

    def state_refusal(self, msg: Message) -> str:
        key = str((msg.payload or {}).get("key", ""))
        fault = self._injector.state_refusal(self.node, msg.kind.value, key, self._loop.time_ns(),
                                             self._positions.get(msg.cause))
        return f"state store unavailable (injected: {fault})" if fault is not None else ""


def _resolve(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


def _faulty_result(runner: ModelRunner, inputs: Any, mode: str, tokens: int) -> ModelResult:
    """An empty or truncated output; runners that generate text can do it properly."""
    hook = getattr(runner, "run_faulty", None)
    if hook is not None:
        result: ModelResult = hook(inputs, mode, tokens)
        return result
    return ModelResult(output=None, error=f"injected {mode}")
