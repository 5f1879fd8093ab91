"""The app's shared key-value store: served on its host node, reached from others over a link.

On the host a `state.get`/`state.put` is a local step; elsewhere it is a request to the host
(recorded like a call, so link latency and timeouts apply) and the host records serving it,
caused by the request. The world may refuse an operation (an injected `state_unavailable`):
the host then records the refusal as the step's error and replies with it.
"""

from __future__ import annotations

from typing import Any

from edgetrace import _attrs as attr
from edgetrace._records import SpanKind
from edgetrace._stepkey import StepCounter
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._messaging import Messaging
from edgetrace.agents._preview import preview
from edgetrace.agents._recorder import Recorder, StepScope
from edgetrace.agents._world import NodeWorld

__all__ = ["StateService"]


def _attrs(key: str, value: Any) -> dict[str, Any]:
    return {attr.STATE_KEY: key, attr.STATE_VALUE: preview(value)}


class StateService:
    """`ctx.state` for one node; holds the store itself when this node is the state host."""

    def __init__(self, node: str, host: str, initial: dict[str, Any], recorder: Recorder, keys: StepCounter,
                 messaging: Messaging, world: NodeWorld) -> None:
        self.node = node
        self.host = host
        self.store: dict[str, Any] = dict(initial) if node == host else {}
        self._recorder = recorder
        self._keys = keys
        self._messaging = messaging
        self._world = world

    async def op(self, ctx: StepScope, op: str, key: str, value: Any, timeout: float | None) -> Any:
        kind = SpanKind(op)
        if self.node == self.host:
            step = self._keys.next(ctx.trace, kind, key)
            await self._world.pace(ctx, step)
            result = self._apply(op, key, value)
            self._recorder.step(kind, key, step, ctx, attrs=_attrs(key, value if op == "state.put" else result))
            return result
        payload: dict[str, Any] = {"key": key}
        if op == "state.put":
            payload["value"] = value
        return await self._messaging.request(ctx, MessageKind(op), kind, self.host, op, key, payload, timeout)

    def _apply(self, op: str, key: str, value: Any) -> Any:
        if op == "state.put":
            self.store[key] = value
            return None
        return self.store.get(key)

    def serve(self, msg: Message) -> None:
        """A request from another node arrives at the host: apply it (or refuse it) and reply."""
        key = str((msg.payload or {}).get("key", ""))
        kind = SpanKind(msg.kind.value)
        step = self._keys.next(msg.trace, kind, key)
        refusal = self._world.state_refusal(msg)
        if refusal:
            result, value = None, None
        else:
            value = (msg.payload or {}).get("value")
            result = self._apply(msg.kind.value, key, value)
        shown = value if kind is SpanKind.STATE_PUT else result
        attrs = _attrs(key, shown)
        span = self._recorder.step(kind, key, step, trace=msg.trace, parent=msg.cause, cause=msg.cause,
                                   merge=msg.vc, error=refusal, attrs=attrs,
                                   blobs=self._messaging.payload_blobs(result, attrs[attr.STATE_VALUE])
                                   if kind is SpanKind.STATE_GET else None)
        self._world.transmit(self._messaging.message(MessageKind.REPLY, msg.src, msg.topic, msg.trace, result,
                                                     span, call_id=msg.call_id, error=refusal), span)
