"""The simulator: the app's own handlers re-run on a virtual-time grid.

Every node is an ordinary `NodeRuntime` given a `SimWorld` (virtual clock, simulated links,
recorded step durations, injected faults) — the same runtime class an agent runs live. The
grid owns the virtual loop, the network, node lifecycles (crash, restart, pause) and the
input schedule. Timing comes from the recording wherever the replay follows it; where it
leaves the recorded path, from the grid profile, drawn from per-link RNGs seeded by
(seed, link). Faults come from the injector, drawn from per-node fault RNGs, so adding a
fault never shifts the draws of the app's own `ctx.rng`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from edgetrace import _attrs as attr
from edgetrace._records import Span
from edgetrace._stepkey import StepKey
from edgetrace.agents._app import App, Artifact
from edgetrace.agents._grid import GridProfile
from edgetrace.agents._node import NodeRuntime
from edgetrace.agents._sandbox import Sandbox
from edgetrace.agents._sink import MemorySink
from edgetrace.replay._counterfactual import ShadowLog
from edgetrace.replay._loop import VirtualLoop
from edgetrace.replay._memo import InferenceMemo
from edgetrace.replay._network import Lifecycle, SimNetwork
from edgetrace.replay._recording import RecordedInput, Recording
from edgetrace.replay._resume import CutStart
from edgetrace.replay._watchdog import Watchdog
from edgetrace.replay._world import FaultLog, SharedArtifacts, SimWorld
from edgetrace.replay.faults import FaultInjector, FaultPlan, NodeEvent, PlanInjector

__all__ = ["ReplayRun", "SimGrid"]

_S = 1_000_000_000


class _Input(Protocol):
    @property
    def at(self) -> float | int: ...
    @property
    def node(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def trace(self) -> str: ...
    @property
    def payload(self) -> Any: ...


@dataclass
class ReplayRun:
    """What one replay produced: the spans, their causal positions and blobs."""

    spans: list[Span]
    keys: dict[str, StepKey]
    blobs: dict[str, bytes]
    faults_applied: int
    virtual_ns: int
    nodes: list[str] = field(default_factory=list)
    fault_counts: list[tuple[str, int]] = field(default_factory=list)  # (spec, applied) in plan order
    nondeterminism: list[dict[str, Any]] = field(default_factory=list)  # calls caught at app lines
    memo: dict[str, int] = field(default_factory=dict)  # inference memo: hits, misses, verified


class SimGrid:
    """All nodes of the app on one virtual-time loop."""

    def __init__(
        self,
        app: App,
        nodes: list[str],
        *,
        seed: int = 0,
        plan: FaultPlan | None = None,
        injector: FaultInjector | None = None,
        recording: Recording | None = None,
        profile: GridProfile | None = None,
        model_paths: Mapping[str, Artifact] | None = None,
        policy_paths: Mapping[str, Artifact] | None = None,
        epoch_ns: int = 0,
        watchdog_s: float = 10.0,
        memo: InferenceMemo | None = None,
        artifacts: SharedArtifacts | None = None,
        shadow: ShadowLog | None = None,
        snapshot_every_ns: int = 0,
    ) -> None:
        self.app = app
        self.seed = seed
        self.plan = plan if plan else None
        self.injector = injector or (PlanInjector(plan, seed) if plan else FaultInjector())
        self.recording = recording
        self.profile = profile or GridProfile("none")
        self.loop = VirtualLoop()
        self.sandbox = Sandbox(now_ns=self.loop.time_ns, epoch_ns=epoch_ns, seed=seed)
        self.loop.on_nondeterminism = self.sandbox.caught
        self.watchdog = Watchdog(self.loop, after_s=watchdog_s)
        self.sink = MemorySink()
        self.keys: dict[str, StepKey] = {}
        self.stopped_by = ""
        self.faults = FaultLog()
        self.lifecycle = Lifecycle()
        self._restarts: dict[str, int] = {}
        self._resumed: CutStart | None = None
        self.memo = memo
        # artifacts given by the caller outlive this grid (a sweep loads each model once per process)
        self._own_artifacts = artifacts is None
        self.artifacts = artifacts if artifacts is not None else SharedArtifacts()
        self.network = SimNetwork(self.loop, seed=seed, profile=self.profile, injector=self.injector,
                                  lifecycle=self.lifecycle, positions=self.keys, recording=recording,
                                  fault=self._fault)
        self.worlds: dict[str, SimWorld] = {}
        self.nodes: dict[str, NodeRuntime] = {}
        for name in sorted(nodes):
            world = SimWorld(name, loop=self.loop, sink=self.sink, network=self.network,
                             lifecycle=self.lifecycle, injector=self.injector,
                             faults=self.faults, artifacts=self.artifacts, positions=self.keys, recording=recording,
                             memo=memo)
            # a replay writes the recording's snapshots back; only a simulated recording takes its own
            runtime = NodeRuntime(app, name, world, seed=seed, models=model_paths, policies=policy_paths,
                                  snapshot_every_ns=snapshot_every_ns if recording is None else 0)
            world.bind(runtime.recorder)
            world.shadow = shadow
            self.network.attach(name, runtime.deliver)
            self.worlds[name] = world
            self.nodes[name] = runtime

    def resume(self, start: CutStart) -> None:
        """Start from a consistent cut instead of the beginning (`replay/_resume.py`): each node
        cut at a snapshot gets its state, seq, clock and step numbering back; `run` then starts
        the clock at the cut, feeds the inputs after it and re-sends what was in flight."""
        self.loop.start_at_ns(start.cut.start_ns)
        self.keys.update(start.prefix_keys)
        for name, place in sorted(start.nodes.items()):
            runtime = self.nodes[name]
            runtime.recorder.resume(place.seq, place.clock)
            runtime.keys.resume(place.counts)
            runtime.snapshots.restore(place.state)
        self._resumed = start

    @property
    def faults_applied(self) -> int:
        return self.faults.applied

    def _fault(self, node: str, fault: str, spec: str, trace: str, attrs: dict[str, Any]) -> None:
        self.faults.emit(self.nodes[node].recorder, self.worlds[node].now_ns(), fault, spec, trace, attrs)

    # --- node lifecycle -----------------------------------------------------------------------

    def _crash(self, name: str, restart: int | None) -> None:
        self.lifecycle.down.add(name)
        self.nodes[name].crash()
        self._fault(name, "crash", f"crash(node={name})", "", {})
        if restart is not None:
            self.loop.call_at_ns(restart, self._restart, name)

    def _restart(self, name: str) -> None:
        self.lifecycle.down.discard(name)
        self._restarts[name] = self._restarts.get(name, 0) + 1
        self._fault(name, "restart", f"restart(node={name})", "", {})
        self.nodes[name].start(f"{name}/restart-{self._restarts[name]}")

    def _start(self, name: str) -> None:
        if name not in self.lifecycle.down:
            self.nodes[name].start(f"{name}/start")

    def _pause(self, name: str, end: int | None) -> None:
        end = end if end is not None else self.loop.time_ns()
        paused = self.lifecycle.paused_until
        paused[name] = max(paused.get(name, 0), end)
        self._fault(name, "pause", f"pause(node={name})", "", {attr.FAULT_UNTIL_NS: end})

    def _schedule(self, event: NodeEvent) -> None:
        self.loop.call_at_ns(event.at, self._happen, event)

    def _happen(self, event: NodeEvent) -> None:
        self.injector.happened(event)
        if event.action == "crash":
            self._crash(event.node, event.until)
        elif event.action == "pause":
            self._pause(event.node, event.until)

    def _input(self, item: _Input) -> None:
        node = self.nodes.get(item.node)
        if node is None or item.node in self.lifecycle.down:
            return
        held = self.lifecycle.held_until(item.node)
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
        self, inputs: list[Any], *, until_ns: int, progress: Callable[[int, int], None] | None = None,
        stop_when: Callable[[list[Span]], bool] | None = None, check_every_ns: int = 10_000_000,
    ) -> ReplayRun:
        """Feed inputs at their times and run until `until_ns`, until nothing is left to do,
        or until `stop_when(spans so far)` holds (checked every `check_every_ns` of virtual time)."""
        resumed = self._resumed
        for name in sorted(self.nodes):  # artifacts are shared by the grid: this loads each once
            self.nodes[name].artifacts.load_all()
            self.worlds[name].replay_history_records(resumed.cut.seqs.get(name, 0) if resumed else 0)
        if self.recording is None:  # a replay gets its start-ups from the recording, as inputs
            for name in sorted(self.nodes):
                self.loop.call_at_ns(0, self._start, name)
        start_ns = self.loop.time_ns()
        for event in self.injector.node_events(sorted(self.nodes)):
            if event.at >= start_ns:  # from a cut, what happened before it is history
                self._schedule(event)
        self.schedule_inputs(inputs)
        if resumed is not None:
            for at, msg in resumed.in_flight:
                self.network.arrive_at(at, msg)

        async def main() -> None:
            step = _S if stop_when is None else max(1, check_every_ns)
            while self.loop.time_ns() < until_ns:
                # on the step's grid of instants, so a replay from a cut wakes when a full one does
                now = self.loop.time_ns()
                await asyncio.sleep(min(step - now % step, until_ns - now) / _S)
                if progress is not None:
                    progress(self.loop.time_ns(), until_ns)
                if stop_when is not None and stop_when(self.sink.spans):
                    self.stopped_by = "condition"
                    break
                busy = any(n.tasks for n in self.nodes.values())
                if not busy and not self.loop.pending_timers():
                    break
            for node in self.nodes.values():
                for task in sorted(node.tasks, key=lambda t: t.get_name()):
                    task.cancel()
            await asyncio.sleep(0)

        try:
            with self.sandbox, self.watchdog:
                self.loop.run_until_complete(main())
        finally:
            if self._own_artifacts:
                self.artifacts.close()
            self.loop.close()
        if self.memo is not None:
            self.memo.check()  # a memoised step that re-executed differently fails the run, loudly
        return ReplayRun(
            spans=list(self.sink.spans), keys=dict(self.keys), blobs=dict(self.sink.blobs),
            faults_applied=self.faults.applied, virtual_ns=self.loop.time_ns(), nodes=sorted(self.nodes),
            fault_counts=self.injector.counts(), nondeterminism=self.sandbox.report(),
            memo=self.memo.stats.to_dict() if self.memo is not None else {},
        )
