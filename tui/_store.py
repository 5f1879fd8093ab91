"""The explorer's reader of a session file: every span as columns by scan, full spans on demand.

`Session` decodes every record into a full `Span` and indexes it, which is right for replay
but costs seconds and gigabytes at a million spans. The explorer keeps what its lists,
filters and views need as columns (`TraceTable`: one packed row per span and per trace),
walking the file's frames with the core's frame scanner and decoding records slim
(`SlimSpan`); a trace's full spans are decoded only when it is opened. Scanning is
incremental: `scan()` continues from where it stopped, which is also how a session still
being written is followed live. Clock offsets between nodes are estimated from the messages
scanned (`edgetrace._clock_offsets`), and every trace's extent is kept on that common axis.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import msgspec
import numpy as np
import numpy.typing as npt

from edgetrace._clock_offsets import ClockOffsets
from edgetrace._codec import decode_manifest, decode_spans
from edgetrace._errors import CorruptSessionError, SessionNotFoundError, UsageError
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    Damage,
    FrameType,
    ScanResult,
    read_file_header,
    scan_frames,
)
from edgetrace._records import CLOCK_REF_VERSION, Manifest, Span, parse_ref
from edgetrace._session import SESSION_MAGIC, SESSION_SUFFIX
from edgetrace.tui._columns import release_all, scratch_bytes
from edgetrace.tui._scan import FrameReader, OpenFrame, corrupt
from edgetrace.tui._slim_span import decode_slim_spans
from edgetrace.tui._span_columns import FrameSpans
from edgetrace.tui._trace_table import TraceRow, TraceTable

if TYPE_CHECKING:
    from edgetrace.tui._graph import TraceGraph
    from edgetrace.tui._messages import Messages

__all__ = ["TraceStore"]

T = TypeVar("T")

#: What a refusal of a damaged session adds (main's readers say the same of theirs).
SALVAGE_HINT = " (edgetrace explore --salvage skips the damaged frame and shows the rest)"
#: Traces whose decoded graphs are kept (the ones opened lately).
GRAPH_CACHE = 32
#: Scratch-backed pages are handed back to the kernel after this many more spans are scanned
#: (about 60 MB of columns written).
RELEASE_EVERY = 1_000_000
#: Spans of consecutive records frames absorbed at once (a hub's frames hold up to ~1,000).
RUN_SPANS = 8192


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


def decode_records(path: Path, frame: OpenFrame, body: bytes) -> list[Span]:
    try:
        return decode_spans(body)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise corrupt(path, frame.frame, "a MessagePack array of span records", exc) from None


class TraceStore:
    """Spans and trace rows of one session file, filled by `scan()` and read by the UI thread.

    A background thread may call `scan()` while the UI reads rows (see `TraceTable` for why
    a reader always sees a consistent prefix).
    """

    def __init__(self, path: str | os.PathLike[str], *, salvage: bool = False) -> None:
        self.path = Path(path)
        #: skip a damaged frame (listed in `damage`) rather than refuse the session
        self.salvage = salvage
        self.damage: list[Damage] = []
        if not self.path.exists():
            raise SessionNotFoundError(f"{self.path}: no such session", path=self.path)
        if self.path.is_dir():
            raise SessionNotFoundError(
                f"{self.path}: is a directory; expected a session file ({SESSION_SUFFIX})", path=self.path
            )
        with open(self.path, "rb") as fh:
            read_file_header(fh.read(FILE_HEADER_SIZE), magic=SESSION_MAGIC, supported=CLOCK_REF_VERSION,
                             path=self.path, what="session")
        self.manifest = Manifest()
        self.rows = _Rows(self)
        self.blob_at: dict[str, int] = {}
        self.sealed = False
        self.torn = False  # the last scan stopped before an incomplete frame (a crash, or a writer mid-frame)
        self.offset = FILE_HEADER_SIZE
        self.size = self.path.stat().st_size
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, TraceGraph] = OrderedDict()
        self._reader = FrameReader(self.path)
        # room for rows and spans is guessed from the file size (pages never written cost nothing)
        self.table = TraceTable(max(1024, self.size // 128), span_capacity=max(2048, self.size // 48))
        self.clock = ClockOffsets()
        self._clock_at = -1  # span count the offsets were estimated at
        self._released_at = 0
        self._derived: dict[str, tuple[tuple[int, int, int], Any]] = {}
        self.clock_version = 0  # bumped when the offsets change

    # --- reading rows (the table's, by row number or trace id) ---------------------------

    @property
    def count(self) -> int:
        """Rows complete in every column."""
        return self.table.count

    @property
    def span_count(self) -> int:
        return self.table.span_count

    def trace_at(self, i: int) -> str:
        return self.table.trace_at(i)

    def index_of(self, trace: str) -> int | None:
        """The row of a trace id, or None if the scan has not seen it."""
        return self.table.index_of(trace)

    def row_of(self, trace: str) -> TraceRow | None:
        i = self.table.index_of(trace)
        return None if i is None else self.table.row(i)

    def row(self, i: int) -> TraceRow:
        return self.table.row(i)

    def column(self, name: str) -> npt.NDArray[Any]:
        """A copy of one numeric column for the rows scanned so far (`errors`, `spans`, `dur`, ...)."""
        return self.table.column(name)

    def sorted_order(self, name: str, indices: Iterable[int] | None = None) -> npt.NDArray[np.int32] | None:
        """Row numbers in sort order `name`; see `TraceTable.sorted_order`."""
        return self.table.sorted_order(name, indices)

    def flagged(self, marks: set[str]) -> npt.NDArray[np.bool_]:
        """Per row: has errors, faults, or is one of the marked (diverged) traces."""
        return self.table.flagged(marks)

    @property
    def t0(self) -> int:
        """The earliest time on the common axis (trace list start times count from it)."""
        return self.table.t_min

    # --- scanning ----------------------------------------------------------------------

    @property
    def progress(self) -> float:
        return 1.0 if self.size <= FILE_HEADER_SIZE else min(1.0, self.offset / self.size)

    @property
    def at_end(self) -> bool:
        """Every intact frame is read (what follows, if anything, is a torn tail)."""
        return self.offset >= self.size or self.torn

    def damage_note(self) -> str:
        """What salvage skipped, in a few words for the status line ("" when nothing)."""
        if not self.damage:
            return ""
        size = sum(d.size for d in self.damage)
        return f"salvaged: {len(self.damage)} damaged frame(s), {size:,} bytes skipped"

    @property
    def torn_bytes(self) -> int:
        """Bytes after the last intact frame: a torn tail the scan stopped before."""
        return self.size - self.offset if self.torn else 0

    def _release(self) -> None:
        """Hand written scratch pages back to the kernel (when any columns live in scratch)."""
        if scratch_bytes():
            release_all()
        self._released_at = self.table.span_count

    def scan(self, *, budget_s: float | None = None, max_frames: int | None = None,
             min_rows: int | None = None, report: Callable[[], bool] | None = None,
             report_every_s: float = 0.25) -> int:
        """Read frames appended since the last call; return how many spans were added.

        Stops at the end of the file, after `max_frames` frames, once `budget_s` has passed,
        or once `min_rows` traces are known (enough to draw a first screen). `report` is
        called every `report_every_s` (a background reader repaints the list from it) and
        stops the scan by returning False. A frame that does not decode raises
        `CorruptSessionError`; with `salvage` it is listed in `damage` and skipped.
        """
        added = 0
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        next_report = time.perf_counter() + report_every_s
        frames = 0
        table = self.table
        # records frames the C walk took are absorbed in runs (`TraceTable.absorb_run`); a
        # first-screen scan stops as soon as it has enough rows, so it takes them one by one
        batch = min_rows is None and max_frames is None
        run: list[FrameSpans] = []
        run_at: list[int] = []
        run_end: list[int] = []
        run_spans = 0

        def flush() -> None:
            nonlocal added, run_spans
            if not run:
                return
            before = table.span_count
            try:
                table.absorb_run(run, run_at)
                self.offset = run_end[-1]
            except CorruptSessionError:  # one of them refused: again one by one, so the error names it
                for f, at, end in zip(run, run_at, run_end, strict=True):
                    try:
                        table.absorb_columns(f, at)
                    except CorruptSessionError as exc:
                        if not self.salvage:
                            raise CorruptSessionError(str(exc), path=self.path, offset=at,
                                                      expected=exc.expected) from None
                        self.damage.append(Damage(at, end, str(exc).removeprefix(f"{self.path}: ")))
                    self.offset = end
            finally:
                added += table.span_count - before
                run.clear()
                run_at.clear()
                run_end.clear()
                run_spans = 0

        with self._lock:
            self.size = self.path.stat().st_size
            self.torn = False
            try:
                for item in self._reader.frames(self.offset, self.size, salvage=self.salvage):
                    if isinstance(item, ScanResult):
                        flush()
                        self.offset = item.end
                        self.torn = item.torn
                        break
                    if isinstance(item, Damage):
                        flush()
                        self.damage.append(item)
                        self.offset = item.end
                        continue
                    frame = item.frame
                    f = None
                    if batch and frame.type is FrameType.RECORDS:
                        try:
                            f = table.extract_walked(item.walked(self.path))
                        except CorruptSessionError:
                            f = None  # `_take` opens it again, and says why
                    if f is not None:
                        run.append(f)
                        run_at.append(frame.offset)
                        run_end.append(frame.end)
                        run_spans += f.n
                        if run_spans >= RUN_SPANS:
                            flush()
                    else:
                        flush()
                        try:
                            added += self._take(item)
                        except CorruptSessionError as exc:
                            if not self.salvage:
                                raise
                            self.damage.append(Damage(frame.offset, frame.end,
                                                      str(exc).removeprefix(f"{self.path}: ")))
                        self.offset = frame.end  # after the frame is absorbed: iter_graphs reads up to here
                    frames += 1
                    if table.span_count - self._released_at >= RELEASE_EVERY:
                        self._release()
                    now = time.perf_counter()
                    if ((max_frames is not None and frames >= max_frames)
                            or (deadline is not None and now > deadline)
                            or (min_rows is not None and table.count >= min_rows)):
                        flush()
                        break
                    if report is not None and now >= next_report:
                        flush()
                        next_report = now + report_every_s
                        if added:
                            self._cache.clear()
                        if not report():
                            break
                flush()
            except CorruptSessionError as exc:  # only without salvage: say how to read the rest
                raise CorruptSessionError(f"{exc}{SALVAGE_HINT}", path=exc.path or self.path, offset=exc.offset,
                                          expected=exc.expected) from None
            if added:
                table.refs.retry(table.spans)  # causes that named spans further on in the file
                self._cache.clear()  # a cached trace may have grown
                self._release()
            return added

    def _take(self, item: OpenFrame) -> int:
        """Absorb one intact frame; return how many spans it added. A payload that does not
        decode is a CorruptSessionError, raised before anything of the frame is kept."""
        frame = item.frame
        before = self.table.span_count
        if frame.type is FrameType.RECORDS:
            if self.table.absorb_walked(item.walked(self.path), frame.offset):
                return self.table.span_count - before
            body = item.body(self.path)
            try:
                spans = decode_slim_spans(body)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise corrupt(self.path, frame, "a MessagePack array of span records", exc) from None
            try:
                self.table.absorb(spans, frame.offset, f"{self.path}: records frame at offset {frame.offset}")
            except CorruptSessionError as exc:
                raise CorruptSessionError(str(exc), path=self.path, offset=frame.offset,
                                          expected=exc.expected) from None
            return len(spans)
        if frame.type is FrameType.MANIFEST:
            try:
                self.manifest = self.manifest.merged(decode_manifest(item.body(self.path)))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise corrupt(self.path, frame, "a MessagePack manifest map", exc) from None
        elif frame.type is FrameType.BLOB:
            head = frame.head(32)  # the id only: a blob is inflated when it is shown
            if len(head) < 32:
                raise corrupt(self.path, frame, "a sha256 and the blob's bytes")
            self.blob_at[head.hex()] = frame.offset
        elif frame.type is FrameType.SEAL:
            self.sealed = True
        return 0

    def derived(self, name: str, build: Callable[[], T], *, version: int = 0) -> T:
        """What `build` makes of the tables, kept until more spans are scanned (or `version`,
        e.g. of the clock offsets it used, changes)."""
        at = (self.table.span_count, self.table.count, version)
        hit = self._derived.get(name)
        if hit is not None and hit[0] == at:
            value: T = hit[1]
            return value
        value = build()
        self._derived[name] = (at, value)
        return value

    # --- the common time axis ------------------------------------------------------------

    def messages(self) -> Messages:
        """Every cross-node message scanned so far (kept until more spans are scanned)."""
        from edgetrace.tui._messages import messages

        return self.derived("messages", lambda: messages(self.table))

    def estimate_clocks(self) -> ClockOffsets:
        """Estimate per-node clock offsets from the messages scanned so far and put every
        trace's extent on the new common axis (cheap to call again: only new spans count)."""
        from edgetrace.tui._messages import estimate_table_offsets

        if self._clock_at == self.table.span_count:
            return self.clock
        with self._lock:
            clock = estimate_table_offsets(self.table)
            nodes = self.table.nodes
            off = np.zeros(len(nodes), np.int64)
            for name, value in clock.offsets.items():
                code = nodes.find(name)
                if code is not None:
                    off[code] = value
            self.table.set_offsets(off)
            self._release()
            self.clock = clock
            self.clock_version += 1
            self._clock_at = self.table.span_count
            self._cache.clear()
        return clock

    # --- per-trace and per-span loading ------------------------------------------------

    def _frames(self, offsets: list[int]) -> Iterator[tuple[OpenFrame, bytes]]:
        """The frames at these offsets with their bodies (all read by `scan` before)."""
        with open(self.path, "rb") as fh:
            for at in offsets:
                for item in scan_frames(fh, at, path=self.path):
                    if not isinstance(item, ScanResult):
                        frame = OpenFrame(item, None)
                        yield frame, frame.body(self.path)
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
            for frame, body in self._frames(row.frame_offsets):
                spans.extend(s for s in decode_records(self.path, frame, body) if s.trace == trace)
        graph = TraceGraph(trace, spans, offsets=self.clock.offsets)
        self._cache[trace] = graph
        while len(self._cache) > GRAPH_CACHE:
            self._cache.popitem(last=False)
        return graph

    def spans_at(self, indices: Iterable[int]) -> list[Span]:
        """Full spans by span index (file order), decoding only the frames that hold them."""
        idx = sorted(set(int(i) for i in indices))
        if not idx:
            return []
        table = self.table
        frame_no = np.searchsorted(table.frame_firsts(), np.asarray(idx, np.int64), side="right") - 1
        wanted: dict[int, list[int]] = {}
        for i, f in zip(idx, frame_no.tolist(), strict=True):
            wanted.setdefault(f, []).append(i - table.frame_first[f])
        found: list[Span] = []
        offsets = [table.frame_at[f] for f in sorted(wanted)]
        for (frame, body), f in zip(self._frames(offsets), sorted(wanted), strict=True):
            decoded = decode_records(self.path, frame, body)
            found.extend(decoded[k] for k in wanted[f] if k < len(decoded))
        return found

    def span_index(self, ref: str) -> int | None:
        """The span index of `node:seq`, or None if no such span was scanned."""
        try:
            node, seq = parse_ref(ref)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        code = self.table.nodes.find(node)
        if code is None or seq > 0xFFFF_FFFF:
            return None
        found = self.table.refs.one(code, seq)
        return found if found is not None and found < self.table.span_count else None

    def span(self, ref: str) -> Span | None:
        i = self.span_index(ref)
        return None if i is None else self.spans_at([i])[0]

    def blob(self, sha: str) -> bytes | None:
        at = self.blob_at.get(sha)
        if at is None:
            return None
        for _frame, body in self._frames([at]):
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

        table = self.table
        known = table.count
        last = (np.searchsorted(table.frame_firsts(), table.columns.last[:known].astype(np.int64),
                                side="right") - 1).tolist()
        offsets = self.clock.offsets
        pending: dict[str, tuple[int, list[Span]]] = {}
        new_row = 0
        for frame_no, (frame, body) in enumerate(self._frames(list(table.frame_at))):
            if stop():
                return
            for span in decode_records(self.path, frame, body):
                entry = pending.get(span.trace)
                if entry is None:  # traces first appear in row order
                    entry = pending[span.trace] = (new_row, [])
                    new_row += 1
                entry[1].append(span)
            for trace in list(pending):
                row = pending[trace][0]
                if row >= known or last[row] <= frame_no:
                    row, spans = pending.pop(trace)
                    if row < known:
                        yield row, TraceGraph(trace, spans, offsets=offsets)
        for trace, (row, spans) in pending.items():
            if row < known:
                yield row, TraceGraph(trace, spans, offsets=offsets)
