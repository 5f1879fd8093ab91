"""`Context`: the only door a handler has to the world, so the world can be replayed.

Every operation is one recorded span. Handlers never read wall clocks, start threads or
use global randomness: `now`, `sleep` and `rng` come from the node runtime, which is real
time live and virtual time under the replayer, so the same handler code runs in both.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from edgetrace.agents._code import call_site
from edgetrace.agents._rules import Decision

if TYPE_CHECKING:
    from edgetrace._stepkey import StepKey
    from edgetrace.agents._node import NodeRuntime

__all__ = ["CallError", "CallTimeout", "Context", "StateClient", "StateUnavailable"]


class CallTimeout(TimeoutError):
    """A `call` or state operation got no reply within its timeout."""


class CallError(RuntimeError):
    """The remote handler failed; the message is the remote error."""


class StateUnavailable(CallError):
    """The state store refused the operation (its host is down or the store is unavailable)."""


class StateClient:
    """`ctx.state`: the app's key-value store, hosted on `App.state_host` across a link."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def get(self, key: str, default: Any = None, *, timeout: float | None = None) -> Any:
        """Read `key`; raises CallTimeout after `timeout` seconds without a reply."""
        self._ctx.site = call_site()
        value = await self._ctx._node.state.op(self._ctx, "state.get", key, None, timeout)
        return default if value is None else value

    async def put(self, key: str, value: Any, *, timeout: float | None = None) -> None:
        self._ctx.site = call_site()
        await self._ctx._node.state.op(self._ctx, "state.put", key, value, timeout)


class Context:
    """Handed to each handler invocation; bound to one node, one trace and one parent span."""

    def __init__(self, node: NodeRuntime, trace: str, parent: str, *, origin: tuple[StepKey, int] | None = None) -> None:
        self._node = node
        self.trace = trace
        self.parent = parent
        self.state = StateClient(self)
        # (key, local end ns) of the last step this invocation took, starting with what triggered
        # it: the replay measures the time a handler spends between two steps from here
        self.last_step = origin
        self.site = ""  # file.py:line of the app code issuing the current step
        self.uses_local = False  # once the handler touched ctx.local, its steps may depend on it

    def note(self, key: StepKey, end_ns: int) -> None:
        """Called by the recorder with each step this invocation records."""
        self.last_step = (key, end_ns)

    @property
    def node(self) -> str:
        return self._node.node

    @property
    def local(self) -> dict[str, Any]:
        """Node-local memory shared by this node's handlers (not recorded: the replay rebuilds
        it by re-running the same handlers, so it must only hold what handlers put there)."""
        self.uses_local = True
        return self._node.local

    @property
    def rng(self) -> random.Random:
        """The node's RNG, seeded from (session seed, node): replays draw the same numbers."""
        return self._node.rng

    def now(self) -> float:
        """Seconds on this node's local clock since the session started.

        A clock read is recorded as a step (`log clock`), so a replay hands the handler the
        very value it read live, wherever in the handler the read happens.
        """
        self.site = call_site()
        return self._node.steps.clock(self) / 1e9

    def now_ns(self) -> int:
        """`now()` in integer nanoseconds."""
        self.site = call_site()
        return self._node.steps.clock(self)

    async def sleep(self, seconds: float) -> None:
        await self._node.world.sleep(seconds)

    async def infer(self, model: str, inputs: Any) -> Any:
        """Run a model; returns what its runner decodes (tensors, or an event object)."""
        self.site = call_site()
        return await self._node.steps.infer(self, model, inputs)

    async def decide(self, policy: str, document: Any, *, timeout: float | None = None) -> Decision:
        """Evaluate a policy on `document`; a timeout gives a Decision with timed_out=True."""
        self.site = call_site()
        return await self._node.steps.decide(self, policy, document, timeout)

    async def send(self, node: str, topic: str, payload: Any = None) -> None:
        """Fire-and-forget message to `node`'s handler for `topic`."""
        self.site = call_site()
        await self._node.messaging.send(self, node, topic, payload)

    async def call(self, node: str, topic: str, payload: Any = None, *, timeout: float | None = None) -> Any:
        """Request/response; raises CallTimeout or CallError."""
        self.site = call_site()
        return await self._node.messaging.call(self, node, topic, payload, timeout)

    async def act(self, action: str, **args: Any) -> None:
        """An actuation (e.g. `spray`): recorded always, executed only live, never in replay."""
        self.site = call_site()
        await self._node.steps.act(self, action, args)

    def log(self, message: str, **attrs: Any) -> None:
        self.site = call_site()
        self._node.steps.log(self, message, attrs)
