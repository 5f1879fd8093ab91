"""The user's pipeline: handlers for node roles, plus the models and policies they use.

An `App` is declared once and run unchanged in two places: live on the agents (real time,
real TCP) and under the replayer (virtual time, simulated network). It therefore holds only
declarations — which handler serves which topic on which nodes, which model file is called
what — never running state.
"""

from __future__ import annotations

import fnmatch
import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetrace._artifacts import callable_sha256, file_sha256
from edgetrace._errors import ConfigError, UsageError

if TYPE_CHECKING:
    from edgetrace.agents._context import Context
    from edgetrace.agents._models import ModelRunner
    from edgetrace.agents._rules import RuleEngine

__all__ = ["START_TOPIC", "App", "Artifact", "Handler", "ModelSpec", "PolicySpec"]

#: What stands in for a model or policy: a file, or a Python function (see `App.model`/`App.policy`).
Artifact = Path | Callable[[Any], Any]

#: The input a node's start-up handlers receive (see `App.on_start`).
START_TOPIC = "edgetrace.start"

Handler = Callable[["Context", Any], Awaitable[Any]]


@dataclass(frozen=True)
class _Route:
    topic: str
    nodes: str
    handler: Handler


@dataclass(frozen=True)
class ModelSpec:
    """A model the app calls by name: a file (`runner` builds the ModelRunner from it) or a function."""

    name: str
    path: Path | None
    runner: Callable[[str, Path], ModelRunner] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    func: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class PolicySpec:
    """A rule policy the app calls by name: a Rego file or a Python callable."""

    name: str
    path: Path | None = None
    func: Callable[[Any], Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class App:
    """Declares handlers, models, policies and the node that hosts the shared state store.

    >>> app = App("agri", state_host="hub")
    >>> @app.on("frame", nodes="tractor-*")
    ... async def on_frame(ctx, frame): ...
    """

    def __init__(self, name: str, *, state_host: str = "hub", version: str = "") -> None:
        if not name:
            raise ConfigError("an App needs a name")
        self.name = name
        self.state_host = state_host
        self.version = version
        self.initial_state: dict[str, Any] = {}
        self._routes: list[_Route] = []
        self.models: dict[str, ModelSpec] = {}
        self.policies: dict[str, PolicySpec] = {}
        self.invariants: dict[str, Any] = {}
        # Where the app was declared, so a test harness can name it in a saved session
        # (`module:attr` or `file.py:attr`) and `edgetrace replay` can load it back.
        frame = sys._getframe(1)
        self.defined_in: tuple[str, str] = (frame.f_globals.get("__name__", ""), frame.f_globals.get("__file__") or "")

    def reference(self) -> str:
        """`module:attr` (or `file.py:attr`) that loads this app back, or "" if none is found."""
        module_name, file = self.defined_in
        module = sys.modules.get(module_name)
        attr = next((k for k, v in sorted(vars(module).items()) if v is self), None) if module else None
        if attr is None:
            return ""
        # An installed module imports anywhere; a test file or script only by its path.
        installed = bool(file) and any(p in ("site-packages", "dist-packages") for p in Path(file).parts)
        if installed or (module_name and not file):
            return f"{module_name}:{attr}"
        return f"{Path(file).resolve()}:{attr}" if file else ""

    def on(self, topic: str, *, nodes: str = "*") -> Callable[[Handler], Handler]:
        """Register `handler(ctx, payload)` for inputs or messages named `topic` on matching nodes.

        `nodes` is a glob over node ids; the first registered match wins, so specific roles
        should be declared before catch-alls. The handler's return value is the reply to a
        `ctx.call`.
        """

        def register(handler: Handler) -> Handler:
            if not inspect.iscoroutinefunction(handler):
                raise ConfigError(f"handler for {topic!r} must be an async function")
            self._routes.append(_Route(topic, nodes, handler))
            return handler

        return register

    def on_start(self, *, nodes: str = "*") -> Callable[[Handler], Handler]:
        """Register `handler(ctx, None)` to run when a matching node starts — and again each
        time it restarts after a crash, with empty `ctx.local`: where a node rebuilds what it
        keeps in memory. Live it runs when the session's clock starts; it is recorded as the
        input `START_TOPIC`, so a replay runs it at the same instant."""
        return self.on(START_TOPIC, nodes=nodes)

    def starts_on(self, node: str) -> bool:
        return self.handler_for(node, START_TOPIC) is not None

    def handled_topics(self) -> list[str]:
        """Every topic some handler serves (what fault plans and checks may name)."""
        return sorted({r.topic for r in self._routes})

    def handler_for(self, node: str, topic: str) -> Handler | None:
        for route in self._routes:
            if route.topic == topic and fnmatch.fnmatchcase(node, route.nodes):
                return route.handler
        return None

    def model(
        self,
        name: str,
        path: str | Path | None = None,
        *,
        runner: Callable[[str, Path], ModelRunner] | None = None,
        func: Callable[[Any], Any] | None = None,
        **options: Any,
    ) -> None:
        """Declare a model; `ctx.infer(name, ...)` runs it.

        A file (ONNX Runtime by default, or whatever `runner(name, path)` builds), or a Python
        function `func(inputs) -> output` (see `FunctionRunner`): exactly one of the two.
        """
        if (path is None) == (func is None):
            raise ConfigError(f"model {name!r}: give exactly one of a model path or func=")
        self.models[name] = ModelSpec(name, Path(path) if path is not None else None, runner, options, func)

    def policy(
        self, name: str, path: str | Path | Callable[[Any], Any] | None = None, *,
        func: Callable[[Any], Any] | None = None, **options: Any,
    ) -> None:
        """Declare a policy; `ctx.decide(name, document)` runs it and returns a `Decision`.

        A Rego file, or a Python callable (positionally or as `func=`): `func(document)` gets
        the document the handler passed and returns the result — a dict whose `decision` key
        is the Decision's `value` and whose `fired` list names the rules that fired (without
        one, the truthy top-level keys count as fired); any other value is the decision itself.
        """
        if callable(path) and func is None:
            path, func = None, path
        if (path is None) == (func is None):
            raise ConfigError(f"policy {name!r}: give exactly one of a Rego path or a function")
        assert not callable(path)
        self.policies[name] = PolicySpec(name, Path(path) if path else None, func, options)

    def invariant(self, name: str, check: Any) -> None:
        """Attach a named invariant; the replayer checks it on every run of this app."""
        self.invariants[name] = check

    def artifact_hashes(self) -> tuple[dict[str, str], dict[str, str]]:
        """sha256 of every declared model file and policy source, without loading any runtime.

        Called before anything is recorded, so a missing artifact stops the run here with
        its path, instead of surfacing later as a decide/infer error on every step.
        """
        def file_hash(path: Path) -> str:
            try:
                return file_sha256(path)
            except OSError as exc:
                raise ConfigError(
                    f"app {self.name!r}: cannot read {path} ({exc.strerror or exc}); "
                    "was the package installed without its data files?"
                ) from None

        models = {}
        for name, spec in sorted(self.models.items()):
            if spec.path is not None:
                models[name] = file_hash(spec.path)
            elif spec.func is not None:
                models[name] = callable_sha256(spec.func)
        policies = {}
        for name, pspec in sorted(self.policies.items()):
            if pspec.path is not None:
                policies[name] = file_hash(pspec.path)
            elif pspec.func is not None:
                policies[name] = callable_sha256(pspec.func)
        return models, policies

    def build_model(self, name: str, path: Artifact | None = None) -> ModelRunner:
        """The runner for model `name`: the app's own, or `path` in its place (a file or a function)."""
        from edgetrace.agents._models import FunctionRunner, OnnxRunner

        spec = self.models.get(name)
        if spec is None:
            raise UsageError(
                f"app {self.name!r} has no model {name!r}; declared: {', '.join(sorted(self.models)) or 'none'}"
            )
        if callable(path):
            return FunctionRunner(name, path)
        file = path or spec.path
        if file is None:
            assert spec.func is not None
            return FunctionRunner(name, spec.func)
        factory = spec.runner or OnnxRunner
        return factory(name, file)

    def build_policy(self, name: str, path: Artifact | None = None) -> RuleEngine:
        """The engine for policy `name`: the app's own, or `path` in its place (a file or a function)."""
        from edgetrace.agents._rules import PythonPolicy, RegoPolicy

        spec = self.policies.get(name)
        if spec is None:
            raise UsageError(
                f"app {self.name!r} has no policy {name!r}; declared: {', '.join(sorted(self.policies)) or 'none'}"
            )
        if callable(path):
            return PythonPolicy(name, path)
        file = path or spec.path
        if file is not None:
            return RegoPolicy(name, file, **dict(spec.options))
        assert spec.func is not None
        return PythonPolicy(name, spec.func)

