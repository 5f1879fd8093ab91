"""The replayer: deterministic virtual-time re-execution with faults, invariants and reports.

Names are imported on first use: the pytest plugin lives in this package, and importing it
(which pytest does in every run of every project that has edgetrace installed) must not
pull in numpy, onnxruntime or the agent runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgetrace.replay._divergence import Divergence
    from edgetrace.replay._faults import FaultPlan
    from edgetrace.replay._invariants import Invariant, Violation
    from edgetrace.replay._loop import VirtualLoop, run_virtual
    from edgetrace.replay._replayer import Replayer, parse_substitutions, replay_session
    from edgetrace.replay._report import ReplayReport, TraceReport
    from edgetrace.replay._sim import ReplayRun, SimGrid, SimNode

_LAZY = {
    "Divergence": "edgetrace.replay._divergence",
    "FaultPlan": "edgetrace.replay._faults",
    "Invariant": "edgetrace.replay._invariants",
    "Violation": "edgetrace.replay._invariants",
    "VirtualLoop": "edgetrace.replay._loop",
    "run_virtual": "edgetrace.replay._loop",
    "Replayer": "edgetrace.replay._replayer",
    "parse_substitutions": "edgetrace.replay._replayer",
    "replay_session": "edgetrace.replay._replayer",
    "ReplayReport": "edgetrace.replay._report",
    "TraceReport": "edgetrace.replay._report",
    "ReplayRun": "edgetrace.replay._sim",
    "SimGrid": "edgetrace.replay._sim",
    "SimNode": "edgetrace.replay._sim",
}

__all__ = [
    "Divergence",
    "FaultPlan",
    "Invariant",
    "ReplayReport",
    "ReplayRun",
    "Replayer",
    "SimGrid",
    "SimNode",
    "TraceReport",
    "Violation",
    "VirtualLoop",
    "parse_substitutions",
    "replay_session",
    "run_virtual",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgetrace.replay' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
