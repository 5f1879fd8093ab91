"""The causal cut of a finding, as the explorer opens it (`edgetrace explore S --why REF`).

A replay report lists, for each violation, first divergence or handler error, the steps that
bear on it across nodes and traces (`edgetrace._why`). The explorer computes the same cut over
the session it opens and shows it as a causal view of exactly those spans, the finding first:
the report's lines become lanes, arrows and a cursor to open any of them in its trace.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["finding_cut"]


def finding_cut(path: Path, ref: str, *, depth: int | None = 12) -> list[str]:
    """The refs of the cut of the step `ref` in the session at `path`, the finding first, then
    its causal past in causal order. A ref the session does not hold is a UsageError (exit 2)."""
    from edgetrace._records import parse_ref
    from edgetrace._session import Session
    from edgetrace._why import Why

    parse_ref(ref)  # malformed: ValueError, said by the caller
    session = Session(path)
    span = session.span(ref)  # UsageError when missing
    steps = Why(session.spans, session.index).cut(span, depth=depth)
    return [ref, *(s.span.ref for s in steps if s.span.ref != ref)]
