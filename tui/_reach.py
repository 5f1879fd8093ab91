"""Happens-before over the span columns: reachability along program order and messages.

A vector clock is what program order and messages leave behind: a node's step ticks its own
entry and a receive merges the sender's clock, so `a → b` holds exactly when `b` can be
reached from `a` along same-node program order and `cause` links. `ChainGraph` answers that
over the columns of a whole session (or, with traces as part of the chain key, within each
trace, as the filter language's causal operators look), without building a clock per span.

Program order is a chain: once a span of a chain is reached, so is every later span of it.
So a search keeps, per chain, the first rank reached (or, going back, the last), and only
iterates over message hops. `levels` are Lamport timestamps (a topological numbering: a → b
implies level(a) < level(b)), which order a causal view and bound a search to the spans
that can lie on a path between two given ones.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

__all__ = ["ChainGraph", "span_ranges"]

Mask = npt.NDArray[np.bool_]
Idx = npt.NDArray[np.int64]


def span_ranges(lo: Idx, hi: Idx) -> Idx:
    """Concatenated arange(lo[i], hi[i]) for every i (empty where hi <= lo)."""
    lens = np.maximum(hi - lo, 0)
    total = int(lens.sum())
    if not total:
        return np.zeros(0, np.int64)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
    return starts + np.arange(total)


class ChainGraph:
    """Chains (spans sharing a key, in seq order) linked by cause edges.

    `keys`: per span, the chain it belongs to (node code, or trace and node); `seq`: its
    position on the chain; `cause`: per span, the span whose message it received, or -1.
    """

    def __init__(self, keys: npt.NDArray[np.int64], seq: npt.NDArray[np.int64], cause: Idx) -> None:
        m = self.m = len(keys)
        order = np.lexsort((seq, keys))
        k = keys[order]
        new = np.concatenate(([True], k[1:] != k[:-1])) if m else np.zeros(0, bool)
        group_sorted = np.cumsum(new) - 1
        self.gstart = np.flatnonzero(new)
        self.glen = np.diff(np.concatenate((self.gstart, [m])))
        self.order = order  # sorted position → span
        self.grp = np.empty(m, np.int64)
        self.grp[order] = group_sorted
        self.rank = np.empty(m, np.int64)
        self.rank[order] = np.arange(m) - self.gstart[group_sorted]
        self.cause = cause
        kids = np.flatnonzero(cause >= 0)
        by_parent = np.argsort(cause[kids], kind="stable")
        self.kids = kids[by_parent]
        self.kid_parent = cause[self.kids]
        self._levels: npt.NDArray[np.int64] | None = None
        self._topo: list[int] = []

    def children(self, spans: Idx) -> Idx:
        """Spans that received a message from one of `spans`."""
        if not len(spans) or not len(self.kids):
            return np.zeros(0, np.int64)
        lo = np.searchsorted(self.kid_parent, spans, side="left")
        hi = np.searchsorted(self.kid_parent, spans, side="right")
        return self.kids[span_ranges(lo, hi)]

    def _chain_spans(self, groups: Idx, a: Idx, b: Idx) -> Idx:
        """Spans of rank a..b-1 in each chain."""
        base = self.gstart[groups]
        return self.order[span_ranges(base + a, base + b)]

    def next_on_chain(self) -> Idx:
        """Per span, the next span of its chain, or -1."""
        nxt = np.full(self.m, -1, np.int64)
        o = self.order
        same = self.grp[o[1:]] == self.grp[o[:-1]] if self.m > 1 else np.zeros(0, bool)
        nxt[o[:-1][same]] = o[1:][same]
        return nxt

    def descendants(self, sources: Idx, *, cap: int | None = None) -> Mask:
        """Spans some source happened before (strictly). With `cap`, only spans of level
        ≤ cap are searched (enough to know about any span of level ≤ cap)."""
        g = len(self.gstart)
        big = np.iinfo(np.int64).max
        limit = self._cap_ranks(cap) if cap is not None else self.glen
        minrank = np.full(g, big, np.int64)
        np.minimum.at(minrank, self.grp[sources], self.rank[sources] + 1)
        kids = self.children(sources)
        np.minimum.at(minrank, self.grp[kids], self.rank[kids])
        old = np.full(g, big, np.int64)
        while True:
            changed = np.flatnonzero(minrank < old)
            if not len(changed):
                break
            upper = np.minimum(old[changed], limit[changed])
            fresh = self._chain_spans(changed, np.minimum(minrank[changed], upper), upper)
            old = minrank.copy()
            kids = self.children(fresh)
            np.minimum.at(minrank, self.grp[kids], self.rank[kids])
        reached: Mask = self.rank >= minrank[self.grp]
        if cap is not None:
            reached &= self.rank < limit[self.grp]
        return reached

    def ancestors(self, sources: Idx, *, floor: int | None = None) -> Mask:
        """Spans that happened before some source (strictly). With `floor`, only spans of
        level ≥ floor are searched."""
        g = len(self.gstart)
        bottom = self._floor_ranks(floor) if floor is not None else np.zeros(g, np.int64)
        maxrank = np.full(g, -1, np.int64)
        np.maximum.at(maxrank, self.grp[sources], self.rank[sources] - 1)
        parents = self.cause[sources]
        parents = parents[parents >= 0]
        np.maximum.at(maxrank, self.grp[parents], self.rank[parents])
        old = np.full(g, -1, np.int64)
        while True:
            changed = np.flatnonzero(maxrank > old)
            if not len(changed):
                break
            lower = np.maximum(old[changed] + 1, bottom[changed])
            fresh = self._chain_spans(changed, lower, maxrank[changed] + 1)
            old = maxrank.copy()
            parents = self.cause[fresh]
            parents = parents[parents >= 0]
            np.maximum.at(maxrank, self.grp[parents], self.rank[parents])
        reached: Mask = self.rank <= maxrank[self.grp]
        if floor is not None:
            reached &= self.rank >= bottom[self.grp]
        return reached

    def happens_before(self, a: int, b: int) -> bool:
        if a == b:
            return False
        if self.grp[a] == self.grp[b]:
            return bool(self.rank[a] < self.rank[b])
        lv = self.levels()
        if lv[a] >= lv[b]:
            return False
        return bool(self.descendants(np.array([a], np.int64), cap=int(lv[b]))[b])

    # --- Lamport levels --------------------------------------------------------------------

    def levels(self) -> npt.NDArray[np.int64]:
        """A Lamport timestamp per span: 1 + the largest of its predecessors' (Kahn's
        algorithm; spans on a cycle of bad cause refs are numbered after the rest)."""
        if self._levels is None:
            self._kahn()
        assert self._levels is not None
        return self._levels

    def _kahn(self) -> None:
        m = self.m
        nxt = self.next_on_chain().tolist()
        cause = self.cause.tolist()
        kids_of: dict[int, list[int]] = {}
        for kid, parent in zip(self.kids.tolist(), self.kid_parent.tolist(), strict=True):
            kids_of.setdefault(parent, []).append(kid)
        indeg = [0] * m
        for n in nxt:
            if n >= 0:
                indeg[n] += 1
        for i, c in enumerate(cause):
            if c >= 0:
                indeg[i] += 1
        level = [0] * m
        ready = deque(i for i in range(m) if indeg[i] == 0)
        topo: list[int] = []
        while ready:
            i = ready.popleft()
            topo.append(i)
            li = level[i] + 1
            n = nxt[i]
            if n >= 0:
                if level[n] < li:
                    level[n] = li
                indeg[n] -= 1
                if indeg[n] == 0:
                    ready.append(n)
            for k in kids_of.get(i, ()):
                if level[k] < li:
                    level[k] = li
                indeg[k] -= 1
                if indeg[k] == 0:
                    ready.append(k)
        levels = np.asarray(level, np.int64)
        if len(topo) < m:
            stuck = np.asarray(indeg, np.int64) > 0
            levels[stuck] = (int(levels.max()) + 1 if m else 0) + self.rank[stuck]
            topo += np.flatnonzero(stuck)[np.argsort(levels[stuck], kind="stable")].tolist()
        self._levels = levels
        self._topo = topo

    def causal_times(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """`times` made consistent with happens-before: each span no earlier than 1 ns after
        its predecessors (so sorting by the result is a causal order close to the clocks')."""
        self.levels()
        prev = np.full(self.m, -1, np.int64)
        nxt = self.next_on_chain()
        has = nxt >= 0
        prev[nxt[has]] = np.flatnonzero(has)
        c = times.tolist()
        before, cause = prev.tolist(), self.cause.tolist()
        for i in self._topo:
            t = c[i]
            p = before[i]
            if p >= 0 and c[p] >= t:
                t = c[p] + 1
            q = cause[i]
            if q >= 0 and c[q] >= t:
                t = c[q] + 1
            c[i] = t
        return np.asarray(c, np.int64)

    def _cap_ranks(self, cap: int) -> Idx:
        """Per chain, the first rank whose level is above `cap` (levels grow along a chain)."""
        lv = self.levels()[self.order]
        key = self.grp[self.order] * (1 << 32) + np.minimum(lv, (1 << 32) - 1)
        groups = np.arange(len(self.gstart), dtype=np.int64)
        pos = np.searchsorted(key, groups * (1 << 32) + min(cap, (1 << 32) - 1), side="right")
        return pos - self.gstart

    def _floor_ranks(self, floor: int) -> Idx:
        """Per chain, the first rank whose level is at least `floor`."""
        lv = self.levels()[self.order]
        key = self.grp[self.order] * (1 << 32) + np.minimum(lv, (1 << 32) - 1)
        groups = np.arange(len(self.gstart), dtype=np.int64)
        pos = np.searchsorted(key, groups * (1 << 32) + max(0, min(floor, (1 << 32) - 1)), side="left")
        return pos - self.gstart
