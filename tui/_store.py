"""The explorer's view of a session file: one summary row per trace, spans loaded per trace.

`Session` decodes every record into a full `Span` and indexes it, which is right for replay
but costs seconds and gigabytes at a million spans. The explorer only needs one row per trace
to draw the list, so `TraceStore` scans frames with a slim decoder (no clocks, attributes
decoded only for decisions and actions), remembers which frames hold each trace, and decodes a
trace's full spans only when it is opened. Scanning is incremental: `scan()` continues from
where it stopped, which is also how a session still being written is followed live.

Rows are packed into parallel typed arrays (about a hundred bytes a trace, against several
hundred for an object per row); node, kind, name and decision strings are interned to small
codes; a `TraceRow` is built only for a row being drawn. Trace ids are kept once, in one byte
table, and found again through a dict of recently seen traces backed by a sorted array of
their hashes (`_TraceIndex`).
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import msgspec

from edgetrace import _attrs as attr
from edgetrace._codec import decode_manifest, decode_spans
from edgetrace._errors import SessionNotFoundError
from edgetrace._frames import FILE_HEADER_SIZE, FrameType, ScanResult, read_file_header, scan_frames
from edgetrace._records import FORMAT_VERSION, Manifest, Span
from edgetrace._session import SESSION_MAGIC, SESSION_SUFFIX

if TYPE_CHECKING:
    import numpy as np

    from edgetrace.tui._graph import TraceGraph

__all__ = ["SORTS", "TraceRow", "TraceStore"]

#: Sort orders of the trace list, in the order the `s` key cycles through them.
SORTS: tuple[str, ...] = ("arrival", "trace", "duration", "spans", "errors")


class _Slim(msgspec.Struct, array_like=True):
    """The columns of a span record the trace list needs; the rest stays undecoded."""

    node: str
    seq: int
    kind: str
    name: str
    trace: str = ""
    parent: str = ""
    cause: str = ""
    start: int = 0
    end: int = 0
    vc: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b""))
    attrs: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b""))
    status: str = "ok"
    error: str = ""


_decoders: dict[str, Any] = {}


def _decoder(name: str) -> Any:
    """Decoders are built on first use: building them is not free and the UI may never need one."""
    dec = _decoders.get(name)
    if dec is None:
        dec = _decoders[name] = (msgspec.msgpack.Decoder(list[_Slim]) if name == "slim"
                                 else msgspec.msgpack.Decoder(dict[str, Any]))
    return dec


#: Packed per-row columns (array typecodes); `tr_off` has one entry more than there are rows.
_ROW_COLUMNS = {
    "tr_off": "Q", "node": "I", "seq": "q", "kind": "I", "name": "I", "lo": "q", "hi": "q", "dur": "q",
    "spans": "I", "errors": "I", "faults": "I", "decision": "I", "acts": "I", "first_frame": "I",
    "last_frame": "I", "more_frames": "i", "more_nodes": "i",
}
_CHAIN_COLUMNS = {"x_node": "I", "x_lo": "q", "x_hi": "q", "x_next": "i", "f_frame": "I", "f_next": "i"}


def _zeros(typecode: str, n: int) -> memoryview:
    """A zeroed column in an anonymous mapping: pages never written are never backed by
    memory, growing leaves no holes in the heap, and a memoryview reads and writes single
    items faster than numpy or `array` do."""
    return memoryview(mmap.mmap(-1, max(1, n) * struct.calcsize(typecode))).cast(typecode)


def _regrown(col: memoryview, need: int) -> memoryview:
    new = _zeros(col.format, max(need, len(col) * 2))
    new[: len(col)] = col
    return new


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


class _Rows(Sequence[TraceRow]):
    """`store.rows`: a read-only sequence that builds each `TraceRow` on access."""

    def __init__(self, store: TraceStore) -> None:
        self._store = store

    def __len__(self) -> int:
        return self._store.count

    @overload
    def __getitem__(self, i: int) -> TraceRow: ...
    @overload
    def __getitem__(self, i: slice) -> list[TraceRow]: ...
    def __getitem__(self, i: int | slice) -> TraceRow | list[TraceRow]:
        n = self._store.count
        if isinstance(i, slice):
            return [self._store.row(j) for j in range(*i.indices(n))]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._store.row(i)


class _TraceIndex:
    """Trace id → row: a dict of traces seen lately, the rest by hash in a sorted array.

    A dict of 700,000 ids costs ~100 MB; the sorted (hash, row) arrays cost 12 bytes a
    trace. Every hit on the arrays is checked against the stored id, so a hash collision
    cannot merge two traces. Only the scanning thread writes; `lookup` may run on any thread.
    """

    RECENT = 32_768

    def __init__(self, trace_at: Callable[[int], str]) -> None:
        self.recent: dict[str, int] = {}
        self._trace_at = trace_at
        self._sorted: tuple[Any, Any] | None = None  # (hashes int64 sorted, rows int32), swapped whole
        self._settled = 0  # rows below this are in the arrays

    def _search(self, traces: list[str]) -> Iterator[tuple[str, int]]:
        table = self._sorted
        if table is None or not traces:
            return
        import numpy as np

        keys, rows = table
        hashes = np.fromiter((hash(t) for t in traces), np.int64, len(traces))
        pos = np.searchsorted(keys, hashes)
        inside = pos < len(keys)
        hit = np.zeros(len(traces), bool)
        hit[inside] = keys[pos[inside]] == hashes[inside]
        for k in np.flatnonzero(hit).tolist():
            p, h = int(pos[k]), hashes[k]
            while p < len(keys) and keys[p] == h:
                row = int(rows[p])
                if self._trace_at(row) == traces[k]:
                    yield traces[k], row
                    break
                p += 1

    def recall(self, traces: set[str]) -> None:
        """Scanner: bring the given traces that are in the arrays back into `recent`."""
        recent = self.recent
        for trace, row in self._search([t for t in traces if t not in recent]):
            recent[trace] = row

    def lookup(self, trace: str) -> int | None:
        row = self.recent.get(trace)
        if row is None:
            row = next((r for _t, r in self._search([trace])), None)
        return row

    def settle(self, count: int) -> None:
        """Scanner: move `recent` into the sorted arrays once it holds `RECENT` traces."""
        if len(self.recent) < self.RECENT:
            return
        import numpy as np

        recent = self.recent
        hashes = np.fromiter((hash(t) for t in recent), np.int64, len(recent))
        rows = np.fromiter(recent.values(), np.int32, len(recent))
        fresh = rows >= self._settled  # the others were recalled from the arrays
        hashes, rows = hashes[fresh], rows[fresh]
        order = np.argsort(hashes, kind="stable")
        hashes, rows = hashes[order], rows[order]
        if self._sorted is not None:
            keys, old = self._sorted
            at = np.searchsorted(keys, hashes)
            hashes, rows = np.insert(keys, at, hashes), np.insert(old, at, rows)
        self._sorted = (hashes, rows)  # readers see the arrays before the dict is emptied
        self.recent = {}
        self._settled = count


class TraceStore:
    """Trace rows of one session file, filled by `scan()` and read by the UI thread.

    A background thread may call `scan()` while the UI reads rows: columns are only ever
    appended to or updated in place, and `count` moves past a new row only once every
    column holds it, so a reader sees a consistent prefix (the GIL makes each write atomic).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SessionNotFoundError(f"{self.path}: no such session", path=self.path)
        if self.path.is_dir():
            raise SessionNotFoundError(
                f"{self.path}: is a directory; expected a session file ({SESSION_SUFFIX})", path=self.path
            )
        with open(self.path, "rb") as fh:
            read_file_header(fh.read(FILE_HEADER_SIZE), magic=SESSION_MAGIC, supported=FORMAT_VERSION,
                             path=self.path, what="session")
        self.manifest = Manifest()
        self.rows = _Rows(self)
        self.blob_at: dict[str, int] = {}
        self.span_count = 0
        self.sealed = False
        self.offset = FILE_HEADER_SIZE
        self.size = self.path.stat().st_size
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, TraceGraph] = OrderedDict()
        self.count = 0  # rows complete in every column
        self._frames_at = array("q")  # file offset of each records frame, by frame number
        # interned strings: node, kind, span name, decision, act list; code 0 is "".
        self._names: list[str] = [""]
        self._codes: dict[str, int] = {"": 0}
        self._more_acts: dict[int, str] = {}  # rows with more than one act
        # One entry per row in each of _ROW_COLUMNS, plus chains of extents on other nodes
        # (_x_*) and of later frames (_f_*, newest first). Capacity is guessed from the file
        # size; pages never written cost no memory.
        rows = max(1024, self.size // 128)
        for name, typecode in _ROW_COLUMNS.items():
            setattr(self, f"_{name}", _zeros(typecode, rows + 1))
        for name, typecode in _CHAIN_COLUMNS.items():
            setattr(self, f"_{name}", _zeros(typecode, rows // 4))
        self._tr_blob = _zeros("B", rows * 16)  # trace id of row i: _tr_blob[_tr_off[i]:_tr_off[i + 1]]
        self._nx = self._nf = 0  # entries used in the chains
        self._index = _TraceIndex(self.trace_at)

    # --- reading rows ------------------------------------------------------------------

    def trace_at(self, i: int) -> str:
        off = self._tr_off
        return str(self._tr_blob[off[i]:off[i + 1]], "utf-8")

    def index_of(self, trace: str) -> int | None:
        """The row of a trace id, or None if the scan has not seen it."""
        row = self._index.lookup(trace)
        return row if row is not None and row < self.count else None

    def row_of(self, trace: str) -> TraceRow | None:
        i = self.index_of(trace)
        return None if i is None else self.row(i)

    def row(self, i: int) -> TraceRow:
        names = self._names
        r = TraceRow()
        r.index = i
        r.trace = self.trace_at(i)
        r.node = names[self._node[i]]
        r.root_seq = self._seq[i]
        r.root_kind = names[self._kind[i]]
        r.root_name = names[self._name[i]]
        r.spans = self._spans[i]
        r.errors = self._errors[i]
        r.faults = self._faults[i]
        r.decision = names[self._decision[i]]
        r.acts = self._more_acts.get(i) or names[self._acts[i]]
        r.duration = self._dur[i]
        nodes = {r.node}
        x = self._more_nodes[i]
        while x >= 0:
            nodes.add(names[self._x_node[x]])
            x = self._x_next[x]
        r.nodes = sorted(nodes)
        later = []
        f = self._more_frames[i]
        while f >= 0:
            later.append(self._f_frame[f])
            f = self._f_next[f]
        frames_at = self._frames_at
        r.frame_offsets = [frames_at[self._first_frame[i]], *(frames_at[n] for n in reversed(later))]
        return r

    def column(self, name: str) -> np.ndarray:
        """A copy of one numeric column for the rows scanned so far (`errors`, `spans`, ...)."""
        import numpy as np

        n = self.count
        return np.asarray(getattr(self, f"_{name}"))[:n].copy()

    def sorted_order(self, name: str, indices: np.ndarray | None = None) -> np.ndarray | None:
        """Row numbers in sort order `name` (stable: ties keep arrival order).

        `indices` limits the result to those rows (a filter's matches, in arrival order);
        None with `arrival` means every row as it is, which needs no array at all.
        """
        import numpy as np

        if name not in SORTS:
            raise ValueError(f"unknown sort {name!r}; expected one of: {', '.join(SORTS)}")
        if indices is not None:  # ties keep arrival order, whatever order the rows came in
            indices = np.sort(np.asarray(indices, dtype=np.int32))
        if name == "arrival":
            return indices
        n = self.count
        if name == "trace":
            key = self._trace_keys(n)
        elif name == "duration":
            key = -self.column("dur")[:n]
        elif name == "spans":
            key = -self.column("spans")[:n].astype(np.int64)
        else:
            key = -self.column("errors")[:n].astype(np.int64)
        if indices is None:
            return np.argsort(key, kind="stable").astype(np.int32)
        return indices[np.argsort(key[indices], kind="stable")]

    def _trace_keys(self, n: int) -> np.ndarray:
        """Trace ids as one fixed-width bytes array (UTF-8 byte order is str order)."""
        import numpy as np

        if n == 0:
            return np.zeros(0, "S1")
        off = np.asarray(self._tr_off)[: n + 1].astype(np.int64)
        blob = np.asarray(self._tr_blob)
        starts, lens = off[:-1], np.diff(off)
        width = max(1, int(lens.max()))
        table = np.zeros((n, width), np.uint8)
        for k in range(width):
            has = lens > k
            table[has, k] = blob[starts[has] + k]
        return table.view(f"S{width}").ravel()

    def flagged(self, marks: set[str]) -> np.ndarray:
        """Per row: has errors, faults, or is one of the marked (diverged) traces."""
        hit = (self.column("errors") > 0) | (self.column("faults") > 0)
        for trace in marks:
            i = self.index_of(trace)
            if i is not None and i < len(hit):
                hit[i] = True
        return hit

    # --- scanning ----------------------------------------------------------------------

    @property
    def progress(self) -> float:
        return 1.0 if self.size <= FILE_HEADER_SIZE else min(1.0, self.offset / self.size)

    def scan(self, *, budget_s: float | None = None, max_frames: int | None = None,
             min_rows: int | None = None) -> int:
        """Read frames appended since the last call; return how many spans were added.

        Stops at the end of the file, after `max_frames` frames, once `budget_s` has passed,
        or once `min_rows` traces are known (enough to draw a first screen).
        """
        added = 0
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        frames = 0
        with self._lock:
            self.size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                for item in scan_frames(fh, self.offset, path=self.path, size=self.size):
                    if isinstance(item, ScanResult):
                        self.offset = item.end
                        break
                    if item.type is FrameType.RECORDS:
                        spans = _decoder("slim").decode(item.body())
                        self._absorb(spans, item.offset)
                        added += len(spans)
                        self.span_count += len(spans)
                    elif item.type is FrameType.MANIFEST:
                        self.manifest = self.manifest.merged(decode_manifest(item.body()))
                    elif item.type is FrameType.BLOB:
                        self.blob_at[item.body()[:32].hex()] = item.offset
                    elif item.type is FrameType.SEAL:
                        self.sealed = True
                    self.offset = item.end  # after the frame is absorbed: iter_graphs reads up to here
                    frames += 1
                    if ((max_frames is not None and frames >= max_frames)
                            or (deadline is not None and time.perf_counter() > deadline)
                            or (min_rows is not None and self.count >= min_rows)):
                        break
            if added:
                self._cache.clear()  # a cached trace may have grown
            return added

    @property
    def at_end(self) -> bool:
        return self.offset >= self.size

    def _code(self, text: str) -> int:
        code = self._codes.get(text)
        if code is None:
            code = self._codes[text] = len(self._names)
            self._names.append(text)
        return code

    def _reserve(self, rows: int, tail: int) -> None:
        """Room for `rows` more rows and `tail` more bytes of trace ids, before a frame."""
        need = self.count + rows + 1
        if need > len(self._node):
            for name in _ROW_COLUMNS:
                setattr(self, f"_{name}", _regrown(getattr(self, f"_{name}"), need))
        for used, names in ((self._nx, ("x_node", "x_lo", "x_hi", "x_next")), (self._nf, ("f_frame", "f_next"))):
            if used + rows > len(getattr(self, f"_{names[0]}")):
                for name in names:
                    setattr(self, f"_{name}", _regrown(getattr(self, f"_{name}"), used + rows))
        need = self._tr_off[self.count] + tail
        if need > len(self._tr_blob):
            self._tr_blob = _regrown(self._tr_blob, need)

    def _absorb(self, spans: list[_Slim], offset: int) -> None:
        frame = len(self._frames_at)
        self._frames_at.append(offset)
        index = self._index
        traces = {s.trace for s in spans}
        index.recall(traces)
        recent = index.recent
        self._reserve(len(spans), sum(len(t) for t in traces) * 4)
        codes, code = self._codes, self._code
        lo_col, hi_col, dur_col = self._lo, self._hi, self._dur
        spans_col, node_col, last_frame = self._spans, self._node, self._last_frame
        x_node, x_lo, x_hi, x_next = self._x_node, self._x_lo, self._x_hi, self._x_next
        more_nodes = self._more_nodes
        for span in spans:
            row = recent.get(span.trace)
            if row is None:
                row = recent[span.trace] = self._new_row(span, frame)
            spans_col[row] += 1
            if span.status == "error":
                self._errors[row] += 1
            kind = span.kind
            if kind == "fault":
                self._faults[row] += 1
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
                self._f_frame[f], self._f_next[f] = frame, self._more_frames[row]
                self._more_frames[row] = f
                self._nf = f + 1
        index.settle(self.count)

    def _note_step(self, row: int, span: _Slim) -> None:
        attrs = _decoder("attrs").decode(span.attrs) if span.attrs else {}
        if span.kind == "decide":
            if attrs.get(attr.DECISION) is not None:
                self._decision[row] = self._code(str(attrs[attr.DECISION]))
        elif self._acts[row] == 0:
            self._acts[row] = self._code(span.name)
        else:  # act lists are open-ended: keep them out of the interned strings
            acts = self._more_acts.get(row) or self._names[self._acts[row]]
            self._more_acts[row] = f"{acts},{span.name}"

    def _new_row(self, span: _Slim, frame: int) -> int:
        row = self.count
        trace = span.trace.encode()
        at = self._tr_off[row]
        self._tr_blob[at:at + len(trace)] = trace
        self._tr_off[row + 1] = at + len(trace)
        self._node[row] = self._code(span.node)
        self._seq[row] = span.seq
        self._kind[row] = self._code(span.kind)
        self._name[row] = self._code(span.name)
        self._lo[row] = span.start
        self._hi[row] = span.end
        self._first_frame[row] = self._last_frame[row] = frame
        self._more_frames[row] = self._more_nodes[row] = -1
        self.count = row + 1
        return row

    # --- per-trace loading -------------------------------------------------------------

    def _frames(self, offsets: list[int]) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            for at in offsets:
                for item in scan_frames(fh, at, path=self.path):
                    if not isinstance(item, ScanResult):
                        yield item.body()
                    break

    def graph(self, trace: str) -> TraceGraph:
        """The spans of one trace, decoded in full, with its happens-before graph."""
        from edgetrace.tui._graph import TraceGraph

        hit = self._cache.get(trace)
        if hit is not None:
            self._cache.move_to_end(trace)
            return hit
        row = self.row_of(trace)
        spans: list[Span] = []
        if row is not None:
            for body in self._frames(row.frame_offsets):
                spans.extend(s for s in decode_spans(body) if s.trace == trace)
        graph = TraceGraph(trace, spans)
        self._cache[trace] = graph
        while len(self._cache) > 32:
            self._cache.popitem(last=False)
        return graph

    def blob(self, sha: str) -> bytes | None:
        at = self.blob_at.get(sha)
        if at is None:
            return None
        for body in self._frames([at]):
            return body[32:]
        return None

    def iter_graphs(self, stop: Callable[[], bool] = lambda: False) -> Iterator[TraceGraph]:
        """Every scanned trace, decoding each records frame once (for filtering)."""
        for _row, graph in self.iter_rows_graphs(stop):
            yield graph

    def iter_rows_graphs(self, stop: Callable[[], bool] = lambda: False) -> Iterator[tuple[int, TraceGraph]]:
        """(row, graph) of every scanned trace, decoding each frame once.

        A trace is yielded once the pass has read the last frame that holds it (so not
        quite in arrival order), and a whole-session pass holds only the traces still open.
        """
        from edgetrace.tui._graph import TraceGraph

        pending: dict[str, tuple[int, list[Span]]] = {}
        end, known, last = self.offset, self.count, self._last_frame
        frame = -1
        new_row = 0
        with open(self.path, "rb") as fh:
            for item in scan_frames(fh, FILE_HEADER_SIZE, path=self.path):
                if isinstance(item, ScanResult) or item.offset >= end or stop():
                    break
                if item.type is not FrameType.RECORDS:
                    continue
                frame += 1
                for span in decode_spans(item.body()):
                    entry = pending.get(span.trace)
                    if entry is None:  # traces first appear in row order
                        entry = pending[span.trace] = (new_row, [])
                        new_row += 1
                    entry[1].append(span)
                for trace in list(pending):
                    row = pending[trace][0]
                    if row >= known or last[row] <= frame:
                        row, spans = pending.pop(trace)
                        if row < known:
                            yield row, TraceGraph(trace, spans)
        for trace, (row, spans) in pending.items():
            if row < known:
                yield row, TraceGraph(trace, spans)

