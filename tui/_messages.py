"""Messages of a scanned session: which span a span's `cause` names, and when each left and arrived.

A span that received something names the span that sent it (`cause`): a served state
operation names the request, a reply's receive names the served operation, a message's
receive names its send. Each such pair across two nodes is a message: it left at the
sender's local `end` and arrived at the receiver's local `end` for a receive (a call's
receive span starts when the call was made) or its `start` otherwise. These pairs are what
the clock-offset estimate (`edgetrace._clock_offsets`), the fleet view and the causal
views are made of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgetrace._clock_offsets import ClockOffsets, LinkEvidence, estimate_offsets
from edgetrace.tui._span_columns import KIND_CODE
from edgetrace.tui._trace_table import TraceTable

__all__ = ["Messages", "RefIndex", "estimate_table_offsets", "messages"]

_RECV = KIND_CODE["recv"]


class RefIndex:
    """(node code, seq) → span index, over the spans scanned when it was built."""

    def __init__(self, table: TraceTable) -> None:
        m = self.count = table.span_count
        sp = table.spans
        keys = (sp.node[:m].astype(np.uint64) << np.uint64(32)) | sp.seq[:m].astype(np.uint64)
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]

    def find(self, nodes: npt.NDArray[np.uint16], seqs: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        """Span index of each (node, seq), or -1 where there is none (the first such span
        if a ref appears twice, as after a duplicate delivery)."""
        want = (nodes.astype(np.uint64) << np.uint64(32)) | seqs.astype(np.uint64)
        if not len(self.keys):
            return np.full(len(want), -1, np.int64)
        pos = np.searchsorted(self.keys, want)
        pos_ok = np.minimum(pos, len(self.keys) - 1)
        hit = (pos < len(self.keys)) & (self.keys[pos_ok] == want) & (nodes > 0)
        return np.where(hit, self.order[pos_ok], -1).astype(np.int64)

    def one(self, node: int, seq: int) -> int | None:
        found = int(self.find(np.array([node], np.uint16), np.array([seq], np.uint32))[0])
        return None if found < 0 else found


@dataclass
class Messages:
    """Cross-node cause pairs: `src[i]` sent what `dst[i]` received (span indices)."""

    src: npt.NDArray[np.int64]
    dst: npt.NDArray[np.int64]
    dep: npt.NDArray[np.int64]  # local departure on the sender's clock
    arr: npt.NDArray[np.int64]  # local arrival on the receiver's clock
    src_node: npt.NDArray[np.uint16]
    dst_node: npt.NDArray[np.uint16]
    #: Per span (by index): the span that caused it, or -1 (same-node causes included).
    cause: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.src)

    def evidence(self, names: list[str]) -> list[LinkEvidence]:
        """Per direction of every link: message count and least `arr - dep`."""
        if not len(self):
            return []
        link = (self.src_node.astype(np.int64) << 16) | self.dst_node.astype(np.int64)
        delay = self.arr - self.dep
        order = np.lexsort((delay, link))
        link, delay = link[order], delay[order]
        starts = np.flatnonzero(np.concatenate(([True], link[1:] != link[:-1])))
        counts = np.diff(np.concatenate((starts, [len(link)])))
        return [LinkEvidence(names[int(link[s]) >> 16], names[int(link[s]) & 0xFFFF], int(c), int(delay[s]))
                for s, c in zip(starts.tolist(), counts.tolist(), strict=True)]


def messages(table: TraceTable, refs: RefIndex | None = None) -> Messages:
    """Every message among the spans scanned so far."""
    refs = refs or RefIndex(table)
    m = refs.count
    sp = table.spans
    cause = refs.find(sp.cause_node[:m], sp.cause_seq[:m])
    dst = np.flatnonzero(cause >= 0)
    src = cause[dst]
    cross = sp.node[src] != sp.node[dst]
    src, dst = src[cross], dst[cross]
    arr = np.where(sp.kind[dst] == _RECV, sp.end[dst], sp.start[dst])
    return Messages(src=src, dst=dst, dep=sp.end[src].copy(), arr=arr, src_node=sp.node[src].copy(),
                    dst_node=sp.node[dst].copy(), cause=cause)


def estimate_table_offsets(table: TraceTable, msgs: Messages | None = None) -> ClockOffsets:
    """Clock offsets of every node of the table, from its messages."""
    msgs = msgs if msgs is not None else messages(table)
    names = table.nodes.text
    return estimate_offsets(msgs.evidence(names), [n for n in names[1:] if n])
