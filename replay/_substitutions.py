"""What stands in for a model or policy in a replay (`--model NAME=…`, `--policy NAME=…`, a
fixture's `models=`/`policies=`): a file, or a Python function by reference or as an object —
and how a printed command line names it again."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgetrace._artifacts import callable_sha256, file_sha256
from edgetrace._errors import UsageError
from edgetrace.agents._app import Artifact

__all__ = ["artifact_ref", "artifact_sha", "parse_substitutions"]


def parse_substitutions(items: Sequence[str] | Mapping[str, Any], *, what: str) -> dict[str, Artifact]:
    """What stands in for a model or policy: `NAME=PATH` or `NAME=MODULE:ATTR` / `NAME=FILE.py:ATTR`
    strings (from --model / --policy), or a mapping of names to paths or Python callables."""
    pairs = list(items.items()) if isinstance(items, Mapping) else []
    if not isinstance(items, Mapping):
        for item in items:
            name, sep, ref = item.partition("=")
            if not sep or not name or not ref:
                raise UsageError(f"bad --{what} {item!r}: expected NAME=PATH or NAME=MODULE:FUNCTION")
            pairs.append((name, ref))
    found: dict[str, Artifact] = {}
    for name, value in pairs:
        found[name] = _artifact(name, value, what)
    return found


def _artifact(name: str, value: Any, what: str) -> Artifact:
    if callable(value):
        func: Callable[[Any], Any] = value
        return func
    text = str(value)
    if Path(text).is_file():
        return Path(text)
    module, sep, attr_name = text.rpartition(":")
    if sep and module and attr_name and (module.endswith(".py") or "/" not in module):
        from edgetrace.agents._scenario import import_ref

        found = import_ref(text, what=f"--{what} {name}")
        if not callable(found):
            raise UsageError(f"--{what} {name}: {text} is a {type(found).__name__}, not a function")
        return found  # type: ignore[no-any-return]
    raise UsageError(f"--{what} {name}: no file at {text} (a Python {what} is MODULE:FUNCTION or FILE.py:FUNCTION)")


def artifact_sha(artifact: Artifact) -> str:
    return callable_sha256(artifact) if callable(artifact) else file_sha256(artifact)


def artifact_ref(artifact: Artifact) -> str:
    """How a command line names an artifact: its path, or where a Python function can be imported."""
    if not callable(artifact):
        return str(artifact)
    import inspect

    module = inspect.getmodule(artifact)
    qual = getattr(artifact, "__qualname__", "")
    file = inspect.getsourcefile(artifact) if module is not None else None
    if module is not None and getattr(module, qual, None) is artifact:
        installed = file is not None and any(p in ("site-packages", "dist-packages") for p in Path(file).parts)
        if installed or file is None:
            return f"{module.__name__}:{qual}"
        return f"{Path(file).resolve()}:{qual}"
    return f"<{qual or artifact!r}: not importable by name>"
