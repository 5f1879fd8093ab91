"""Rule-engine adapters: the `decide` step. Rego through regopy, or a plain Python callable.

A decision records the policy's identity by hash (so a replay with `--policy` shows which
rules changed the outcome), the input document, the result and the rules that fired. Rego
has no firing trace of its own, so the convention is: a policy may define a `fired` set of
rule names; without one, the top-level rules with a truthy value count as fired. The
decision value is the policy's `decision` rule when it has one, else the whole document.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from edgetrace._artifacts import callable_sha256, file_sha256
from edgetrace._errors import PolicyError

__all__ = ["Decision", "PythonPolicy", "RegoPolicy", "RuleEngine"]

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)


@dataclass(frozen=True)
class Decision:
    """The outcome of one policy evaluation."""

    value: Any
    result: Any
    fired: list[str] = field(default_factory=list)
    timed_out: bool = False


def _fired(result: Any) -> list[str]:
    if isinstance(result, dict):
        if isinstance(result.get("fired"), list):
            return sorted(str(x) for x in result["fired"])
        return sorted(k for k, v in result.items() if v and k != "decision")
    return []


def _value(result: Any) -> Any:
    if isinstance(result, dict) and "decision" in result:
        return result["decision"]
    return result


class RuleEngine(abc.ABC):
    """One loaded policy."""

    engine = "python"
    #: The replay may serve this engine's decisions from the recording when the input document
    #: is byte-identical (as JSON): only engines whose result depends on nothing but the
    #: document's JSON value, and is itself JSON, opt in (Rego does; a Python function may not).
    memoisable = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.sha256 = ""

    @abc.abstractmethod
    def evaluate(self, document: Any) -> Decision:
        """Evaluate the policy on an input document; deterministic for the same document."""

    def recall(self, result: Any) -> Decision:
        """The Decision `evaluate` returned, rebuilt from its recorded result."""
        return Decision(_value(result), result, _fired(result))

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        pass

    def __enter__(self) -> RuleEngine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Said:
    text = ""


@contextlib.contextmanager
def _native_stdout() -> Iterator[_Said]:
    """Capture what native code writes to file descriptor 1 (not `sys.stdout`) while inside."""
    said = _Said()
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield said
        finally:
            _fflush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            said.text = tmp.read().decode("utf-8", "replace")


def _fflush() -> None:
    """Flush C stdio buffers, so native output lands before fd 1 is restored."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - no libc symbols (not Linux/macOS)
        pass


class RegoPolicy(RuleEngine):
    """A Rego file evaluated by regopy, compiled once into a bundle (≈ 4× faster per query).

    A regopy interpreter holds the input of the query in flight (`set_input`, then
    `query_bundle`), so two evaluations on one interpreter interleave their inputs. Live, a
    decide with a timeout runs on a worker thread (and may still be running after the handler
    gave up on it), so each thread gets its own interpreter and bundle, compiled on its first
    evaluation; the one built at load time checks that the policy compiles at all.
    """

    engine = "rego"
    memoisable = True  # input and result are JSON values; regopy's objects come out key-sorted

    def __init__(self, name: str, path: str | Path, *, query: str | None = None) -> None:
        super().__init__(name)
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"policy {name!r}: cannot read {self.path}: {exc.strerror}", policy=name) from None
        self.sha256 = file_sha256(self.path)
        try:
            self._source = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(f"policy {name!r}: {self.path} is not UTF-8 text", policy=name) from None
        match = _PACKAGE.search(self._source)
        if match is None:
            raise PolicyError(f"policy {name!r}: {self.path} has no `package` line", policy=name)
        self.package = match.group(1)
        self.query = query or f"data.{self.package}"
        import regopy

        self._regopy = regopy
        self._local = threading.local()
        self._compiled()  # compile errors surface here, at load, not at the first decide

    def _compiled(self) -> tuple[Any, Any]:
        """This thread's (interpreter, bundle)."""
        found: tuple[Any, Any] | None = getattr(self._local, "compiled", None)
        if found is None:
            interp = self._regopy.Interpreter()
            with _native_stdout() as said:  # regopy prints its diagnostics on fd 1: keep stdout clean
                try:
                    interp.add_module(self.path.stem, self._source)
                    bundle = interp.build(self.query)
                    failed = None
                except self._regopy.RegoError as exc:
                    failed = exc
            if failed is not None:
                # regopy's own words: the message and where ("Invalid arithmetic operator -- bad:3:21")
                lines = [line.strip() for line in said.text.splitlines() if line.strip() and line.strip() != "Errors:"]
                why = " ".join(lines[:2]) or " ".join(str(failed).split())
                raise PolicyError(f"policy {self.name!r}: {self.path} does not compile: {why[:300]}",
                                  policy=self.name) from None
            found = self._local.compiled = (interp, bundle)
        return found

    def evaluate(self, document: Any) -> Decision:
        interp, bundle = self._compiled()
        interp.set_input(self._regopy.Input(document))
        output = interp.query_bundle(bundle)
        if not output.ok():
            raise PolicyError(f"policy {self.name!r} failed: {' '.join(str(output).split())[:200]}", policy=self.name)
        parsed = json.loads(str(output))
        expressions = parsed.get("expressions") or [None]
        result = expressions[0]
        return Decision(_value(result), result, _fired(result))


class PythonPolicy(RuleEngine):
    """A plain callable `f(document) -> result`, identified by qualified name + source hash."""

    def __init__(self, name: str, func: Callable[[Any], Any]) -> None:
        super().__init__(name)
        self.func = func
        self.qualname = f"{func.__module__}.{func.__qualname__}"
        self.sha256 = callable_sha256(func)

    def evaluate(self, document: Any) -> Decision:
        result = self.func(document)
        return Decision(_value(result), result, _fired(result))
