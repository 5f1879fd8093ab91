"""The reasoning steps of a node — infer, decide, act, log — recorded one span each.

A mixin of `NodeRuntime`: it relies on the runtime's `model`/`policy` lookups, its
`run_model`/`run_policy` hooks (where the replayer adds recorded durations and faults) and
its `_record`. Kept apart so the runtime module holds dispatch, messaging and state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace._errors import EdgeTraceError, ModelError, PolicyError
from edgetrace._records import SpanKind
from edgetrace.agents._models import tensor_to_obj
from edgetrace.agents._preview import json_bytes as _json_bytes
from edgetrace.agents._preview import preview
from edgetrace.agents._rules import Decision

if TYPE_CHECKING:
    from edgetrace.agents._context import Context

__all__ = ["ReasoningSteps"]


class ReasoningSteps:
    """infer / decide / act / log for `NodeRuntime` (see its docstring for the hooks used)."""


    async def infer(self, ctx: Context, model: str, inputs: Any) -> Any:
        runner = self.model(model)
        key = self.step_key(ctx.trace, SpanKind.INFER, model)
        start = self.now_ns()
        attrs: dict[str, Any] = {
            attr.GEN_AI_OPERATION_NAME: "text_completion",
            attr.GEN_AI_PROVIDER_NAME: runner.provider,
            attr.GEN_AI_REQUEST_MODEL: model,
            attr.GEN_AI_RESPONSE_MODEL: model,
            attr.MODEL_SHA256: runner.sha256,
            attr.MODEL_OPTIONS: runner.options(),
        }
        try:
            result = await self.run_model(runner, inputs, key)
        except Exception as exc:
            ours = isinstance(exc, EdgeTraceError)  # our errors already say what failed
            error = str(exc) if ours else f"{type(exc).__name__}: {exc}"
            self._record(
                SpanKind.INFER,
                model,
                ctx,
                start=start,
                end=self.now_ns(),
                error=error,
                attrs={**attrs, attr.ERROR_TYPE: type(exc).__name__},
                key=key,
            )
            if ours:
                raise
            raise ModelError(f"model {model!r} failed: {error}", model=model) from exc
        attrs.update(result.attrs)
        attrs[attr.OUTPUT] = preview(result.output)
        blobs = {
            "input": self.recorder.blob(
                result.inputs if result.inputs is not None else tensor_to_obj(inputs)
            )
        }
        if result.outputs is not None:
            blobs["output"] = self.recorder.blob(result.outputs)
        if result.error:
            attrs[attr.ERROR_TYPE] = "invalid_output"
        self._record(
            SpanKind.INFER,
            model,
            ctx,
            start=start,
            end=self.now_ns(),
            error=result.error,
            attrs=attrs,
            blobs=blobs,
            key=key,
        )
        return result.output

    async def decide(
        self, ctx: Context, policy: str, document: Any, timeout: float | None
    ) -> Decision:
        engine = self.policy(policy)
        key = self.step_key(ctx.trace, SpanKind.DECIDE, policy)
        start = self.now_ns()
        attrs: dict[str, Any] = {
            attr.POLICY: policy,
            attr.POLICY_SHA256: engine.sha256,
            attr.POLICY_ENGINE: engine.engine,
        }
        try:
            decision = await self.run_policy(engine, document, timeout, key)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._record(
                SpanKind.DECIDE,
                policy,
                ctx,
                start=start,
                end=self.now_ns(),
                error=error,
                attrs=attrs,
                blobs={"input": self.recorder.blob(_json_bytes(document))},
                key=key,
            )
            if isinstance(exc, PolicyError):
                raise
            raise PolicyError(f"policy {policy!r} failed: {error}", policy=policy) from exc
        attrs.update(
            {
                attr.DECISION: preview(decision.value),
                attr.RULES_FIRED: list(decision.fired),
                attr.TIMED_OUT: decision.timed_out,
            }
        )
        blobs = {
            "input": self.recorder.blob(_json_bytes(document)),
            "result": self.recorder.blob(_json_bytes(decision.result)),
        }
        error = (
            f"rule evaluation timed out after {timeout:g}s"
            if decision.timed_out and timeout
            else ""
        )
        self._record(
            SpanKind.DECIDE,
            policy,
            ctx,
            start=start,
            end=self.now_ns(),
            error=error,
            attrs=attrs,
            blobs=blobs,
            key=key,
        )
        return decision

    async def act(self, ctx: Context, action: str, args: dict[str, Any]) -> None:
        key = self.step_key(ctx.trace, SpanKind.ACT, action)
        executed = self.executes_actions() and action in self.actuators
        self._record(
            SpanKind.ACT,
            action,
            ctx,
            attrs={attr.ACT_ARGS: preview(args), attr.ACT_EXECUTED: executed},
            key=key,
        )
        if executed:
            self.actuators[action](**args)

    def log(self, ctx: Context, message: str, attrs: dict[str, Any]) -> None:
        key = self.step_key(ctx.trace, SpanKind.LOG, "log")
        self._record(
            SpanKind.LOG,
            "log",
            ctx,
            attrs={attr.MESSAGE: message, **{k: preview(v) for k, v in attrs.items()}},
            key=key,
        )
