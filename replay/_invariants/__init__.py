"""Invariants: named predicates over a run's causal history, and the violations they find.

Three forms cover most safety properties of reasoning pipelines, plus plain Python:

- ``every A after B``          each A is causally preceded, in its trace, by a B
- ``never A``                  no step matches A
- ``never A after B on KEY``   no A causally after a B whose key matches (across nodes),
                               optionally ``unless C between`` (a C causally between them)
- ``never concurrent A with B on same FIELD``   no two such steps unordered by happens-before
- ``every A within 1s after B``                 a deadline along the causal chain
- ``sometimes A`` / ``reachable A`` / ``unreachable A``   coverage (Antithesis-style)

where A and B are step selectors such as ``act(spray) at tractor-* where args.zone ~ "row-*"``.
A violation names the offending step and carries its causal chain, so the report can show
how the pipeline got there. The text language is documented in docs/invariants.md.

One job per module: `_model` (Selector, History, Violation, the Invariant base), `_kinds`
(the forms above and FunctionInvariant), `_parser` (the text language, on the selector core
`edgetrace._selector` it shares with the explorer's filter), `_resolve` (names → invariants).
Scenario-specific invariants live with their scenario (`scenarios/agri/invariants.py`).
"""

from __future__ import annotations

from edgetrace.replay._invariants._distributed import Coverage, NotConcurrent, Within
from edgetrace.replay._invariants._kinds import FunctionInvariant, Never, NotAfter, Precedes
from edgetrace.replay._invariants._model import (
    Cond,
    History,
    Invariant,
    Selector,
    Violation,
    check_all,
)
from edgetrace.replay._invariants._parser import parse_invariant, parse_selector
from edgetrace.replay._invariants._resolve import resolve

__all__ = [
    "Cond",
    "Coverage",
    "FunctionInvariant",
    "History",
    "Invariant",
    "Never",
    "NotAfter",
    "NotConcurrent",
    "Precedes",
    "Selector",
    "Violation",
    "Within",
    "check_all",
    "parse_invariant",
    "parse_selector",
    "resolve",
]
