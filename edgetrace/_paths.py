"""Path latency per causal chain, with no configuration: where the time from input to act goes.

Every trace that ends in an act (or, lacking one, in its last step) is one chain: the steps of
the trace in the act's causal past, in causal order — input → infer → state.put → (the hub)
state.put → recv → decide → act. Chains are grouped by *shape*: the sequence of (node role,
step) with node ids folded into roles (`tractor-07` → `tractor-*`), so the 64 frames of eight
tractors make one shape (numbers in step names fold the same way: `zones/row-37` → `zones/row-*`).
For each shape: how many chains, end-to-end latency percentiles, and
the hop that dominates (the largest median share). Nothing to declare beforehand — CARET asks
its users to write such path definitions by hand.

Times are each step's local clock; a hop between nodes includes their clock skew, which the
report does not try to hide.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterable
from typing import Any

from edgetrace._index import CausalIndex
from edgetrace._records import Span, SpanKind

__all__ = ["chain_paths", "role"]

_STEPS = frozenset({SpanKind.INPUT, SpanKind.INFER, SpanKind.DECIDE, SpanKind.SEND, SpanKind.RECV,
                    SpanKind.STATE_GET, SpanKind.STATE_PUT, SpanKind.ACT, SpanKind.OTEL})
_DIGITS = re.compile(r"\d+")


def role(node: str) -> str:
    """A node's role: its id with numbers folded (`tractor-07` → `tractor-*`)."""
    return _DIGITS.sub("*", node)


def _pct(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def chain_paths(spans: Iterable[Span], index: CausalIndex | None = None) -> list[dict[str, Any]]:
    """One entry per chain shape, most common first (ties by shape text)."""
    spans = list(spans)
    index = index if index is not None else CausalIndex(spans)
    by_trace: dict[str, list[Span]] = {}
    for s in spans:
        if s.trace and s.kind in _STEPS:
            by_trace.setdefault(s.trace, []).append(s)
    shapes: dict[tuple[str, ...], list[tuple[int, list[int]]]] = {}
    for trace in sorted(by_trace):
        steps = index.causal_sort(by_trace[trace])
        acts = [s for s in steps if s.kind is SpanKind.ACT]
        end = acts[-1] if acts else steps[-1]
        past = {s.ref for s in index.causal_past(end, trace=trace)}
        chain = [s for s in steps if s.ref in past] + [end]
        if len(chain) < 2:
            continue
        shape = tuple(f"{s.kind.value} {role(s.name)}@{role(s.node)}" for s in chain)
        hops = [max(0, b.start - a.start) for a, b in itertools.pairwise(chain)]
        shapes.setdefault(shape, []).append((max(0, end.end - chain[0].start), hops))
    found: list[tuple[int, str, dict[str, Any]]] = []
    for shape, runs in shapes.items():
        total = [t for t, _ in runs]
        hop_medians = [statistics.median(h[i] for _, h in runs) for i in range(len(shape) - 1)]
        worst = max(range(len(hop_medians)), key=lambda i: (hop_medians[i], -i))
        share = hop_medians[worst] / max(1, statistics.median(total))
        found.append((-len(runs), " → ".join(shape), {
            "shape": list(shape), "chains": len(runs),
            "latency_ns": {"p50": _pct(total, 0.5), "p90": _pct(total, 0.9), "p99": _pct(total, 0.99),
                           "max": max(total)},
            "dominant_hop": {"from": shape[worst], "to": shape[worst + 1], "median_ns": int(hop_medians[worst]),
                             "share": round(share, 3)},
        }))
    return [entry for _, _, entry in sorted(found, key=lambda f: (f[0], f[1]))]
