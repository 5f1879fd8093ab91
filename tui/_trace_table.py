"""The explorer's trace table: one summary row per trace, packed in typed columns.

The scan of a session (`TraceStore`) hands each records frame's slim spans to `absorb`,
which folds them into the row of their trace: span, error and fault counts, per-node
extents, the latest decision, the acts, and which frames hold the trace's spans (so its full
spans can be read back when it is opened). Node, kind, name and decision strings are
interned to small codes; a `TraceRow` is built only for a row being drawn. Trace ids are
kept once, in one byte table, and found again through a `TraceIndex`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace.tui._slim_span import SlimSpan, decode_attrs
from edgetrace.tui._trace_columns import LaterFrames, NodeExtents, RowColumns, regrown, zeros
from edgetrace.tui._trace_index import TraceIndex

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["SORTS", "TraceRow", "TraceTable"]

#: Sort orders of the trace list, in the order the `s` key cycles through them.
SORTS: tuple[str, ...] = ("arrival", "trace", "duration", "spans", "errors")


class TraceRow:
    """One line of the trace list: a snapshot of a packed row, built when it is drawn."""

    __slots__ = ("acts", "decision", "duration", "errors", "faults", "frame_offsets", "index", "node",
                 "nodes", "root_kind", "root_name", "root_seq", "spans", "trace")

    index: int
    trace: str
    node: str
    root_seq: int
    root_kind: str
    root_name: str
    spans: int
    errors: int
    faults: int
    decision: str
    acts: str
    #: Longest per-node extent: local clocks may be skewed, so never subtract across nodes.
    duration: int
    nodes: list[str]
    frame_offsets: list[int]

    @property
    def root(self) -> str:
        return f"{self.node}:{self.root_seq}"

    @property
    def flags(self) -> str:
        return ("E" if self.errors else "·") + ("F" if self.faults else "·")

    def __repr__(self) -> str:
        return f"TraceRow({self.index}, {self.trace!r}, spans={self.spans})"


class TraceTable:
    """Rows of the traces absorbed so far, in order of their first span.

    One thread absorbs while another reads: columns are only ever appended to or updated
    in place (a grown set of columns is swapped in whole), and `count` moves past a new row
    only once its columns hold it, so a reader sees a consistent prefix (the GIL makes each
    write atomic).
    """

    def __init__(self, capacity: int) -> None:
        """`capacity`: rows to make room for before growing (pages never written cost nothing)."""
        self.count = 0  # rows complete in every column
        self.columns = RowColumns(capacity + 1)  # + 1: `tr_off` ends the last row's id
        self.extents = NodeExtents(capacity // 4)
        self.later = LaterFrames(capacity // 4)
        self.ids = zeros("B", capacity * 16)  # row i's trace id: ids[tr_off[i]:tr_off[i + 1]]
        self.frames_at = array("q")  # file offset of each records frame, by frame number
        # interned strings: node, kind, span name, decision, first act; code 0 is "".
        self.names: list[str] = [""]
        self.codes: dict[str, int] = {"": 0}
        self.more_acts: dict[int, str] = {}  # rows with more than one act: their act list
        self.index = TraceIndex(self.trace_at)
        self._nx = self._nf = 0  # entries used in `extents` and `later`

    # --- reading rows ------------------------------------------------------------------

    def trace_at(self, i: int) -> str:
        off = self.columns.tr_off
        return str(self.ids[off[i]:off[i + 1]], "utf-8")

    def index_of(self, trace: str) -> int | None:
        """The row of a trace id, or None if no span of it has been absorbed."""
        row = self.index.lookup(trace)
        return row if row is not None and row < self.count else None

    def row(self, i: int) -> TraceRow:
        names, c = self.names, self.columns
        r = TraceRow()
        r.index = i
        r.trace = self.trace_at(i)
        r.node = names[c.node[i]]
        r.root_seq = c.seq[i]
        r.root_kind = names[c.kind[i]]
        r.root_name = names[c.name[i]]
        r.spans = c.spans[i]
        r.errors = c.errors[i]
        r.faults = c.faults[i]
        r.decision = names[c.decision[i]]
        r.acts = self.more_acts.get(i) or names[c.acts[i]]
        r.duration = c.dur[i]
        nodes = {r.node}
        ext = self.extents
        x = c.more_nodes[i]
        while x >= 0:
            nodes.add(names[ext.node[x]])
            x = ext.next[x]
        r.nodes = sorted(nodes)
        later: list[int] = []
        chain = self.later
        f = c.more_frames[i]
        while f >= 0:
            later.append(chain.frame[f])
            f = chain.next[f]
        frames_at = self.frames_at
        r.frame_offsets = [frames_at[c.first_frame[i]], *(frames_at[n] for n in reversed(later))]
        return r

    def column(self, name: str) -> npt.NDArray[Any]:
        """A copy of one numeric column of `RowColumns` for the rows so far (`errors`, `spans`, ...)."""
        import numpy as np

        if name not in RowColumns.__slots__:
            raise ValueError(f"unknown column {name!r}; expected one of: {', '.join(RowColumns.__slots__)}")
        return np.asarray(getattr(self.columns, name))[: self.count].copy()

    def sorted_order(self, name: str, indices: Iterable[int] | None = None) -> npt.NDArray[np.int32] | None:
        """Row numbers in sort order `name` (stable: ties keep arrival order).

        `indices` limits the result to those rows (a filter's matches, in arrival order);
        None with `arrival` means every row as it is, which needs no array at all.
        """
        import numpy as np

        if name not in SORTS:
            raise ValueError(f"unknown sort {name!r}; expected one of: {', '.join(SORTS)}")
        rows = None if indices is None else np.sort(np.asarray(indices, dtype=np.int32))  # ties: arrival order
        if name == "arrival":
            return rows
        n = self.count
        key: npt.NDArray[Any]
        if name == "trace":
            key = self._trace_keys(n)
        elif name == "duration":
            key = -self.column("dur")[:n]  # int64 already
        elif name == "spans":
            key = -self.column("spans")[:n].astype(np.int64)
        else:
            key = -self.column("errors")[:n].astype(np.int64)
        if rows is None:
            return np.argsort(key, kind="stable").astype(np.int32)
        return rows[np.argsort(key[rows], kind="stable")]

    def _trace_keys(self, n: int) -> npt.NDArray[np.bytes_]:
        """Trace ids as one fixed-width bytes array (UTF-8 byte order is str order)."""
        import numpy as np

        if n == 0:
            return np.zeros(0, "S1")
        off = np.asarray(self.columns.tr_off)[: n + 1].astype(np.int64)
        blob = np.asarray(self.ids)
        starts, lens = off[:-1], np.diff(off)
        width = max(1, int(lens.max()))
        table = np.zeros((n, width), np.uint8)
        for k in range(width):
            has = lens > k
            table[has, k] = blob[starts[has] + k]
        return table.view(f"S{width}").ravel()

    def flagged(self, marks: set[str]) -> npt.NDArray[np.bool_]:
        """Per row: has errors, faults, or is one of the marked (diverged) traces."""
        hit = (self.column("errors") > 0) | (self.column("faults") > 0)
        for trace in marks:
            i = self.index_of(trace)
            if i is not None and i < len(hit):
                hit[i] = True
        return hit

    # --- absorbing a records frame -----------------------------------------------------

    def _code(self, text: str) -> int:
        code = self.codes.get(text)
        if code is None:
            code = self.codes[text] = len(self.names)
            self.names.append(text)
        return code

    def _reserve(self, rows: int, tail: int) -> None:
        """Room for `rows` more rows and `tail` more bytes of trace ids, before a frame."""
        need = self.count + rows + 1
        if need > len(self.columns):
            self.columns = self.columns.grown(need)
        if self._nx + rows > len(self.extents):
            self.extents = self.extents.grown(self._nx + rows)
        if self._nf + rows > len(self.later):
            self.later = self.later.grown(self._nf + rows)
        need = self.columns.tr_off[self.count] + tail
        if need > len(self.ids):
            self.ids = regrown(self.ids, need)

    def absorb(self, spans: list[SlimSpan], offset: int) -> None:
        """Fold the spans of the records frame at file offset `offset` into their rows."""
        frame = len(self.frames_at)
        self.frames_at.append(offset)
        index = self.index
        traces = {s.trace for s in spans}
        index.recall(traces)
        recent = index.recent
        self._reserve(len(spans), sum(len(t) for t in traces) * 4)
        codes, code = self.codes, self._code
        c, ext, later = self.columns, self.extents, self.later
        # the hot loop reads columns through locals
        lo_col, hi_col, dur_col, spans_col, node_col = c.lo, c.hi, c.dur, c.spans, c.node
        last_frame, more_nodes, more_frames = c.last_frame, c.more_nodes, c.more_frames
        x_node, x_lo, x_hi, x_next = ext.node, ext.lo, ext.hi, ext.next
        for span in spans:
            row = recent.get(span.trace)
            if row is None:
                row = recent[span.trace] = self._new_row(span, frame)
            spans_col[row] += 1
            if span.status == "error":
                c.errors[row] += 1
            kind = span.kind
            if kind == "fault":
                c.faults[row] += 1
            start, end = span.start, span.end
            node = codes.get(span.node)
            if node is None:
                node = code(span.node)
            if node == node_col[row]:
                lo = lo_col[row] = min(lo_col[row], start)
                hi = hi_col[row] = max(hi_col[row], end)
            else:
                x = more_nodes[row]
                while x >= 0 and x_node[x] != node:
                    x = x_next[x]
                if x < 0:
                    x = self._nx
                    x_node[x], x_lo[x], x_hi[x], x_next[x] = node, start, end, more_nodes[row]
                    more_nodes[row] = x
                    self._nx = x + 1
                lo = x_lo[x] = min(x_lo[x], start)
                hi = x_hi[x] = max(x_hi[x], end)
            if hi - lo > dur_col[row]:
                dur_col[row] = hi - lo
            if kind == "decide" or kind == "act":
                self._note_step(row, span)
            if last_frame[row] != frame:
                last_frame[row] = frame
                f = self._nf
                later.frame[f], later.next[f] = frame, more_frames[row]
                more_frames[row] = f
                self._nf = f + 1
        index.settle(self.count)

    def _note_step(self, row: int, span: SlimSpan) -> None:
        c = self.columns
        if span.kind == "decide":
            decision = decode_attrs(span).get(attr.DECISION)
            if decision is not None:
                c.decision[row] = self._code(str(decision))
        elif c.acts[row] == 0:
            c.acts[row] = self._code(span.name)
        else:  # act lists are open-ended: keep them out of the interned strings
            acts = self.more_acts.get(row) or self.names[c.acts[row]]
            self.more_acts[row] = f"{acts},{span.name}"

    def _new_row(self, span: SlimSpan, frame: int) -> int:
        row = self.count
        c = self.columns
        trace = span.trace.encode()
        at = c.tr_off[row]
        self.ids[at:at + len(trace)] = trace
        c.tr_off[row + 1] = at + len(trace)
        c.node[row] = self._code(span.node)
        c.seq[row] = span.seq
        c.kind[row] = self._code(span.kind)
        c.name[row] = self._code(span.name)
        c.lo[row] = span.start
        c.hi[row] = span.end
        c.first_frame[row] = c.last_frame[row] = frame
        c.more_frames[row] = c.more_nodes[row] = -1
        self.count = row + 1
        return row
