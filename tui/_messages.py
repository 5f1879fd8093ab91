"""Messages of a scanned session: each span whose `cause` names a span on another node.

A served state operation names the request, a reply's receive names the served operation, a
message's receive names its send (`RefTable` resolves these as the scan goes). Each such
pair across two nodes is a message: it left at the sender's local `end` and arrived at the
receiver's local `end` for a receive (a call's receive span starts when the call was made)
or its `start` otherwise. The fleet view and the causal views are made of these pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgetrace._clock_offsets import ClockOffsets, estimate_offsets
from edgetrace.tui._span_columns import KIND_CODE
from edgetrace.tui._trace_table import TraceTable

__all__ = ["Messages", "causes", "estimate_table_offsets", "messages"]

_RECV = KIND_CODE["recv"]


@dataclass
class Messages:
    """Cross-node cause pairs: `src[i]` sent what `dst[i]` received (span indices)."""

    src: npt.NDArray[np.int64]
    dst: npt.NDArray[np.int64]
    dep: npt.NDArray[np.int64]  # local departure on the sender's clock
    arr: npt.NDArray[np.int64]  # local arrival on the receiver's clock
    src_node: npt.NDArray[np.uint16]
    dst_node: npt.NDArray[np.uint16]

    def __len__(self) -> int:
        return len(self.src)


def causes(table: TraceTable, m: int | None = None) -> npt.NDArray[np.int64]:
    """Per span, the index of the span its cause names (same node or not), or -1."""
    m = table.span_count if m is None else m
    return table.spans.cause_idx[:m].astype(np.int64) - 1


def messages(table: TraceTable) -> Messages:
    """Every message among the spans scanned so far."""
    sp = table.spans
    cause = causes(table)
    dst = np.flatnonzero(cause >= 0)
    src = cause[dst]
    cross = sp.node[src] != sp.node[dst]
    src, dst = src[cross], dst[cross]
    arr = np.where(sp.kind[dst] == _RECV, sp.end[dst], sp.start[dst])
    return Messages(src=src, dst=dst, dep=sp.end[src].copy(), arr=arr, src_node=sp.node[src].copy(),
                    dst_node=sp.node[dst].copy())


def estimate_table_offsets(table: TraceTable) -> ClockOffsets:
    """Clock offsets of every node of the table, from the evidence its scan gathered."""
    names = table.nodes.text
    return estimate_offsets(table.refs.evidence(names), [n for n in names[1:] if n])
