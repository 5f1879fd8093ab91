"""The simulator: the app's own handlers re-run on a virtual-time grid.

Each node is a `SimNode` (the ordinary node runtime with three things swapped: its clock
reads virtual time, its messages go through `SimGrid.route`, and its model and policy
steps take their recorded durations). Timing comes from the recording wherever the replay
follows it; where the replay leaves the recorded path, from the grid profile, drawn from
per-link RNGs seeded by (seed, link). Faults come from the plan, drawn from per-node fault
RNGs, so adding a fault never shifts the draws of the app's own `ctx.rng`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._errors import ModelError
from edgetrace._records import Span, SpanKind
from edgetrace.agents._app import App
from edgetrace.agents._grid import GridProfile
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._models import ModelResult, ModelRunner
from edgetrace.agents._node import NodeRuntime, StepKey, preview
from edgetrace.agents._rules import Decision, RuleEngine
from edgetrace.agents._sink import MemorySink
from edgetrace.replay._loop import VirtualLoop
from edgetrace.replay._recording import RecordedInput, Recording

__all__ = ["ReplayRun", "SimGrid", "SimNode"]

_S = 1_000_000_000


def _op(msg: Message) -> str:
    return msg.kind.value


class SimNode(NodeRuntime):
    """A node whose world is simulated: virtual clock, simulated links, recorded timings."""

    def __init__(self, grid: SimGrid, app: App, node: str, **kwargs: Any) -> None:
        super().__init__(app, node, grid.sink, seed=grid.seed, **kwargs)
        self.grid = grid
        self.fault_rng = random.Random(f"{grid.seed}/faults/{node}")
        self.down = False

    # One model session and one compiled policy per artifact for the whole grid: a replay runs
    # every node in one process, one step at a time, and runners are stateless between calls,
    # so eight tractors need not load the same ONNX file eight times (0.13 s of a 1 s replay).
    def load_artifact(self, kind: str, name: str) -> Any:
        paths = self._model_paths if kind == "model" else self._policy_paths
        key = (kind, name, str(paths.get(name, "")))
        shared = self.grid.shared.get(key)
        if shared is None:
            shared = self.grid.shared[key] = super().load_artifact(kind, name)
        return shared

    def close(self) -> None:
        """Shared runners are closed once, by the grid."""

    def now_ns(self) -> int:
        return self.grid.local_time(self.node, self.grid.loop.time_ns())

    def transmit(self, msg: Message, span: Span) -> None:
        self.grid.route(self, msg, span)

    def executes_actions(self) -> bool:
        return False  # an actuation is recorded, never executed, in replay

    def recorded(self, span: Span, key: StepKey) -> None:
        self.grid.keys[span.ref] = key

    def _duration(self, key: StepKey, kind: str, name: str) -> int:
        recorded = self.grid.recording.duration(key) if self.grid.recording else None
        if recorded is None and self.grid.recording is not None:
            recorded = self.grid.recording.median_duration.get((kind, name), 0)
        return recorded or 0

    async def run_model(self, runner: ModelRunner, inputs: Any, key: StepKey) -> ModelResult:
        duration = self._duration(key, "infer", runner.name)
        fault = self.grid.plan.model(self.node, runner.name, self.grid.loop.time_ns(), self.fault_rng) \
            if self.grid.plan else None
        if fault is not None:
            self.grid.fault_span(self, "model", fault.spec, key[0], {attr.FAULT_MODE: fault.mode})
            if fault.mode == "slow":
                duration = int(duration * (fault.factor or 1.0)) + int(fault.extra_ns or 0)
            elif fault.mode == "error":
                await asyncio.sleep(duration / _S)
                raise ModelError(f"model {runner.name!r}: injected fault ({fault.spec})", model=runner.name)
            else:
                result = _faulty_result(runner, inputs, fault.mode, getattr(fault, "tokens", 0))
                await asyncio.sleep(duration / _S)
                return result
        result = runner.run(inputs)
        await asyncio.sleep(duration / _S)
        return result

    async def run_policy(self, engine: RuleEngine, document: Any, timeout: float | None, key: StepKey) -> Decision:
        duration = self._duration(key, "decide", engine.name)
        fault = self.grid.plan.rule_timeout(self.node, engine.name, self.grid.loop.time_ns(), self.fault_rng) \
            if self.grid.plan else None
        if fault is not None:
            self.grid.fault_span(self, "rule_timeout", str(fault), key[0], {})
            await asyncio.sleep(timeout if timeout is not None else duration / _S)
            return Decision(None, None, [], timed_out=True)
        if timeout is not None and duration > timeout * _S:
            await asyncio.sleep(timeout)
            return Decision(None, None, [], timed_out=True)
        decision = engine.evaluate(document)
        await asyncio.sleep(duration / _S)
        return decision

    def state_refusal(self, msg: Message) -> str:
        if not self.grid.plan:
            return ""
        key = str((msg.payload or {}).get("key", ""))
        fault = self.grid.plan.state_unavailable(self.node, msg.kind.value, key, self.grid.loop.time_ns(),
                                                 self.fault_rng)
        return f"state store unavailable (injected: {fault})" if fault is not None else ""


def _faulty_result(runner: ModelRunner, inputs: Any, mode: str, tokens: int) -> ModelResult:
    """An empty or truncated output; runners that generate text can do it properly."""
    hook = getattr(runner, "run_faulty", None)
    if hook is not None:
        return hook(inputs, mode, tokens)
    return ModelResult(output=None, error=f"injected {mode}")


@dataclass
class ReplayRun:
    """What one replay produced: the spans, their causal positions and blobs."""

    spans: list[Span]
    keys: dict[str, StepKey]
    blobs: dict[str, bytes]
    faults_applied: int
    virtual_ns: int
    nodes: list[str] = field(default_factory=list)


class SimGrid:
    """All nodes of the app on one virtual-time loop."""

    def __init__(
        self,
        app: App,
        nodes: list[str],
        *,
        seed: int = 0,
        plan: Any = None,
        recording: Recording | None = None,
        profile: GridProfile | None = None,
        model_paths: Mapping[str, Any] | None = None,
        policy_paths: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.seed = seed
        self.plan = plan if plan else None
        self.recording = recording
        self.profile = profile or GridProfile("none")
        self.loop = VirtualLoop()
        self.sink = MemorySink()
        self.keys: dict[str, StepKey] = {}
        self.faults_applied = 0
        self._link_rngs: dict[tuple[str, str], random.Random] = {}
        self._paused_until: dict[str, int] = {}
        self.stopped_by = ""
        self.shared: dict[tuple[str, str, str], Any] = {}
        self.nodes: dict[str, SimNode] = {
            n: SimNode(self, app, n, model_paths=model_paths, policy_paths=policy_paths) for n in sorted(nodes)
        }

    # --- time and faults ----------------------------------------------------------------------

    def local_time(self, node: str, true_ns: int) -> int:
        return self.plan.local_time(node, true_ns) if self.plan else true_ns

    def fault_span(self, node: SimNode, fault: str, spec: str, trace: str, attrs: dict[str, Any]) -> None:
        self.faults_applied += 1
        node.recorder.record(
            SpanKind.FAULT, fault, trace=trace, start=node.now_ns(),
            attrs={attr.FAULT: spec, **attrs},
        )

    def _link_rng(self, src: str, dst: str) -> random.Random:
        rng = self._link_rngs.get((src, dst))
        if rng is None:
            rng = self._link_rngs[(src, dst)] = random.Random(f"{self.seed}/link/{src}->{dst}")
        return rng

    # --- messages -----------------------------------------------------------------------------

    def route(self, sender: SimNode, msg: Message, span: Span) -> None:
        if msg.dst not in self.nodes:
            self.fault_span(sender, "unroutable", f"no node {msg.dst!r}", msg.trace, {})
            return
        key = self.keys.get(span.ref)
        base: int | None
        known, base = self.recording.delay(key) if (self.recording and key) else (False, None)
        if not known:
            link = self.profile.link(msg.src, msg.dst)
            base = link.draw(self._link_rng(msg.src, msg.dst))
            if base is None and self.recording is not None:
                base = self.recording.link_median.get((msg.src, msg.dst))
        if base is None:
            return  # lost in the recording (or by the profile): lost again
        now = self.loop.time_ns()
        delays = [base]
        if self.plan:
            size = len(repr(msg.payload))
            delays = self.plan.message(msg.src, msg.dst, _op(msg), msg.topic, size, now, base, sender.fault_rng)
            if delays != [base]:
                effect = "dropped" if not delays else (
                    f"duplicated ×{len(delays)}" if len(delays) > 1 else f"delayed {(delays[0] - base) / 1e6:+.0f} ms")
                effect = f"{_op(msg)} {msg.src}→{msg.dst} {effect}"
                self.fault_span(sender, "network", effect, msg.trace,
                                {attr.FAULT_MESSAGE: span.ref, attr.FAULT_TO: msg.dst})
        for delay in delays:
            self.loop.call_at_ns(now + max(0, int(delay)), self._arrive, msg)

    def _arrive(self, msg: Message) -> None:
        node = self.nodes[msg.dst]
        if node.down:
            return
        held = self._paused_until.get(msg.dst, 0)
        if held > self.loop.time_ns():
            self.loop.call_at_ns(held, self._arrive, msg)
            return
        node.deliver(msg)

    # --- node lifecycle -----------------------------------------------------------------------

    def _crash(self, name: str, restart: int | None) -> None:
        node = self.nodes[name]
        node.down = True
        for task in sorted(node.tasks, key=lambda t: t.get_name()):
            task.cancel()
        self.fault_span(node, "crash", f"crash(node={name})", "", {})
        if restart is not None:
            self.loop.call_at_ns(restart, self._restart, name)

    def _restart(self, name: str) -> None:
        node = self.nodes[name]
        node.down = False
        self.fault_span(node, "restart", f"restart(node={name})", "", {})

    def _pause(self, name: str, end: int) -> None:
        self._paused_until[name] = max(self._paused_until.get(name, 0), end)
        self.fault_span(self.nodes[name], "pause", f"pause(node={name})", "", {attr.FAULT_UNTIL_NS: end})

    def _input(self, item: RecordedInput | Any) -> None:
        node = self.nodes.get(item.node)
        if node is None or node.down:
            return
        held = self._paused_until.get(item.node, 0)
        if held > self.loop.time_ns():
            self.loop.call_at_ns(held, self._input, item)
            return
        node.inject(item.topic, item.payload, item.trace)

    # --- running ------------------------------------------------------------------------------

    def schedule_inputs(self, inputs: list[Any]) -> None:
        """RecordedInputs carry ns (the recording's unit); a scenario's ScheduledInputs carry seconds."""
        for item in inputs:
            at = item.at if isinstance(item, RecordedInput) else round(item.at * 1_000_000_000)
            self.loop.call_at_ns(int(at), self._input, item)

    def run(
        self, inputs: list[Any], *, until_ns: int, progress: Any = None,
        stop_when: Callable[[list[Span]], bool] | None = None, check_every_ns: int = 10_000_000,
    ) -> ReplayRun:
        """Feed inputs at their times and run until `until_ns`, until nothing is left to do,
        or until `stop_when(spans so far)` holds (checked every `check_every_ns` of virtual time)."""
        if self.plan:
            for name in self.nodes:
                for at, restart in self.plan.crashes(name):
                    self.loop.call_at_ns(at, self._crash, name, restart)
                for start, end in self.plan.pauses(name):
                    self.loop.call_at_ns(start, self._pause, name, end)
        self.schedule_inputs(inputs)

        async def main() -> None:
            step = _S if stop_when is None else max(1, check_every_ns)
            while self.loop.time_ns() < until_ns:
                await asyncio.sleep(min(step, until_ns - self.loop.time_ns()) / _S)
                if progress is not None:
                    progress(self.loop.time_ns(), until_ns)
                if stop_when is not None and stop_when(self.sink.spans):
                    self.stopped_by = "condition"
                    break
                busy = any(n.tasks for n in self.nodes.values())
                if not busy and not any(not t._cancelled for t in self.loop._scheduled):
                    break
            for node in self.nodes.values():
                for task in sorted(node.tasks, key=lambda t: t.get_name()):
                    task.cancel()
            await asyncio.sleep(0)

        try:
            self.loop.run_until_complete(main())
        finally:
            for key in sorted(self.shared):
                self.shared[key].close()
            self.loop.close()
        return ReplayRun(
            spans=list(self.sink.spans), keys=dict(self.keys), blobs=dict(self.sink.blobs),
            faults_applied=self.faults_applied, virtual_ns=self.loop.time_ns(), nodes=sorted(self.nodes),
        )


def describe_payload(value: Any) -> Any:
    return preview(value)


__all__ += ["MessageKind", "describe_payload"]
