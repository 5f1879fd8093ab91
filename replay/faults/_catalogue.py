"""Every fault kind edgetrace knows: the family modules, imported for their registrations.

A new kind is one class in a family module (or a new module listed here) plus its test and
an example in docs/faults.md; `FaultKind` is built from the registry, so nothing else changes.
"""

from __future__ import annotations

import enum

from edgetrace.replay.faults import _clock, _network, _node, _steps  # noqa: F401 - they register kinds
from edgetrace.replay.faults._base import REGISTRY

__all__ = ["FaultKind"]

#: The names of every registered kind, e.g. FaultKind.LATENCY == "latency".
FaultKind = enum.StrEnum("FaultKind", {name.upper(): name for name in REGISTRY})  # type: ignore[misc]
