"""Span references resolved as the scan goes: `node:seq` → span index, and each span's cause.

Each node numbers its spans 1, 2, 3, … (docs/format.md), so per node one run of slots by seq
finds a span's index in O(1): no sort of the whole session, and about four bytes a span. A `cause` is
resolved when its span is absorbed, or later, when the span it names turns up further on in
the file (a hub stores each agent's batches as they come). Each resolved message also feeds
the per-link evidence the clock-offset estimate needs (`edgetrace._clock_offsets`), so
estimating offsets at the end of a scan costs nothing more.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgetrace._clock_offsets import LinkEvidence
from edgetrace.tui._columns import allocate, release_all
from edgetrace.tui._span_columns import KIND_CODE, SpanColumns

__all__ = ["RefTable"]

_RECV = KIND_CODE["recv"]
#: A node's seq array grows at most this far past its largest seq so far (a wild seq in a
#: damaged or hand-made file is simply not indexed).
_MAX_GAP = 1 << 22
_CHUNK = 1 << 22


class RefTable:
    """Per node a region of one slot array, indexed by seq: span index + 1 (0: none).

    Regions grow by doubling, moved to the end of the array when they must, so adding a
    frame's spans and finding a frame's causes are a few array operations whatever the
    number of nodes in the frame. Owned by the scanning thread.
    """

    def __init__(self) -> None:
        self.base = np.zeros(0, np.int64)  # per node code: where its region starts
        self.cap = np.zeros(0, np.int64)  # per node code: its region's length
        self.slots = np.zeros(0, np.uint32)
        self.used = 0
        self.pending = np.zeros(0, np.int64)  # spans whose cause was not found yet
        #: per link (sender << 16 | receiver node codes, sorted): messages, least arr - dep (ns)
        self.link_keys = np.zeros(0, np.int64)
        self.link_count = np.zeros(0, np.int64)
        self.link_least = np.zeros(0, np.int64)

    def _ensure(self, node: npt.NDArray[np.uint16], seq: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Make room for these seqs; returns which fit (a wild seq in a damaged or hand-made
        file is not indexed)."""
        top = int(node.max()) + 1 if len(node) else 0
        if top > len(self.base):
            grow = top - len(self.base)
            self.base = np.concatenate((self.base, np.zeros(grow, np.int64)))
            self.cap = np.concatenate((self.cap, np.zeros(grow, np.int64)))
        over = seq >= self.cap[node]
        if not over.any():  # nearly every frame once the regions have grown
            return ~over
        need = np.zeros(len(self.base), np.int64)
        np.maximum.at(need, node[over], seq[over] + 1)
        short = np.flatnonzero(need > self.cap)
        for code in short.tolist():
            old, want = int(self.cap[code]), int(need[code])
            if want - old > _MAX_GAP and want > 4 * old:
                continue
            size = max(want, 2 * old, 256)
            at = int(self.base[code])
            new_at = at if old and at + old == self.used else self.used  # the last region grows in place
            if new_at + size > len(self.slots):
                grown = allocate("u4", max(new_at + size, 2 * len(self.slots)))
                for a in range(0, self.used, _CHUNK):  # a piece at a time, handing pages back
                    grown[a:min(self.used, a + _CHUNK)] = self.slots[a:min(self.used, a + _CHUNK)]
                    release_all()
                self.slots = grown
            if new_at != at and old:
                self.slots[new_at:new_at + old] = self.slots[at:at + old]
            self.slots[new_at + old:new_at + size] = 0
            self.base[code], self.cap[code] = new_at, size
            self.used = max(self.used, new_at + size)
        return seq < self.cap[node]

    def add(self, base: int, node: npt.NDArray[np.uint16], seq: npt.NDArray[np.int64]) -> None:
        """Index the spans base, base+1, … of one frame (the first of a repeated ref wins)."""
        fits = self._ensure(node, seq)
        pos = np.flatnonzero(fits)
        slot = self.base[node[pos]] + seq[pos]
        free = self.slots[slot] == 0
        at, value = slot[free], (base + pos[free] + 1).astype(np.uint32)
        self.slots[at] = value
        if (self.slots[at] == value).all():  # each slot written once: no ref repeated in the frame
            return
        self.slots[at] = 0  # a repeated ref (a damaged or hand-made file): the first one wins
        uniq, first = np.unique(at, return_index=True)
        self.slots[uniq] = value[first]

    def find(self, node: npt.NDArray[np.uint16], seq: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        """Span index of each (node, seq), -1 where there is none."""
        node = node.astype(np.int64)
        seq = seq.astype(np.int64)
        known = (node > 0) & (node < len(self.base))
        safe = np.where(known, node, 0)
        inside = known & (seq < self.cap[safe] if len(self.cap) else False)
        out = np.full(len(node), -1, np.int64)
        at = np.flatnonzero(inside)
        out[at] = self.slots[self.base[safe[at]] + seq[at]].astype(np.int64) - 1
        return out

    def one(self, node: int, seq: int) -> int | None:
        found = int(self.find(np.array([node], np.uint16), np.array([seq], np.uint32))[0])
        return found if found >= 0 else None

    def resolve(self, sp: SpanColumns, spans: npt.NDArray[np.int64]) -> None:
        """Find the causes of these spans; those not found stay pending; found messages
        (across nodes) are noted as link evidence."""
        if not len(spans):
            return
        cause = self.find(sp.cause_node[spans], sp.cause_seq[spans])
        found = cause >= 0
        self.pending = np.concatenate((self.pending, spans[~found]))
        dst, src = spans[found], cause[found]
        if not len(dst):
            return
        sp.cause_idx[dst] = (src + 1).astype(np.uint32)
        cross = sp.node[src] != sp.node[dst]
        dst, src = dst[cross], src[cross]
        if not len(dst):
            return
        arr = np.where(sp.kind[dst] == _RECV, sp.end[dst], sp.start[dst])
        delay = arr - sp.end[src]
        link = sp.node[src].astype(np.int64) << 16 | sp.node[dst].astype(np.int64)
        keys, inverse, counts = np.unique(link, return_inverse=True, return_counts=True)
        least = np.full(len(keys), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(least, inverse, delay)
        at = np.searchsorted(self.link_keys, keys)
        known = (at < len(self.link_keys)) & (self.link_keys[np.minimum(at, max(0, len(self.link_keys) - 1))] == keys
                                              if len(self.link_keys) else False)
        hit = at[known]
        self.link_count[hit] += counts[known]
        self.link_least[hit] = np.minimum(self.link_least[hit], least[known])
        if not known.all():
            new = ~known
            keys_all = np.concatenate((self.link_keys, keys[new]))
            order = np.argsort(keys_all, kind="stable")
            self.link_keys = keys_all[order]
            self.link_count = np.concatenate((self.link_count, counts[new]))[order]
            self.link_least = np.concatenate((self.link_least, least[new]))[order]

    def retry(self, sp: SpanColumns) -> None:
        """Causes that named spans later in the file: look again."""
        if len(self.pending):
            waiting, self.pending = self.pending, np.zeros(0, np.int64)
            self.resolve(sp, waiting)

    def evidence(self, names: list[str]) -> list[LinkEvidence]:
        return [LinkEvidence(names[k >> 16], names[k & 0xFFFF], n, least) for k, n, least in
                zip(self.link_keys.tolist(), self.link_count.tolist(), self.link_least.tolist(), strict=True)]
