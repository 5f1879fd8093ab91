"""The reasoning steps of a node — infer, decide, act, log — recorded one span each.

A collaborator of `NodeRuntime` built from explicit parts: the node's `Recorder` (spans and
blobs), its `StepCounter` (causal positions), its `Artifacts` (models and policies, loaded
once through the world) and the `NodeWorld` (which executes model and policy steps and
actuations: in real time live, with recorded durations and faults under replay).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace._errors import EdgeTraceError, ModelError, PolicyError
from edgetrace._records import SpanKind
from edgetrace._stepkey import StepCounter
from edgetrace.agents._models import ModelRunner, tensor_to_obj
from edgetrace.agents._preview import json_bytes, preview, previews
from edgetrace.agents._recorder import Recorder, StepScope
from edgetrace.agents._rules import Decision, RuleEngine
from edgetrace.agents._world import NodeWorld

if TYPE_CHECKING:
    from edgetrace.agents._app import App, Artifact

__all__ = ["Artifacts", "ReasoningSteps"]

_LOG = SpanKind.LOG


class Artifacts:
    """The models and policies one node has loaded, by name; each built once, on first use."""

    def __init__(self, app: App, world: NodeWorld, *, models: Mapping[str, Artifact] | None = None,
                 policies: Mapping[str, Artifact] | None = None) -> None:
        self._app = app
        self._world = world
        self._paths = {"model": dict(models or {}), "policy": dict(policies or {})}
        self._models: dict[str, ModelRunner] = {}
        self._policies: dict[str, RuleEngine] = {}

    def model(self, name: str) -> ModelRunner:
        runner = self._models.get(name)
        if runner is None:
            loaded = self._world.load(self._app, "model", name, self._paths["model"].get(name))
            assert isinstance(loaded, ModelRunner)
            runner = self._models[name] = loaded
        return runner

    def policy(self, name: str) -> RuleEngine:
        engine = self._policies.get(name)
        if engine is None:
            loaded = self._world.load(self._app, "policy", name, self._paths["policy"].get(name))
            assert isinstance(loaded, RuleEngine)
            engine = self._policies[name] = loaded
        return engine

    def load_all(self) -> None:
        """Load every model and compile every policy the app declares, now: a broken artifact
        fails the start of a run (one line naming the file), not every step of it."""
        for name in sorted(self._app.models):
            self.model(name)
        for name in sorted(self._app.policies):
            self.policy(name)

    def close(self) -> None:
        for runner in self._models.values():
            runner.close()
        for engine in self._policies.values():
            engine.close()


class ReasoningSteps:
    """infer / decide / act / log for one node."""

    def __init__(self, recorder: Recorder, keys: StepCounter, artifacts: Artifacts, world: NodeWorld) -> None:
        self._recorder = recorder
        self._keys = keys
        self._artifacts = artifacts
        self._world = world

    async def infer(self, ctx: StepScope, model: str, inputs: Any) -> Any:
        runner = self._artifacts.model(model)
        key = self._keys.next(ctx.trace, SpanKind.INFER, model)
        await self._world.pace(ctx, key)
        start = self._world.now_ns()
        attrs: dict[str, Any] = {
            attr.GEN_AI_OPERATION_NAME: "text_completion",
            attr.GEN_AI_PROVIDER_NAME: runner.provider,
            attr.GEN_AI_REQUEST_MODEL: model,
            attr.GEN_AI_RESPONSE_MODEL: model,
            attr.MODEL_SHA256: runner.sha256,
            attr.MODEL_OPTIONS: runner.options(),
        }
        blobs: dict[str, str] = {}
        error = ""
        try:
            result = await self._world.run_model(runner, inputs, key)
        except Exception as exc:
            ours = isinstance(exc, EdgeTraceError)  # our errors already say what failed
            error = str(exc) if ours else f"{type(exc).__name__}: {exc}"
            attrs[attr.ERROR_TYPE] = type(exc).__name__
            self._recorder.step(SpanKind.INFER, model, key, ctx, start=start, end=self._world.now_ns(),
                                error=error, attrs=attrs)
            if ours:
                raise
            raise ModelError(f"model {model!r} failed: {error}", model=model) from exc
        attrs.update(result.attrs)
        attrs[attr.OUTPUT] = preview(result.output)
        blobs["input"] = self._recorder.blob(result.inputs if result.inputs is not None else tensor_to_obj(inputs))
        if result.outputs is not None:
            blobs["output"] = self._recorder.blob(result.outputs)
        if result.error:
            attrs[attr.ERROR_TYPE] = "invalid_output"
        self._recorder.step(SpanKind.INFER, model, key, ctx, start=start, end=self._world.now_ns(),
                            error=result.error, attrs=attrs, blobs=blobs)
        return result.output

    async def decide(self, ctx: StepScope, policy: str, document: Any, timeout: float | None) -> Decision:
        engine = self._artifacts.policy(policy)
        key = self._keys.next(ctx.trace, SpanKind.DECIDE, policy)
        await self._world.pace(ctx, key)
        start = self._world.now_ns()
        attrs: dict[str, Any] = {
            attr.POLICY: policy,
            attr.POLICY_SHA256: engine.sha256,
            attr.POLICY_ENGINE: engine.engine,
        }
        try:
            decision = await self._world.run_policy(engine, document, timeout, key)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._recorder.step(SpanKind.DECIDE, policy, key, ctx, start=start, end=self._world.now_ns(),
                                error=error, attrs=attrs,
                                blobs={"input": self._recorder.blob(json_bytes(document))})
            if isinstance(exc, PolicyError):
                raise
            raise PolicyError(f"policy {policy!r} failed: {error}", policy=policy) from exc
        attrs[attr.DECISION] = preview(decision.value)
        attrs[attr.RULES_FIRED] = list(decision.fired)
        attrs[attr.TIMED_OUT] = decision.timed_out
        blobs = {
            "input": self._recorder.blob(json_bytes(document)),
            "result": self._recorder.blob(json_bytes(decision.result)),
        }
        error = f"rule evaluation timed out after {timeout:g}s" if decision.timed_out and timeout else ""
        self._recorder.step(SpanKind.DECIDE, policy, key, ctx, start=start, end=self._world.now_ns(),
                            error=error, attrs=attrs, blobs=blobs)
        return decision

    async def act(self, ctx: StepScope, action: str, args: dict[str, Any]) -> None:
        key = self._keys.next(ctx.trace, SpanKind.ACT, action)
        await self._world.pace(ctx, key)
        actuator = self._world.actuator(action)
        # recorded first, then carried out: an actuation that fails or crashes still left its record
        self._recorder.step(SpanKind.ACT, action, key, ctx,
                            attrs={attr.ACT_ARGS: preview(args), attr.ACT_EXECUTED: actuator is not None})
        if actuator is not None:
            actuator(**args)

    def clock(self, ctx: StepScope) -> int:
        """`ctx.now()`: a recorded read of the node's clock, so a replay returns the same value."""
        key = self._keys.next(ctx.trace, SpanKind.LOG, "clock")
        return self._recorder.step(SpanKind.LOG, "clock", key, ctx).start

    def log(self, ctx: StepScope, message: str, attrs: dict[str, Any]) -> None:
        key = self._keys.next(ctx.trace, _LOG, "log")
        self._recorder.step(_LOG, "log", key, ctx, attrs=previews({attr.MESSAGE: message}, attrs))
