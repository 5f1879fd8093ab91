"""The explorer's tables of a scanned session: every span, and one summary row per trace.

The scan (`TraceStore`) hands each records frame's slim spans to `absorb`, which codes them
into `SpanColumns` (`extract`) and folds them into their traces' rows: span, error and fault
counts, the extent on the common time axis, the latest decision, the acts, the first and last
span (spans of one trace are chained, so a trace's spans, nodes and frames are found without
a search). A `TraceRow` is built only for a row being drawn. Trace ids are kept once, in one
byte table, and found again through a `TraceIndex`.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from edgetrace import _attrs as attr
from edgetrace.tui import _span_columns
from edgetrace.tui._columns import Columns, allocate, release_all
from edgetrace.tui._refs import RefTable
from edgetrace.tui._slim_span import SlimSpan
from edgetrace.tui._span_columns import (
    ERROR,
    KIND_CODE,
    KINDS,
    TIMEOUT,
    FrameSpans,
    SpanColumns,
    Walked,
    extract,
    extract_walked,
)
from edgetrace.tui._strings import AttrsArena, Strings
from edgetrace.tui._trace_index import NativeTraceIndex, TraceIndex

__all__ = ["SORTS", "TraceColumns", "TraceRow", "TraceTable"]

#: Sort orders of the trace list, in the order the `s` key cycles through them.
SORTS: tuple[str, ...] = ("arrival", "start", "trace", "duration", "spans", "errors")

_DECIDE, _ACT, _FAULT = KIND_CODE["decide"], KIND_CODE["act"], KIND_CODE["fault"]


class TraceRow:
    """One line of the trace list: a snapshot of a packed row, built when it is drawn."""

    __slots__ = ("acts", "decision", "duration", "errors", "faults", "first", "frame_offsets", "index",
                 "node", "nodes", "root_attrs", "root_kind", "root_name", "root_seq", "spans", "start",
                 "trace")

    index: int
    trace: str
    first: int  # span index of the trace's first span
    node: str
    root_seq: int
    root_kind: str
    root_name: str
    root_attrs: int
    spans: int
    errors: int
    faults: int
    decision: str
    acts: str
    #: Extent on the common time axis (per-node clock offsets applied).
    start: int
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


class TraceColumns(Columns):
    """One entry per trace row, in order of the trace's first span."""

    SPEC: ClassVar[dict[str, str]] = {
        "tr_off": "u8",  # where row i's id starts in the id table; entry i + 1 is where it ends
        "first": "u4", "last": "u4",  # span indices of the first and latest span
        "spans": "u4", "errors": "u4", "faults": "u4",
        "lo": "i8", "hi": "i8",  # extent on the common time axis
        "decision": "u4", "acts": "u4",  # the latest decision, the first act (codes)
    }
    tr_off: npt.NDArray[np.uint64]
    first: npt.NDArray[np.uint32]
    last: npt.NDArray[np.uint32]
    spans: npt.NDArray[np.uint32]
    errors: npt.NDArray[np.uint32]
    faults: npt.NDArray[np.uint32]
    lo: npt.NDArray[np.int64]
    hi: npt.NDArray[np.int64]
    decision: npt.NDArray[np.uint32]
    acts: npt.NDArray[np.uint32]


class TraceTable:
    """Spans and trace rows absorbed so far.

    One thread absorbs while another reads: columns are only ever appended to or updated in
    place (a grown column is swapped in whole), and `count`/`span_count` move past new rows
    only once every column holds them, so a reader sees a consistent prefix.
    """

    def __init__(self, capacity: int, *, span_capacity: int | None = None) -> None:
        """`capacity`: trace rows to make room for before growing."""
        self.count = 0  # trace rows complete in every column
        self.span_count = 0
        self.columns = TraceColumns(capacity + 1)
        self.spans = SpanColumns(span_capacity or capacity * 2)
        self.ids = allocate("u1", capacity * 16)
        self.nodes = Strings()  # node ids; code 0 is ""
        self.names = Strings()  # span names, errors, decisions, act names
        self.arena = AttrsArena()
        self.frame_first: list[int] = []  # per records frame: index of its first span
        self.frame_at: list[int] = []  # per records frame: its file offset
        self._firsts = np.zeros(64, np.int64)  # frame_first as an array (grown by doubling)
        #: The earliest start on the common axis (list start times count from it).
        self.t_min = 0
        self.more_acts: dict[int, str] = {}  # rows with more than one act: their act list
        #: Clock offset per node code (ns to add to a local time), as known when absorbing.
        self.offsets: npt.NDArray[np.int64] = np.zeros(1, np.int64)
        self.index: TraceIndex | NativeTraceIndex = (
            NativeTraceIndex(lambda: (self.ids, self.columns.tr_off, self.count))
            if _span_columns._recscan is not None else TraceIndex(self.trace_at))
        self.refs = RefTable()

    # --- reading rows ------------------------------------------------------------------

    def trace_at(self, i: int) -> str:
        off = self.columns.tr_off
        return bytes(self.ids[int(off[i]):int(off[i + 1])]).decode("utf-8", "replace")

    def index_of(self, trace: str) -> int | None:
        """The row of a trace id, or None if no span of it has been absorbed."""
        row = self.index.lookup(trace)
        return row if row is not None and row < self.count else None

    def span_chain(self, row: int) -> Iterator[int]:
        """Span indices of a trace, in file order."""
        nxt = self.spans.next
        i = int(self.columns.first[row]) + 1
        limit = self.span_count
        while 0 < i <= limit:
            yield i - 1
            i = int(nxt[i - 1])

    def frame_firsts(self) -> npt.NDArray[np.int64]:
        """Per records frame, the index of its first span (a view: do not keep it)."""
        return self._firsts[: len(self.frame_at)]

    def frame_of(self, spans: Iterable[int]) -> list[int]:
        """File offsets of the records frames that hold these spans, in file order."""
        spans = spans if isinstance(spans, list) else list(spans)
        at = self.frame_at
        if len(spans) <= 64:  # a row being drawn: no numpy, which would hand the GIL to the scan and wait
            firsts, n = self.frame_first, len(at)  # the scanner appends to both: read what both hold
            return [at[f] for f in sorted({bisect.bisect_right(firsts, i, 0, n) - 1 for i in spans})]
        idx = np.fromiter(spans, np.int64)
        frames = np.unique(np.searchsorted(self.frame_firsts(), idx, side="right") - 1)
        return [at[int(f)] for f in frames]

    def row(self, i: int) -> TraceRow:
        c, sp, names = self.columns, self.spans, self.names.text
        r = TraceRow()
        r.index = i
        r.trace = self.trace_at(i)
        first = r.first = int(c.first[i])
        r.node = self.nodes.text[int(sp.node[first])]
        r.root_seq = int(sp.seq[first])
        r.root_kind = KINDS[int(sp.kind[first])].value
        r.root_name = names[int(sp.name[first])]
        r.root_attrs = int(sp.attrs[first])
        r.spans = int(c.spans[i])
        r.errors = int(c.errors[i])
        r.faults = int(c.faults[i])
        r.decision = names[int(c.decision[i])]
        r.acts = self.more_acts.get(i) or names[int(c.acts[i])]
        r.start = int(c.lo[i])
        r.duration = int(c.hi[i]) - int(c.lo[i])
        chain = list(self.span_chain(i))
        r.nodes = sorted({self.nodes.text[int(sp.node[k])] for k in chain})
        r.frame_offsets = self.frame_of(chain)
        return r

    def column(self, name: str) -> npt.NDArray[Any]:
        """A copy of one numeric trace column for the rows so far (`errors`, `spans`, ...),
        or `dur` (the extent on the common axis)."""
        n = self.count
        if name == "dur":
            return self.columns.hi[:n] - self.columns.lo[:n]
        if name not in TraceColumns.SPEC:
            raise ValueError(f"unknown column {name!r}; expected one of: dur, {', '.join(TraceColumns.SPEC)}")
        return np.array(getattr(self.columns, name)[:n])

    def sorted_order(self, name: str, indices: Iterable[int] | None = None) -> npt.NDArray[np.int32] | None:
        """Row numbers in sort order `name` (stable: ties keep arrival order).

        `indices` limits the result to those rows (a filter's matches, in arrival order);
        None with `arrival` means every row as it is, which needs no array at all.
        """
        if name not in SORTS:
            raise ValueError(f"unknown sort {name!r}; expected one of: {', '.join(SORTS)}")
        rows = None if indices is None else np.sort(np.asarray(indices, dtype=np.int32))
        if name == "arrival":
            return rows
        n = self.count
        key: npt.NDArray[Any]
        if name == "trace":
            key = self._trace_keys(n)
        elif name == "start":
            key = self.column("lo")
        elif name == "duration":
            key = -self.column("dur")
        elif name == "spans":
            key = -self.column("spans").astype(np.int64)
        else:
            key = -self.column("errors").astype(np.int64)
        if rows is None:
            return np.argsort(key, kind="stable").astype(np.int32)
        return rows[np.argsort(key[rows], kind="stable")]

    def _trace_keys(self, n: int) -> npt.NDArray[np.bytes_]:
        """Trace ids as one fixed-width bytes array (UTF-8 byte order is str order)."""
        if n == 0:
            return np.zeros(0, "S1")
        off = self.columns.tr_off[: n + 1].astype(np.int64)
        blob = self.ids
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

    # --- the common time axis ------------------------------------------------------------

    def node_offsets(self, n_nodes: int) -> npt.NDArray[np.int64]:
        """`offsets` padded to every node code known now."""
        off = self.offsets
        if len(off) < n_nodes:
            off = np.concatenate([off, np.zeros(n_nodes - len(off), np.int64)])
        return off

    def set_offsets(self, offsets: npt.NDArray[np.int64]) -> None:
        """New clock offsets: every trace's extent is recomputed on the new axis."""
        self.offsets = offsets
        n, m = self.count, self.span_count
        if not n:
            return
        sp, c = self.spans, self.columns
        off = self.node_offsets(len(self.nodes))
        lo = np.full(n, np.iinfo(np.int64).max, np.int64)
        hi = np.full(n, np.iinfo(np.int64).min, np.int64)
        step = 1 << 20  # chunks, so a scratch-backed column is read a piece at a time
        for a in range(0, m, step):
            b = min(m, a + step)
            shift = off[sp.node[a:b]]
            rows = sp.trace[a:b]
            np.minimum.at(lo, rows, sp.start[a:b] + shift)
            np.maximum.at(hi, rows, sp.end[a:b] + shift)
            release_all()  # the chunk just read
        c.lo[:n], c.hi[:n] = lo, np.maximum(hi, lo)
        self.t_min = int(lo.min())

    # --- absorbing a records frame -----------------------------------------------------

    def _reserve(self, rows: int, spans: int, id_bytes: int) -> None:
        """Room for that many more rows, spans and id bytes; growing copies only what is held."""
        self.columns.reserve(self.count + rows + 1, held=self.count + 1)  # tr_off: one entry past the rows
        self.spans.reserve(self.span_count + spans, held=self.span_count)
        used = int(self.columns.tr_off[self.count])
        need = used + id_bytes
        if need > len(self.ids):
            new = allocate("u1", max(need, len(self.ids) * 2))
            new[:used] = self.ids[:used]
            self.ids = new

    def absorb(self, spans: list[SlimSpan], offset: int, where: str) -> None:
        """Fold the spans of the records frame at file offset `offset` into the tables."""
        self.absorb_columns(extract(spans, self.nodes, self.names, self.arena, where), offset)

    def absorb_walked(self, walked: Walked, offset: int) -> bool:
        """Fold a records frame in from its C walk (`walk_body`); False, with nothing changed,
        when the walk declined or `extract` would refuse the frame (then decode it and
        `absorb` the spans, which says why)."""
        f = self.extract_walked(walked)
        if f is None:
            return False
        self.absorb_columns(f, offset)
        return True

    def extract_walked(self, walked: Walked) -> FrameSpans | None:
        """A walked frame's spans coded against these tables (`extract_walked`), to absorb
        now or as part of a run (`absorb_run`); None when the walk declined or `extract`
        would refuse the frame."""
        f = extract_walked(walked, self.nodes, self.names, self.arena)
        if f is not None:  # interned now, as absorbing the frame alone would: a run's codes match
            decide = np.flatnonzero(f.kind == _DECIDE)
            if len(decide):
                self._decisions(f.attrs[decide])
        return f

    def absorb_run(self, frames: list[FrameSpans], offsets: list[int]) -> None:
        """Fold several consecutive frames in at once: the tables end as `absorb_columns` of
        each in turn leaves them (a cause naming a span later in the run is found now rather
        than on `refs.retry`), for a fraction of the per-frame cost — a hub writes frames of
        a few hundred to a thousand spans, and most of absorbing one is per-call overhead."""
        kept = [(f, at) for f, at in zip(frames, offsets, strict=True) if f.n]  # as absorb_columns skips them
        if len(kept) <= 1:
            for f, at in kept:
                self.absorb_columns(f, at)
            return
        self._absorb(_joined([f for f, _ in kept]), [at for _, at in kept], [f.n for f, _ in kept])

    def absorb_columns(self, f: FrameSpans, offset: int) -> None:
        """Fold one frame's coded spans (`extract`'s or `extract_body`'s) into the tables."""
        self._absorb(f, [offset], [f.n])

    def _absorb(self, f: FrameSpans, offsets: list[int], sizes: list[int]) -> None:
        """Fold coded spans in: one frame's, or a run's joined (`_joined`), with each frame's
        file offset and span count."""
        n = f.n
        if not n:
            return
        base = self.span_count
        # trace rows: known ones from the index, new ones appended in order of first use
        index = self.index
        if f.trace_bytes is not None:  # the C walk's bytes of the ids
            blob, lens = f.trace_bytes
        else:
            encoded = [t.encode("utf-8", "surrogatepass") for t in f.traces]
            blob = np.frombuffer(b"".join(encoded), np.uint8)
            lens = np.fromiter(map(len, encoded), np.int64, len(encoded))
        row0 = self.count
        # room first, as if every trace were new: once the index has numbered the new ones,
        # nothing may fail before their ids are stored
        self._reserve(len(f.traces), n, len(blob))
        row_of, fresh = index.rows_for(f.traces, blob, lens, row0)
        new = int(np.count_nonzero(fresh))
        if new < len(fresh):  # the new ones' bytes picked out
            blob, lens = blob[np.repeat(fresh, lens)], lens[fresh]
        c, sp = self.columns, self.spans
        if new:
            at = int(c.tr_off[row0])
            ends = at + np.cumsum(lens)
            self.ids[at:int(ends[-1])] = blob
            c.tr_off[row0 + 1:row0 + 1 + new] = ends
        rows = row_of[f.trace_local]
        # the spans' own columns
        end = base + n
        sp.trace[base:end] = rows
        sp.node[base:end] = f.node
        sp.kind[base:end] = f.kind
        sp.name[base:end] = f.name
        sp.seq[base:end] = f.seq
        sp.start[base:end] = f.start
        sp.end[base:end] = f.end
        sp.attrs[base:end] = f.attrs
        sp.error[base:end] = f.error
        sp.cause_node[base:end], sp.cause_seq[base:end] = f.cause
        sp.parent_node[base:end], sp.parent_seq[base:end] = f.parent
        sp.next[base:end] = 0
        sp.cause_idx[base:end] = 0
        self.refs.add(base, f.node, f.seq)
        self.refs.resolve(sp, base + np.flatnonzero(f.cause[0] > 0))
        flags = f.flags
        decide = np.flatnonzero(f.kind == _DECIDE)
        if len(decide):
            self._note_decisions(decide, f.attrs[decide], rows[decide], flags)
        acts = np.flatnonzero(f.kind == _ACT)
        if len(acts):
            self._note_acts(rows[acts], f.name[acts])
        sp.flags[base:end] = flags
        # chains: each span links to the next of its trace, the trace's last span to the first here
        order = np.argsort(rows, kind="stable")
        sr = rows[order]
        same = sr[1:] == sr[:-1]
        sp.next[base + order[:-1][same]] = base + order[1:][same] + 1
        heads = np.concatenate(([True], ~same))
        tails = np.concatenate((~same, [True]))
        head_rows, head_pos = sr[heads], base + order[heads]
        old = head_rows < row0
        sp.next[c.last[head_rows[old]]] = head_pos[old] + 1
        c.first[head_rows[~old]] = head_pos[~old]
        c.last[sr[tails]] = base + order[tails]
        # counts and extents, per group of the sorted rows
        starts = np.flatnonzero(heads)
        c.spans[head_rows] += np.diff(np.concatenate((starts, [n]))).astype(np.uint32)
        failed = (flags & ERROR) > 0
        if failed.any():
            np.add.at(c.errors, rows[failed], 1)
        faults = f.kind == _FAULT
        if faults.any():
            np.add.at(c.faults, rows[faults], 1)
        off = self.node_offsets(len(self.nodes))[f.node]
        if new:
            added = slice(row0, row0 + new)
            c.lo[added] = np.iinfo(np.int64).max
            c.hi[added] = np.iinfo(np.int64).min
        c.lo[head_rows] = np.minimum(c.lo[head_rows], np.minimum.reduceat((f.start + off)[order], starts))
        c.hi[head_rows] = np.maximum(c.hi[head_rows], np.maximum.reduceat((f.end + off)[order], starts))
        k = len(self.frame_first)
        while k + len(sizes) > len(self._firsts):
            self._firsts = np.concatenate((self._firsts, np.zeros(len(self._firsts), np.int64)))
        firsts = (base + np.cumsum([0, *sizes[:-1]])).tolist()
        self._firsts[k:k + len(sizes)] = firsts
        self.frame_first.extend(firsts)
        low = int((f.start + off).min())
        self.t_min = low if base == 0 else min(self.t_min, low)
        self.frame_at.extend(offsets)
        self.span_count = end
        self.count = row0 + new
        index.settle(self.count)

    def _note_decisions(self, at: npt.NDArray[np.intp], codes: npt.NDArray[np.uint32],
                        rows: npt.NDArray[np.int64], flags: npt.NDArray[np.uint8]) -> None:
        """A decide span's decision becomes its trace's (the latest wins); a rule engine's
        timeout is flagged. Each distinct attribute map is read once."""
        decision = np.zeros(len(at), np.uint32)
        timed_out = np.zeros(len(at), bool)
        for code, (value, timeout) in self._decisions(codes).items():
            same = codes == code
            if value:
                decision[same] = value
            if timeout:
                timed_out[same] = True
        flags[at[timed_out]] |= TIMEOUT
        has = decision > 0
        # the last decide of each trace in this frame: first of each row in reversed order
        rev_rows, rev_dec = rows[has][::-1], decision[has][::-1]
        uniq, first = np.unique(rev_rows, return_index=True)
        self.columns.decision[uniq] = rev_dec[first]

    def _decisions(self, codes: npt.NDArray[np.uint32]) -> dict[int, tuple[int, bool]]:
        """Per distinct attribute map of decide spans: its decision's code (interned here, in
        the order of the maps' codes) and whether it timed out."""
        out = {}
        for code in np.unique(codes).tolist():
            decoded = self.arena.decode(code) or {}
            value = decoded.get(attr.DECISION)
            out[code] = (self.names.code(str(value)) if value is not None else 0, decoded.get(attr.TIMED_OUT) is True)
        return out

    def _note_acts(self, rows: npt.NDArray[np.int64], names: npt.NDArray[np.uint32]) -> None:
        c = self.columns
        # the usual case at C speed: a trace's only act in this frame, and it had none before
        distinct, first, counts = np.unique(rows, return_index=True, return_counts=True)
        simple = (counts == 1) & (c.acts[distinct] == 0)
        if simple.any():
            c.acts[distinct[simple]] = names[first[simple]]
            rest = ~np.isin(rows, distinct[simple])
            rows, names = rows[rest], names[rest]
        for row, name in zip(rows.tolist(), names.tolist(), strict=True):
            if c.acts[row] == 0:
                c.acts[row] = name
            else:  # act lists are open-ended: keep them out of the interned strings
                acts = self.more_acts.get(row) or self.names.text[int(c.acts[row])]
                self.more_acts[row] = f"{acts},{self.names.text[name]}"


def _joined(frames: list[FrameSpans]) -> FrameSpans:
    """Consecutive frames' coded spans as one: columns one after another, each frame's traces
    listed in turn (a trace in two of them is listed twice; the trace index gives it one row)."""
    locals_, at = [], 0
    for f in frames:
        locals_.append(f.trace_local + at)
        at += len(f.traces)
    cat = np.concatenate
    blobs = [f.trace_bytes for f in frames]
    trace_bytes = None
    if all(b is not None for b in blobs):
        trace_bytes = (cat([b[0] for b in blobs if b is not None]), cat([b[1] for b in blobs if b is not None]))
    return FrameSpans(
        n=sum(f.n for f in frames), node=cat([f.node for f in frames]), kind=cat([f.kind for f in frames]),
        flags=cat([f.flags for f in frames]), name=cat([f.name for f in frames]), seq=cat([f.seq for f in frames]),
        start=cat([f.start for f in frames]), end=cat([f.end for f in frames]), attrs=cat([f.attrs for f in frames]),
        error=cat([f.error for f in frames]),
        cause=(cat([f.cause[0] for f in frames]), cat([f.cause[1] for f in frames])),
        parent=(cat([f.parent[0] for f in frames]), cat([f.parent[1] for f in frames])),
        traces=list(itertools.chain.from_iterable(f.traces for f in frames)), trace_local=cat(locals_), trace_bytes=trace_bytes,
    )
