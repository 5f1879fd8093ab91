"""The world a node runs in: everything that differs between a live agent and a replay.

`NodeRuntime` (dispatch, recording, vector clock, calls, state) is one class, the same object
live and under the replayer; it is *given* a world, as turmoil gives host code a simulated
one. A world answers five questions — what time is it here, how does a message leave, how is
a model or policy step executed, who else wants to see each recorded span, and what carries out
an actuation — and the two implementations are `LiveWorld` (agents: wall clock since the
session epoch, TCP to peers, real timeouts, real actuators) and `SimWorld` (replay: virtual
time, simulated links, recorded durations, injected faults, actuations recorded only).

    handler ─ Context ─ NodeRuntime ─┬─ ReasoningSteps ─► world.run_model / run_policy
                                     ├─ Recorder ─► world.sink (spool | memory)
                                     │            └► world.observe(span, key)
                                     └─ messages ─► world.transmit
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgetrace._records import Span
from edgetrace._stepkey import StepKey

if TYPE_CHECKING:
    from edgetrace.agents._app import App, Artifact
    from edgetrace.agents._message import Message
    from edgetrace.agents._models import ModelResult, ModelRunner
    from edgetrace.agents._recorder import StepScope
    from edgetrace.agents._rules import Decision, RuleEngine
    from edgetrace.agents._sink import SpanSink

__all__ = ["MemoryWorld", "NodeWorld"]


class NodeWorld(abc.ABC):
    """What one node's runtime is given. Subclass for a new kind of world (a test rig, a bridge)."""

    #: Where the node's recorder puts spans and blobs.
    sink: SpanSink

    @abc.abstractmethod
    def now_ns(self) -> int:
        """This node's local clock: ns since the session started (skewed, under some faults)."""

    async def sleep(self, seconds: float) -> None:
        """`ctx.sleep`: the running loop's sleep is real time live and virtual time in replay."""
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        """A timer of this node (a call's timeout): the replay freezes it while the node is paused."""
        return asyncio.get_running_loop().call_later(seconds, callback, *args)

    async def pace(self, scope: StepScope, key: StepKey) -> None:  # noqa: B027 - live: nothing to charge
        """Before a handler's step: let the time pass that the handler spent since its last step.

        Live, that time has passed already (it was spent); the replay charges it as recorded.
        """

    def start_at(self, scope: StepScope, key: StepKey) -> int:
        """When a handler's step that cannot wait (a log, a clock read, a reply) starts."""
        return self.now_ns()

    @abc.abstractmethod
    def transmit(self, msg: Message, span: Span) -> None:
        """Send `msg` (recorded as `span`) towards `msg.dst`; must not block the caller."""

    def load(self, app: App, kind: str, name: str, path: Artifact | None) -> ModelRunner | RuleEngine:
        """Build the model runner (`kind` "model") or rule engine ("policy") a step asks for.

        `path` is a substituted artifact (`--model`/`--policy`) or None for the app's own.
        """
        if kind == "model":
            return app.build_model(name, path)
        return app.build_policy(name, path)

    async def run_model(self, runner: ModelRunner, inputs: Any, key: StepKey) -> ModelResult:
        """Execute one model step; the replay world charges the recorded duration here."""
        return runner.run(inputs)

    async def run_policy(self, engine: RuleEngine, document: Any, timeout: float | None,
                         key: StepKey) -> Decision:
        """Evaluate one policy step, honouring `timeout` (a timed-out Decision, not an error)."""
        return engine.evaluate(document)

    def observe(self, span: Span, key: StepKey) -> None:  # noqa: B027 - most worlds need nothing
        """Called with every recorded step and its causal position (the replay aligns with it)."""

    def idle(self) -> None:  # noqa: B027 - most worlds need nothing
        """Called when the node has just become quiescent (no handler running): where it takes
        its snapshots, and where a replay writes back the ones the recording took there."""

    def state_refusal(self, msg: Message) -> str:
        """Why the state store on this node refuses `msg` ('' = it serves it); faults inject here."""
        return ""

    def actuator(self, action: str) -> Callable[..., Any] | None:
        """What carries out `action` here, or None when it is only recorded (always, in replay)."""
        return None



class MemoryWorld(NodeWorld):
    """A world in memory, for unit tests of handlers and of the runtime itself.

    Its clock stands still until the test moves it (`advance`); transmitted messages are kept
    in `sent` (the test delivers replies itself, with `runtime.deliver`); spans and blobs go to
    a `MemorySink`; actuations go to the given callables.
    """

    def __init__(self, *, start_ns: int = 0, actuators: dict[str, Callable[..., Any]] | None = None) -> None:
        from edgetrace.agents._sink import MemorySink

        self.sink = MemorySink()
        self.time_ns = start_ns
        self.sent: list[tuple[Message, Span]] = []
        self.positions: dict[str, StepKey] = {}
        self.actuators = dict(actuators or {})

    def now_ns(self) -> int:
        return self.time_ns

    def advance(self, ns: int) -> None:
        self.time_ns += ns

    def transmit(self, msg: Message, span: Span) -> None:
        self.sent.append((msg, span))

    def observe(self, span: Span, key: StepKey) -> None:
        self.positions[span.ref] = key

    def actuator(self, action: str) -> Callable[..., Any] | None:
        return self.actuators.get(action)
