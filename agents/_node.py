"""The node runtime: one node of an app, the same object live and under the replayer.

It dispatches inputs and messages to the app's handlers, one asyncio task per invocation, and
owns the node's parts — recorder (spans, vector clock), step counter (causal positions),
reasoning steps, messaging, state service — all wired to the `NodeWorld` it is given. What
differs between a live agent and a replay is the world (`LiveWorld`, `SimWorld`), never this
class: the replayer does not subclass it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._handler_errors import HANDLER_ERROR
from edgetrace._records import Span, SpanKind
from edgetrace._stepkey import StepCounter
from edgetrace.agents._app import START_TOPIC, App, Artifact, Handler
from edgetrace.agents._code import IN_HANDLER, exception_attrs
from edgetrace.agents._context import Context
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._messaging import Messaging
from edgetrace.agents._models import tensor_to_obj
from edgetrace.agents._preview import preview
from edgetrace.agents._recorder import Recorder
from edgetrace.agents._snapshot import Snapshotter
from edgetrace.agents._state import StateService
from edgetrace.agents._steps import Artifacts, ReasoningSteps
from edgetrace.agents._world import NodeWorld

__all__ = ["NodeRuntime"]


class NodeRuntime:
    """Runs one node of an app on the current asyncio loop, in the world it is given."""

    def __init__(self, app: App, node: str, world: NodeWorld, *, seed: int = 0,
                 models: Mapping[str, Artifact] | None = None, policies: Mapping[str, Artifact] | None = None,
                 snapshot_every_ns: int = 0) -> None:
        self.app = app
        self.node = node
        self.world = world
        # a world that does not watch steps (a live node's) is not called for each one
        watches = type(world).observe is not NodeWorld.observe
        self.recorder = Recorder(node, world.sink, now_ns=world.now_ns, observe=world.observe if watches else None,
                                 start_at=world.start_at)
        self.keys = StepCounter(node)
        self.rng = random.Random(f"{seed}/{node}")
        self.local: dict[str, Any] = {}
        self.artifacts = Artifacts(app, world, models=models, policies=policies)
        self.steps = ReasoningSteps(self.recorder, self.keys, self.artifacts, world)
        self.messaging = Messaging(node, self.recorder, self.keys, world)
        self.state = StateService(node, app.state_host, app.initial_state, self.recorder, self.keys,
                                  self.messaging, world)
        self.tasks: set[asyncio.Task[Any]] = set()
        # periodic state snapshots (0 = none), taken while no handler runs (agents/_snapshot.py)
        self.snapshots = Snapshotter(self, snapshot_every_ns)
        self.messaging.keep_payloads = snapshot_every_ns > 0
        self._world_idle = world.idle if type(world).idle is not NodeWorld.idle else None
        self._watch_idle = bool(snapshot_every_ns) or self._world_idle is not None

    def close(self) -> None:
        self.artifacts.close()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, trace: str) -> Span | None:
        """The node starts (or restarts): run its start-up handlers, if the app has any."""
        if not self.app.starts_on(self.node):
            return None
        return self.inject(START_TOPIC, None, trace)

    def crash(self) -> None:
        """The node dies: handlers in flight, their calls and timers, and `ctx.local` are gone.

        What survives is what a real node keeps on disk: its recorded stream (sequence numbers
        and vector clock, from the spool) and, on the state host, the state store. Steps are
        numbered afresh, as a restarted process does.
        """
        for task in sorted(self.tasks, key=lambda t: t.get_name()):
            task.cancel()
        self.messaging.forget()
        self.local.clear()
        self.keys.restart()

    # --- entry points -------------------------------------------------------------------------

    def inject(self, topic: str, payload: Any, trace: str) -> Span:
        """An external input (a sensor frame) arrives at this node."""
        key = self.keys.next(trace, SpanKind.INPUT, topic)
        span = self.recorder.step(SpanKind.INPUT, topic, key, trace=trace, attrs={attr.PAYLOAD: preview(payload)},
                                  blobs={"input": self.recorder.blob(tensor_to_obj(payload))})
        self._spawn(topic, payload, Context(self, trace, span.ref, origin=(key, span.end)), None)
        return span

    def deliver(self, msg: Message) -> None:
        """A message arrives at this node (called by the world, on the loop)."""
        if msg.kind is MessageKind.INPUT:
            self.inject(msg.topic, msg.payload, msg.trace)
        elif msg.kind is MessageKind.REPLY:
            self.messaging.on_reply(msg)
        elif msg.kind in (MessageKind.STATE_GET, MessageKind.STATE_PUT):
            self.state.serve(msg)
        else:
            key = self.keys.next(msg.trace, SpanKind.RECV, msg.topic)
            span = self.recorder.step(SpanKind.RECV, msg.topic, key, trace=msg.trace, parent=msg.cause,
                                      cause=msg.cause, merge=msg.vc, attrs={
                                          attr.FROM: msg.src, attr.TOPIC: msg.topic,
                                          attr.PAYLOAD: preview(msg.payload)})
            reply_to = msg if msg.kind is MessageKind.CALL else None
            self._spawn(msg.topic, msg.payload, Context(self, msg.trace, span.ref, origin=(key, span.end)), reply_to)
        if self._watch_idle and not self.tasks:
            self._idle()  # a served state op or a late reply runs no handler: idle now

    # --- handlers -----------------------------------------------------------------------------

    def _spawn(self, topic: str, payload: Any, ctx: Context, reply_to: Message | None) -> None:
        handler = self.app.handler_for(self.node, topic)
        if handler is None:
            error = f"no handler for {topic!r} on {self.node}"
            self.recorder.step(SpanKind.LOG, "unhandled", self.keys.next(ctx.trace, SpanKind.LOG, "unhandled"),
                               ctx, error=error, attrs={attr.TOPIC: topic})
            if reply_to is not None:
                self.messaging.reply(ctx, reply_to, None, error)
            return
        task = asyncio.get_running_loop().create_task(
            self._run_handler(handler, ctx, payload, reply_to), name=f"{self.node}:{ctx.parent}"
        )
        self.tasks.add(task)
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if self._watch_idle and not self.tasks:
            self._idle()

    def _idle(self) -> None:
        """No handler runs: the moment a snapshot can be taken (or, replayed, written back)."""
        if self._world_idle is not None:
            self._world_idle()
        self.snapshots.poke()

    async def _run_handler(self, handler: Handler, ctx: Context, payload: Any, reply_to: Message | None) -> None:
        IN_HANDLER.set(True)  # this task's own context: the app's code runs from here
        try:
            result = await handler(ctx, payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the app's bug: record it, keep the node alive
            error = f"{type(exc).__name__}: {exc}"
            key = self.keys.next(ctx.trace, SpanKind.LOG, HANDLER_ERROR)
            found = exception_attrs(exc)
            ctx.site = found[attr.CODE]  # the line that raised, not the last step's
            self.recorder.step(SpanKind.LOG, HANDLER_ERROR, key, ctx, error=error, attrs=found)
            if reply_to is not None:
                self.messaging.reply(ctx, reply_to, None, error)
            return
        if reply_to is not None:
            self.messaging.reply(ctx, reply_to, result, "")
