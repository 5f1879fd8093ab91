"""The filter language evaluated over the span columns: a query on a million spans in a second.

`parse_query` compiles a query twice: into per-span predicates (what the trace view and
small sessions use) and into a tree, which `span_mask` evaluates here as numpy operations
over `SpanColumns`. The two must agree (a property test checks them against each other), so
nothing here re-states the language: every comparison applies the parser's own per-value
test (`Cmp.per_value`) to each *distinct* value a column holds — each node id, kind, name,
attribute map — and spreads the answers over the spans by code. Only plain numeric
comparisons (`duration>500ms`, `seq<=3`) are compared directly.

Causal operators look within a trace, like the predicates' `TraceGraph`: its edges are
same-node program order and cross-node causes inside the trace. Reachability uses that
program order is a chain: once a span of a (trace, node) chain is reached, so is every later
span of it, so a search only iterates over message hops.

What the columns cannot answer (an attribute map the scan did not keep, `concurrent(...)`
of a query) raises `Unsupported`; the caller then runs the predicates over decoded spans.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from edgetrace import _selector as sel
from edgetrace.tui._query import Bool, CausalNode, Cmp, Node, Query, Text
from edgetrace.tui._reach import ChainGraph
from edgetrace.tui._span_columns import ERROR, KINDS
from edgetrace.tui._store import TraceStore
from edgetrace.tui._strings import UNKNOWN

__all__ = ["Unsupported", "matching_rows", "span_mask"]

Mask = npt.NDArray[np.bool_]
_NUMERIC_OPS: dict[sel.Op, Callable[[Any, Any], Any]] = {
    sel.Op.EQ: operator.eq, sel.Op.NE: operator.ne, sel.Op.GT: operator.gt,
    sel.Op.GE: operator.ge, sel.Op.LT: operator.lt, sel.Op.LE: operator.le,
}


class Unsupported(Exception):
    """This query (or part of it) cannot be evaluated from the columns."""


class _AttrsOnly:
    """What a selector attribute getter reads: `span.attrs`."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs


def _trace_graph(store: TraceStore, m: int) -> ChainGraph:
    """Chains per (trace, node), linked by the causes inside a trace (as `TraceGraph` has it)."""
    sp = store.table.spans
    trace, node = sp.trace[:m].astype(np.int64), sp.node[:m]
    from edgetrace.tui._messages import causes

    cause = causes(store.table, m)
    ok = cause >= 0
    safe = np.where(ok, cause, 0)
    inside = ok & (trace[safe] == trace) & (node[safe] != node)
    return ChainGraph((trace << 16) | node.astype(np.int64), sp.seq[:m].astype(np.int64),
                      np.where(inside, cause, -1))


class _Eval:
    """One evaluation of a query tree over the first `m` spans of a store."""

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        t = store.table
        self.m = t.span_count
        self.n = t.count
        self.sp = t.spans

    @property
    def graph(self) -> ChainGraph:
        return self.store.derived("query.graph", lambda: _trace_graph(self.store, self.m))

    def col(self, name: str) -> npt.NDArray[Any]:
        arr: npt.NDArray[Any] = getattr(self.sp, name)[: self.m]
        return arr

    def trace_ids(self) -> list[str]:
        def build() -> list[str]:
            t = self.store.table
            off = t.columns.tr_off[: self.n + 1].astype(np.int64)
            blob = bytes(t.ids[: int(off[-1]) if len(off) else 0])
            cuts = off.tolist()
            return [blob[a:b].decode("utf-8", "replace") for a, b in itertools.pairwise(cuts)]

        return self.store.derived("query.trace_ids", build)

    def distinct(self, name: str) -> tuple[npt.NDArray[Any], npt.NDArray[np.intp]]:
        """(distinct values of a column, each span's index into them), kept per scan."""
        return self.store.derived(f"query.distinct.{name}",
                                  lambda: np.unique(self.col(name), return_inverse=True))

    def by_column(self, name: str, value_of: Callable[[int], Any], test: Callable[[Any], bool]) -> Mask:
        distinct, inverse = self.distinct(name)
        answers = np.fromiter((bool(test(value_of(int(c)))) for c in distinct), bool, len(distinct))
        return answers[inverse]

    def by_code(self, codes: npt.NDArray[Any], value_of: Callable[[int], Any], test: Callable[[Any], bool]) -> Mask:
        """`test` of each distinct code's value, spread over the spans."""
        distinct, inverse = np.unique(codes, return_inverse=True)
        answers = np.fromiter((bool(test(value_of(int(c)))) for c in distinct), bool, len(distinct))
        return answers[inverse]

    def refs(self, node_col: str, seq_col: str) -> list[str]:
        names = self.store.table.nodes.text
        return [f"{names[n]}:{s}" if n else "" for n, s in zip(self.col(node_col).tolist(),
                                                                 self.col(seq_col).tolist(), strict=True)]

    # --- the tree ------------------------------------------------------------------------

    def mask(self, node: Node) -> Mask:
        if isinstance(node, Bool):
            parts = [self.mask(a) for a in node.args]
            if node.op == "and":
                return parts[0] & parts[1]
            if node.op == "or":
                return parts[0] | parts[1]
            if node.op == "without":
                return parts[0] & ~parts[1]
            return ~parts[0]
        if isinstance(node, Text):
            return self.text(node.word)
        if isinstance(node, Cmp):
            return self.cmp(node)
        return self.causal(node)

    def cmp(self, c: Cmp) -> Mask:
        table = self.store.table
        name, f = c.name, c.per_value
        if name == "kind":
            answers = np.array([bool(f(k.value)) for k in KINDS])
            kinds: Mask = answers[self.col("kind")]
            return kinds
        if name in ("node", "name", "error"):
            strings = table.nodes.text if name == "node" else table.names.text
            return self.by_column(name, strings.__getitem__, f)
        if name == "status":
            failed = (self.col("flags") & ERROR) > 0
            return np.where(failed, bool(f("error")), bool(f("ok")))
        if name in ("duration", "seq"):
            values = (np.maximum(self.col("end") - self.col("start"), 0) if name == "duration"
                      else self.col("seq").astype(np.int64))
            compare = _NUMERIC_OPS.get(c.op)
            if c.number is not None and compare is not None:
                out: Mask = compare(values, c.number)
                return out
            return self.by_code(values, lambda v: v, f)
        if name == "trace":
            ids = self.trace_ids()
            answers = np.fromiter((bool(f(t)) for t in ids), bool, len(ids))
            return answers[self.col("trace")] if len(ids) else np.zeros(self.m, bool)
        if name == "ref":
            refs = [f"{r}" for r in self.refs("node", "seq")]
            return np.fromiter((bool(f(r)) for r in refs), bool, self.m)
        if name in ("parent", "cause"):
            nodes, seqs = self.col(f"{name}_node"), self.col(f"{name}_seq")
            key = (nodes.astype(np.int64) << 32) | seqs.astype(np.int64)
            names = table.nodes.text
            return self.by_code(key, lambda k: f"{names[k >> 32]}:{k & 0xFFFF_FFFF}" if k >> 32 else "", f)
        if name == "from":
            sender, own = self.col("cause_node"), self.col("node")
            shown = np.where((sender > 0) & (sender != own), sender, 0)
            return self.by_code(shown, table.nodes.text.__getitem__, f)
        if name in ("spans", "nodes"):
            per_row = self.per_trace(name)
            answers = self.by_code(per_row, lambda v: v, f) if len(per_row) else np.zeros(0, bool)
            return answers[self.col("trace")] if len(per_row) else np.zeros(self.m, bool)
        if c.field is None:
            raise Unsupported(name)
        codes = self.col("attrs")
        arena = table.arena
        if arena.full and bool((codes == UNKNOWN).any()):
            raise Unsupported("attribute maps the scan did not keep")
        get = c.field.get
        return self.by_column("attrs", lambda code: get(_AttrsOnly(arena.decode(code) or {})), f)  # type: ignore[arg-type]

    def per_trace(self, name: str) -> npt.NDArray[np.int64]:
        t = self.store.table
        if name == "spans":
            return t.columns.spans[: self.n].astype(np.int64)
        pairs = np.unique((self.col("trace").astype(np.int64) << 16) | self.col("node").astype(np.int64))
        return np.bincount(pairs >> 16, minlength=self.n).astype(np.int64)

    def text(self, low: str) -> Mask:
        table = self.store.table

        def has(v: Any) -> bool:
            return low in str(v).lower()

        hit = self.by_column("name", table.names.text.__getitem__, has)
        hit |= self.by_column("node", table.nodes.text.__getitem__, has)
        hit |= self.by_column("error", table.names.text.__getitem__, has)
        hit |= np.array([has(k.value) for k in KINDS])[self.col("kind")]
        ids = self.trace_ids()
        if ids:
            hit |= np.fromiter((has(t) for t in ids), bool, len(ids))[self.col("trace")]
        if ":" in low:
            hit |= np.fromiter((has(r) for r in self.refs("node", "seq")), bool, self.m)
        elif low.isdigit():  # a ref is node:seq: text without ':' is in one part or the other
            hit |= self.by_column("seq", str, lambda s: low in s)
        codes = self.col("attrs")
        arena = table.arena
        if arena.full and bool((codes == UNKNOWN).any()):
            raise Unsupported("attribute maps the scan did not keep")

        def in_attrs(code: int) -> bool:
            attrs = arena.decode(code) or {}
            return any(low in str(k).lower() or low in str(v).lower() for k, v in attrs.items())

        hit |= self.by_column("attrs", lambda code: code, in_attrs)
        return hit

    def causal(self, c: CausalNode) -> Mask:
        if c.ref is not None:
            target = self.store.span_index(c.ref)
            if target is None or target >= self.m:
                return np.zeros(self.m, bool)
            sources = np.array([target], np.int64)
            if c.op == "before":
                return self.graph.ancestors(sources)
            if c.op == "after":
                return self.graph.descendants(sources)
            trace = self.col("trace")
            out: Mask = trace == trace[target]
            out &= ~self.graph.ancestors(sources) & ~self.graph.descendants(sources)
            out[target] = False
            return out
        assert c.sub is not None
        if c.op == "concurrent":
            raise Unsupported("concurrent(...) of a query")
        sources = np.flatnonzero(self.mask(c.sub)).astype(np.int64)
        if not len(sources):
            return np.zeros(self.m, bool)
        return self.graph.ancestors(sources) if c.op == "before" else self.graph.descendants(sources)


def span_mask(store: TraceStore, query: Query) -> Mask:
    """Which scanned spans the query selects; raises `Unsupported`."""
    ev = _Eval(store)
    if query.tree is None:
        return np.ones(ev.m, bool)
    return ev.mask(query.tree)


def matching_rows(store: TraceStore, query: Query) -> npt.NDArray[np.int32]:
    """Rows of the traces with a selected span, in arrival order; raises `Unsupported`."""
    mask = span_mask(store, query)
    rows = store.table.spans.trace[: len(mask)][mask]
    hit = np.bincount(rows, minlength=store.table.count) > 0
    return np.flatnonzero(hit).astype(np.int32)
