"""The node runtime: one node of an app, whatever carries its messages and keeps its time.

It records every Context operation through the `Recorder`, dispatches inputs and messages
to the app's handlers, serves the state store on the host node, and matches replies to
calls. What differs between live and replay is small and overridable here: the clock
(`now_ns`), how a message leaves (`transmit`), and how a model or policy step is executed
(`run_model`, `run_policy` — the replayer adds recorded durations and faults there).
"""

from __future__ import annotations

import abc
import asyncio
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._records import Span, SpanKind
from edgetrace.agents._app import App
from edgetrace.agents._context import CallError, CallTimeout, Context, StateUnavailable
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._models import ModelResult, ModelRunner, tensor_to_obj
from edgetrace.agents._preview import preview
from edgetrace.agents._recorder import Recorder
from edgetrace.agents._rules import Decision, RuleEngine
from edgetrace.agents._sink import SpanSink
from edgetrace.agents._steps import ReasoningSteps

__all__ = ["NodeRuntime", "StepKey", "preview"]

StepKey = tuple[str, str, str, str, int]  # (trace, node, kind, name, occurrence)



class _Pending:
    __slots__ = ("ctx", "future", "name", "start", "timer")

    def __init__(self, ctx: Context, future: asyncio.Future[Any], name: str, start: int) -> None:
        self.ctx = ctx
        self.future = future
        self.name = name
        self.start = start
        self.timer: asyncio.TimerHandle | None = None


class NodeRuntime(ReasoningSteps, abc.ABC):
    """Runs one node of an app on the current asyncio loop."""

    def __init__(
        self,
        app: App,
        node: str,
        sink: SpanSink,
        *,
        seed: int = 0,
        model_paths: Mapping[str, Any] | None = None,
        policy_paths: Mapping[str, Any] | None = None,
        actuators: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.app = app
        self.node = node
        self.recorder = Recorder(node, sink)
        self.rng = random.Random(f"{seed}/{node}")
        self.store: dict[str, Any] = dict(app.initial_state) if node == app.state_host else {}
        self.local: dict[str, Any] = {}
        self.actuators = dict(actuators or {})
        self._model_paths = dict(model_paths or {})
        self._policy_paths = dict(policy_paths or {})
        self._models: dict[str, ModelRunner] = {}
        self._policies: dict[str, RuleEngine] = {}
        self._pending: dict[int, _Pending] = {}
        self._next_call = 0
        self._occurrences: Counter[tuple[str, str, str]] = Counter()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.on_model_loaded: Callable[[str, ModelRunner], None] | None = None
        self.on_policy_loaded: Callable[[str, RuleEngine], None] | None = None

    # --- what live and replay provide differently -----------------------------------------

    @abc.abstractmethod
    def now_ns(self) -> int:
        """This node's local clock, ns since the session started."""

    @abc.abstractmethod
    def transmit(self, msg: Message, span: Span) -> None:
        """Send a message to `msg.dst`; must not block the caller."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def run_model(self, runner: ModelRunner, inputs: Any, key: StepKey) -> ModelResult:
        return runner.run(inputs)

    async def run_policy(
        self, engine: RuleEngine, document: Any, timeout: float | None, key: StepKey
    ) -> Decision:
        return engine.evaluate(document)

    def executes_actions(self) -> bool:
        return True

    # --- artifacts --------------------------------------------------------------------------

    def load_artifact(self, kind: str, name: str) -> Any:
        """Build a model runner (`kind` "model") or rule engine ("policy") for this node.

        The replayer overrides this to share one per artifact across its simulated nodes.
        """
        if kind == "model":
            return self.app.build_model(name, self._model_paths.get(name))
        return self.app.build_policy(name, self._policy_paths.get(name))

    def model(self, name: str) -> ModelRunner:
        runner = self._models.get(name)
        if runner is None:
            runner = self.load_artifact("model", name)
            self._models[name] = runner
            if self.on_model_loaded:
                self.on_model_loaded(name, runner)
        return runner

    def policy(self, name: str) -> RuleEngine:
        engine = self._policies.get(name)
        if engine is None:
            engine = self.load_artifact("policy", name)
            self._policies[name] = engine
            if self.on_policy_loaded:
                self.on_policy_loaded(name, engine)
        return engine

    def close(self) -> None:
        for runner in self._models.values():
            runner.close()
        for engine in self._policies.values():
            engine.close()

    # --- recording ----------------------------------------------------------------------------

    def step_key(self, trace: str, kind: SpanKind, name: str) -> StepKey:
        """The causal position of a step: how the replayer aligns it with the recording."""
        slot = (trace, kind.value, name)
        self._occurrences[slot] += 1
        return (trace, self.node, kind.value, name, self._occurrences[slot])

    def _record(
        self,
        kind: SpanKind,
        name: str,
        ctx: Context | None,
        *,
        key: StepKey | None = None,
        **fields: Any,
    ) -> Span:
        if ctx is not None:
            fields.setdefault("trace", ctx.trace)
            fields.setdefault("parent", ctx.parent)
        fields.setdefault("start", self.now_ns())
        span = self.recorder.record(kind, name, **fields)
        if key is not None:
            self.recorded(span, key)
        return span

    def recorded(self, span: Span, key: StepKey) -> None:
        """Called with every span and its causal position; the replayer aligns with it."""

    # --- entry points -------------------------------------------------------------------------

    def inject(self, topic: str, payload: Any, trace: str) -> Span:
        """An external input (a sensor frame) arrives at this node."""
        key = self.step_key(trace, SpanKind.INPUT, topic)
        span = self._record(
            SpanKind.INPUT,
            topic,
            None,
            trace=trace,
            attrs={attr.PAYLOAD: preview(payload)},
            blobs={"input": self.recorder.blob(tensor_to_obj(payload))},
            key=key,
        )
        self._spawn(topic, payload, Context(self, trace, span.ref), None)
        return span

    def deliver(self, msg: Message) -> None:
        """A message arrives at this node (called by the transport, on the loop)."""
        if msg.kind is MessageKind.INPUT:
            self.inject(msg.topic, msg.payload, msg.trace)
        elif msg.kind is MessageKind.REPLY:
            self._on_reply(msg)
        elif msg.kind in (MessageKind.STATE_GET, MessageKind.STATE_PUT):
            self._serve_state(msg)
        else:
            key = self.step_key(msg.trace, SpanKind.RECV, msg.topic)
            span = self._record(
                SpanKind.RECV,
                msg.topic,
                None,
                trace=msg.trace,
                parent=msg.cause,
                cause=msg.cause,
                merge=msg.vc,
                attrs={
                    attr.FROM: msg.src,
                    attr.TOPIC: msg.topic,
                    attr.PAYLOAD: preview(msg.payload),
                },
                key=key,
            )
            reply_to = msg if msg.kind is MessageKind.CALL else None
            self._spawn(msg.topic, msg.payload, Context(self, msg.trace, span.ref), reply_to)

    def _spawn(self, topic: str, payload: Any, ctx: Context, reply_to: Message | None) -> None:
        handler = self.app.handler_for(self.node, topic)
        if handler is None:
            self._record(
                SpanKind.LOG,
                "unhandled",
                ctx,
                error=f"no handler for {topic!r} on {self.node}",
                attrs={attr.TOPIC: topic},
                key=self.step_key(ctx.trace, SpanKind.LOG, "unhandled"),
            )
            if reply_to is not None:
                self._reply(ctx, reply_to, None, f"no handler for {topic!r} on {self.node}")
            return
        task = asyncio.get_running_loop().create_task(
            self._run_handler(handler, ctx, payload, reply_to), name=f"{self.node}:{ctx.parent}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_handler(
        self, handler: Any, ctx: Context, payload: Any, reply_to: Message | None
    ) -> None:
        try:
            result = await handler(ctx, payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the app's bug: record it, keep the node alive
            error = f"{type(exc).__name__}: {exc}"
            key = self.step_key(ctx.trace, SpanKind.LOG, "handler.error")
            self._record(SpanKind.LOG, "handler.error", ctx, error=error, key=key)
            if reply_to is not None:
                self._reply(ctx, reply_to, None, error)
            return
        if reply_to is not None:
            self._reply(ctx, reply_to, result, "")

    def _reply(self, ctx: Context, request: Message, value: Any, error: str) -> None:
        name = f"{request.topic}:reply"
        key = self.step_key(ctx.trace, SpanKind.SEND, name)
        span = self._record(
            SpanKind.SEND,
            name,
            ctx,
            error=error,
            attrs={attr.TO: request.src, attr.PAYLOAD: preview(value)},
            key=key,
        )
        self.transmit(
            self._message(
                MessageKind.REPLY,
                request.src,
                request.topic,
                ctx.trace,
                value,
                span,
                call_id=request.call_id,
                error=error,
            ),
            span,
        )

    def _message(
        self,
        kind: MessageKind,
        dst: str,
        topic: str,
        trace: str,
        payload: Any,
        span: Span,
        *,
        call_id: int = 0,
        error: str = "",
    ) -> Message:
        return Message(
            kind=kind,
            src=self.node,
            dst=dst,
            topic=topic,
            trace=trace,
            payload=payload,
            vc=self.recorder.clock_dict(),
            cause=span.ref,
            call_id=call_id,
            error=error,
        )

    # --- messaging ----------------------------------------------------------------------------

    async def send(self, ctx: Context, dst: str, topic: str, payload: Any) -> None:
        key = self.step_key(ctx.trace, SpanKind.SEND, topic)
        span = self._record(
            SpanKind.SEND,
            topic,
            ctx,
            attrs={
                attr.TO: dst,
                attr.TOPIC: topic,
                attr.PAYLOAD: preview(payload),
            },
            key=key,
        )
        self.transmit(self._message(MessageKind.SEND, dst, topic, ctx.trace, payload, span), span)

    async def call(
        self, ctx: Context, dst: str, topic: str, payload: Any, timeout: float | None
    ) -> Any:
        return await self._request(
            ctx, MessageKind.CALL, SpanKind.SEND, dst, topic, topic, payload, timeout
        )

    async def _request(
        self,
        ctx: Context,
        kind: MessageKind,
        span_kind: SpanKind,
        dst: str,
        topic: str,
        name: str,
        payload: Any,
        timeout: float | None,
    ) -> Any:
        loop = asyncio.get_running_loop()
        self._next_call += 1
        call_id = self._next_call
        key = self.step_key(ctx.trace, span_kind, name)
        start = self.now_ns()
        attrs: dict[str, Any] = {
            attr.TO: dst,
            attr.TOPIC: topic,
            attr.CALL_ID: call_id,
        }
        if span_kind is SpanKind.SEND:
            attrs[attr.PAYLOAD] = preview(payload)
        else:
            attrs[attr.STATE_KEY] = payload["key"]
            if span_kind is SpanKind.STATE_PUT:
                attrs[attr.STATE_VALUE] = preview(payload.get("value"))
        if timeout is not None:
            attrs[attr.TIMEOUT_S] = timeout
        span = self._record(span_kind, name, ctx, start=start, attrs=attrs, key=key)
        pending = _Pending(ctx, loop.create_future(), f"{topic}:reply", start)
        self._pending[call_id] = pending
        if timeout is not None:
            pending.timer = loop.call_later(timeout, self._on_timeout, call_id, timeout)
        self.transmit(
            self._message(kind, dst, topic, ctx.trace, payload, span, call_id=call_id), span
        )
        return await pending.future

    def _on_timeout(self, call_id: int, timeout: float) -> None:
        pending = self._pending.pop(call_id, None)
        if pending is None or pending.future.done():
            return
        key = self.step_key(pending.ctx.trace, SpanKind.RECV, pending.name)
        self._record(
            SpanKind.RECV,
            pending.name,
            pending.ctx,
            start=pending.start,
            end=self.now_ns(),
            error=f"timeout after {timeout:g}s",
            attrs={attr.CALL_ID: call_id},
            key=key,
        )
        pending.future.set_exception(CallTimeout(f"{pending.name} timed out after {timeout:g}s"))

    def _on_reply(self, msg: Message) -> None:
        pending = self._pending.pop(msg.call_id, None)
        name = f"{msg.topic}:reply"
        if pending is None:  # the caller gave up already: record that the reply came late
            key = self.step_key(msg.trace, SpanKind.RECV, name)
            self._record(
                SpanKind.RECV,
                name,
                None,
                trace=msg.trace,
                cause=msg.cause,
                merge=msg.vc,
                attrs={attr.LATE: True, attr.CALL_ID: msg.call_id},
                key=key,
            )
            return
        if pending.timer is not None:
            pending.timer.cancel()
        key = self.step_key(pending.ctx.trace, SpanKind.RECV, name)
        self._record(
            SpanKind.RECV,
            name,
            pending.ctx,
            start=pending.start,
            end=self.now_ns(),
            cause=msg.cause,
            merge=msg.vc,
            error=msg.error,
            attrs={attr.CALL_ID: msg.call_id, attr.PAYLOAD: preview(msg.payload)},
            key=key,
        )
        if msg.error:
            exc_type = StateUnavailable if msg.topic.startswith("state.") else CallError
            pending.future.set_exception(exc_type(msg.error))
        else:
            pending.future.set_result(msg.payload)

    # --- state store ------------------------------------------------------------------------

    async def state_op(
        self, ctx: Context, op: str, key: str, value: Any, timeout: float | None
    ) -> Any:
        kind = SpanKind(op)
        if self.node == self.app.state_host:
            step = self.step_key(ctx.trace, kind, key)
            result = self._apply_state(op, key, value)
            self._record(
                kind,
                key,
                ctx,
                attrs=self._state_attrs(key, value if op == "state.put" else result),
                key=step,
            )
            return result
        payload: dict[str, Any] = {"key": key}
        if op == "state.put":
            payload["value"] = value
        return await self._request(
            ctx, MessageKind(op), kind, self.app.state_host, op, key, payload, timeout
        )

    def _apply_state(self, op: str, key: str, value: Any) -> Any:
        if op == "state.put":
            self.store[key] = value
            return None
        return self.store.get(key)

    def state_refusal(self, msg: Message) -> str:
        """Why the store refuses this operation ('' = it serves it); the replayer injects here."""
        return ""

    @staticmethod
    def _state_attrs(key: str, value: Any) -> dict[str, Any]:
        return {attr.STATE_KEY: key, attr.STATE_VALUE: preview(value)}

    def _serve_state(self, msg: Message) -> None:
        key = str((msg.payload or {}).get("key", ""))
        kind = SpanKind(msg.kind.value)
        step = self.step_key(msg.trace, kind, key)
        refusal = self.state_refusal(msg)
        if refusal:
            result, value = None, None
        else:
            value = (msg.payload or {}).get("value")
            result = self._apply_state(msg.kind.value, key, value)
        span = self._record(
            kind,
            key,
            None,
            trace=msg.trace,
            parent=msg.cause,
            cause=msg.cause,
            merge=msg.vc,
            error=refusal,
            attrs=self._state_attrs(key, value if kind is SpanKind.STATE_PUT else result),
            key=step,
        )
        reply = Message(
            kind=MessageKind.REPLY,
            src=self.node,
            dst=msg.src,
            topic=msg.topic,
            trace=msg.trace,
            payload=result,
            vc=self.recorder.clock_dict(),
            cause=span.ref,
            call_id=msg.call_id,
            error=refusal,
        )
        self.transmit(reply, span)
