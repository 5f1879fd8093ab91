"""Messages of one node: send, call with timeouts, replies — each leg recorded as a span.

A `call` records its request as a send span, waits on a future and records the reply (or the
timeout) as a receive span whose start is the request's and whose end is the reply's
arrival: that is how a recording keeps message delays, which the replayer reuses. Outgoing
messages carry the sender's full vector clock and the ref of the span that sent them, so the
receiver's span merges the clock and names its cause. The wire is the world's business.
"""

from __future__ import annotations

import asyncio
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._records import Span, SpanKind
from edgetrace._snapshot import MESSAGE_BLOB
from edgetrace._stepkey import StepCounter
from edgetrace.agents._context import CallError, CallTimeout, StateUnavailable
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._preview import preview
from edgetrace.agents._recorder import Recorder, StepScope
from edgetrace.agents._world import NodeWorld

__all__ = ["Messaging"]


class _Pending:
    """A call waiting for its reply."""

    __slots__ = ("future", "name", "scope", "start", "timer")

    def __init__(self, scope: StepScope, future: asyncio.Future[Any], name: str, start: int) -> None:
        self.scope = scope
        self.future = future
        self.name = name
        self.start = start
        self.timer: asyncio.TimerHandle | None = None


class Messaging:
    """Outgoing messages and the calls awaiting replies, for one node."""

    def __init__(self, node: str, recorder: Recorder, keys: StepCounter, world: NodeWorld) -> None:
        self.node = node
        self._recorder = recorder
        self._keys = keys
        self._world = world
        self._pending: dict[int, _Pending] = {}
        self.next_call = 0  # the last call id used (a snapshot keeps it)
        # a node that takes snapshots keeps the exact payload of a message whose preview is not
        # the payload: a replay from a cut re-sends the messages in flight across it
        self.keep_payloads = False

    def message(self, kind: MessageKind, dst: str, topic: str, trace: str, payload: Any, span: Span, *,
                call_id: int = 0, error: str = "") -> Message:
        """A message leaving now, caused by `span` (the step just recorded) and stamped with its clock.

        The step's clock, not the recorder's: a replay writes the recording's history records
        (fault records of a simulated recording) back right after the step they followed,
        before its message leaves, and they tick the node's entry without merging anything —
        the message must carry what the recording's did."""
        vc = self._recorder.clock_dict()
        vc[self.node] = span.seq
        return Message(kind=kind, src=self.node, dst=dst, topic=topic, trace=trace, payload=payload,
                       vc=vc, cause=span.ref, call_id=call_id, error=error)

    async def send(self, ctx: StepScope, dst: str, topic: str, payload: Any) -> None:
        key = self._keys.next(ctx.trace, SpanKind.SEND, topic)
        await self._world.pace(ctx, key)
        shown = preview(payload)
        span = self._recorder.step(SpanKind.SEND, topic, key, ctx, attrs={
            attr.TO: dst, attr.TOPIC: topic, attr.PAYLOAD: shown}, blobs=self.payload_blobs(payload, shown))
        self._world.transmit(self.message(MessageKind.SEND, dst, topic, ctx.trace, payload, span), span)

    async def call(self, ctx: StepScope, dst: str, topic: str, payload: Any, timeout: float | None) -> Any:
        return await self.request(ctx, MessageKind.CALL, SpanKind.SEND, dst, topic, topic, payload, timeout)

    async def request(self, ctx: StepScope, kind: MessageKind, span_kind: SpanKind, dst: str, topic: str,
                      name: str, payload: Any, timeout: float | None) -> Any:
        """Send a request and wait for its reply; `name` is the span's (a topic, or a state key)."""
        loop = asyncio.get_running_loop()
        self.next_call += 1
        call_id = self.next_call
        key = self._keys.next(ctx.trace, span_kind, name)
        await self._world.pace(ctx, key)
        start = self._world.now_ns()
        attrs: dict[str, Any] = {attr.TO: dst, attr.TOPIC: topic, attr.CALL_ID: call_id}
        blobs = None
        if span_kind is SpanKind.SEND:
            attrs[attr.PAYLOAD] = shown = preview(payload)
            blobs = self.payload_blobs(payload, shown)
        else:
            attrs[attr.STATE_KEY] = payload["key"]
            if span_kind is SpanKind.STATE_PUT:
                attrs[attr.STATE_VALUE] = shown = preview(payload.get("value"))
                blobs = self.payload_blobs(payload.get("value"), shown)
        if timeout is not None:
            attrs[attr.TIMEOUT_S] = timeout
        span = self._recorder.step(span_kind, name, key, ctx, start=start, attrs=attrs, blobs=blobs)
        pending = _Pending(ctx, loop.create_future(), f"{topic}:reply", start)
        self._pending[call_id] = pending
        if timeout is not None:
            pending.timer = self._world.call_later(timeout, self._on_timeout, call_id, timeout)
        self._world.transmit(self.message(kind, dst, topic, ctx.trace, payload, span, call_id=call_id), span)
        return await pending.future

    def reply(self, ctx: StepScope, request: Message, value: Any, error: str) -> None:
        """Answer a call this node's handler served (with its result or its error)."""
        name = f"{request.topic}:reply"
        key = self._keys.next(ctx.trace, SpanKind.SEND, name)
        shown = preview(value)
        span = self._recorder.step(SpanKind.SEND, name, key, ctx, error=error,
                                   attrs={attr.TO: request.src, attr.PAYLOAD: shown},
                                   blobs=self.payload_blobs(value, shown))
        self._world.transmit(self.message(MessageKind.REPLY, request.src, request.topic, ctx.trace, value,
                                          span, call_id=request.call_id, error=error), span)

    def payload_blobs(self, payload: Any, shown: Any) -> dict[str, str] | None:
        """The exact payload as a blob, when this node keeps payloads and the preview is not it."""
        if not self.keep_payloads or (type(shown) is type(payload) and shown == payload):
            return None
        try:
            return {MESSAGE_BLOB: self._recorder.blob(payload)}
        except (TypeError, ValueError, OverflowError):  # not encodable: the preview is all there is
            return None

    def _on_timeout(self, call_id: int, timeout: float) -> None:
        pending = self._pending.pop(call_id, None)
        if pending is None or pending.future.done():
            return
        key = self._keys.next(pending.scope.trace, SpanKind.RECV, pending.name)
        self._recorder.step(SpanKind.RECV, pending.name, key, pending.scope, start=pending.start,
                            end=self._world.now_ns(), error=f"timeout after {timeout:g}s",
                            attrs={attr.CALL_ID: call_id})
        pending.future.set_exception(CallTimeout(f"{pending.name} timed out after {timeout:g}s"))

    def on_reply(self, msg: Message) -> None:
        pending = self._pending.pop(msg.call_id, None)
        name = f"{msg.topic}:reply"
        if pending is None:  # the caller gave up already: record that the reply came late
            key = self._keys.next(msg.trace, SpanKind.RECV, name)
            self._recorder.step(SpanKind.RECV, name, key, trace=msg.trace, cause=msg.cause, merge=msg.vc,
                                attrs={attr.LATE: True, attr.CALL_ID: msg.call_id})
            return
        if pending.timer is not None:
            pending.timer.cancel()
        key = self._keys.next(pending.scope.trace, SpanKind.RECV, name)
        self._recorder.step(SpanKind.RECV, name, key, pending.scope, start=pending.start,
                            end=self._world.now_ns(), cause=msg.cause, merge=msg.vc, error=msg.error,
                            attrs={attr.CALL_ID: msg.call_id, attr.PAYLOAD: preview(msg.payload)})
        if msg.error:
            exc_type = StateUnavailable if msg.topic.startswith("state.") else CallError
            pending.future.set_exception(exc_type(msg.error))
        else:
            pending.future.set_result(msg.payload)

    def forget(self) -> None:
        """A crash: every call in flight is gone, with its timer; replies that come later are late."""
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self._pending.clear()
