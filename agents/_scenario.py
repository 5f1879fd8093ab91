"""A scenario: an app plus everything needed to run it as a grid — nodes, inputs, profiles.

`edgetrace record NAME` and `edgetrace demo` find scenarios by name in the installed
`edgetrace.scenarios` package or by path to a folder holding a `scenario.py`, so they work
from any directory.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._errors import ConfigError, EdgeTraceError, UsageError
from edgetrace.agents._app import App
from edgetrace.agents._grid import GridProfile

__all__ = ["Scenario", "ScheduledInput", "import_ref", "load_app", "load_scenario"]


@dataclass(frozen=True)
class ScheduledInput:
    """An external input: at `at` seconds after start, `payload` arrives at `node` as `topic`."""

    at: float
    node: str
    topic: str
    trace: str
    payload: Any


@dataclass
class Scenario:
    name: str
    app: App
    app_ref: str
    nodes: Callable[[int], list[str]]
    inputs: Callable[[int, int], list[ScheduledInput]]
    profiles: Mapping[str, GridProfile]
    default_profile: str
    folder: Path
    invariants: Sequence[str] = ()
    default_size: int = 8
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def profile(self, name: str | None) -> GridProfile:
        name = name or self.default_profile
        try:
            return self.profiles[name]
        except KeyError:
            raise UsageError(
                f"scenario {self.name!r} has no profile {name!r}; expected one of: {', '.join(sorted(self.profiles))}"
            ) from None

    def fault_plan(self, name: str) -> Path:
        path = self.folder / "faults" / (name if name.endswith(".toml") else f"{name}.toml")
        if not path.is_file():
            raise UsageError(f"scenario {self.name!r} has no fault plan {name!r} ({path})")
        return path

    def policy_file(self, name: str) -> Path:
        path = self.folder / "policies" / (name if name.endswith(".rego") else f"{name}.rego")
        if not path.is_file():
            raise UsageError(f"scenario {self.name!r} has no policy file {name!r} ({path})")
        return path


def import_ref(ref: str, *, what: str = "app reference") -> Any:
    """`module:attr`, or `path/to/file.py:attr` for code that lives in a test file, not a package.

    Importing runs the module's code: call this only for references the user gave (an `--app`,
    a `--policy`), never for one read from a session file.
    """
    module_name, sep, attr = ref.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"bad {what} {ref!r}: expected MODULE:ATTRIBUTE, e.g. mypkg.pipeline:app")
    if module_name.endswith(".py"):
        file = Path(module_name)
        if not file.is_file():
            raise UsageError(f"{what} {ref!r}: no file at {file}")
        module = _exec_file(file, f"_edgetrace_ref_{file.stem}", f"{what} {ref!r}")
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UsageError(f"cannot import {module_name!r} for {ref!r}: {exc}") from None
        except EdgeTraceError:
            raise
        except Exception as exc:
            raise _import_failed(f"{what} {ref!r}", module_name, exc) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None


def _exec_file(file: Path, module_name: str, what: str) -> Any:
    """Import a file that is not in a package, with its folder on sys.path for sibling imports."""
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise UsageError(f"{what}: cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    if str(file.parent) not in sys.path:
        sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise UsageError(f"{what}: cannot import {file}: {exc}") from None
    except EdgeTraceError:
        raise  # the app's own declaration refused, with its message (a missing model file, …)
    except Exception as exc:  # the user's code raised while it was imported: their bug, not ours
        raise _import_failed(what, file.name, exc) from None
    return module


def _import_failed(what: str, name: str, exc: Exception) -> ConfigError:
    """One line for an app or scenario whose import raised, at the line of the user's code."""
    from edgetrace.agents._code import exception_attrs

    where = exception_attrs(exc)[attr.CODE]
    return ConfigError(f"{what}: importing {name} raised {type(exc).__name__}: {exc}"
                       + (f" at {where}" if where else ""))


def load_app(ref: str) -> App:
    """Import `module:attr`; the attribute may be an App or a Scenario."""
    obj = import_ref(ref)
    if isinstance(obj, Scenario):
        return obj.app
    if not isinstance(obj, App):
        raise UsageError(f"{ref!r} is a {type(obj).__name__}, not an edgetrace App")
    return obj


def load_scenario(name_or_path: str) -> Scenario:
    """A scenario by name (`agri`) or by folder path (`./my_scenario`)."""
    path = Path(name_or_path)
    if path.is_dir() or name_or_path.endswith(".py"):
        file = path / "scenario.py" if path.is_dir() else path
        if not file.is_file():
            raise UsageError(f"{path}: no scenario.py in this folder" if path.is_dir() else f"no file at {path}")
        module = _exec_file(file, f"_edgetrace_scenario_{file.parent.name}", f"scenario {name_or_path!r}")
    else:
        try:
            module = importlib.import_module(f"edgetrace.scenarios.{name_or_path}.scenario")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"edgetrace.scenarios.{name_or_path}"):
                from edgetrace.scenarios import available

                raise UsageError(
                    f"unknown scenario {name_or_path!r}; expected one of: {', '.join(available())} "
                    "or a path to a folder with a scenario.py"
                ) from None
            raise
    scenario = getattr(module, "SCENARIO", None)
    if not isinstance(scenario, Scenario):
        raise ConfigError(f"{module.__name__} defines no SCENARIO = Scenario(...)")
    return scenario
