"""The explorer's reader of a session file: trace rows by scan, full spans per trace on demand.

`Session` decodes every record into a full `Span` and indexes it, which is right for replay
but costs seconds and gigabytes at a million spans. The explorer only needs one row per trace
to draw the list, so `TraceStore` walks the file's frames with the core's frame scanner,
decodes records slim (`SlimSpan`) into a `TraceTable` (one packed row per trace, and which
frames hold each trace), and decodes a trace's full spans only when it is opened. Scanning is
incremental: `scan()` continues from where it stopped, which is also how a session still
being written is followed live.
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

from edgetrace._codec import decode_manifest, decode_spans
from edgetrace._errors import CorruptSessionError, SessionNotFoundError
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    Frame,
    FrameType,
    ScanResult,
    read_file_header,
    scan_frames,
)
from edgetrace._records import FORMAT_VERSION, Manifest, Span
from edgetrace._session import SESSION_MAGIC, SESSION_SUFFIX
from edgetrace.tui._slim_span import decode_slim_spans
from edgetrace.tui._trace_table import TraceRow, TraceTable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from edgetrace.tui._graph import TraceGraph

__all__ = ["TraceStore"]

_T = TypeVar("_T")

#: Traces whose decoded graphs are kept (the ones opened lately).
GRAPH_CACHE = 32


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


class TraceStore:
    """Trace rows of one session file, filled by `scan()` and read by the UI thread.

    A background thread may call `scan()` while the UI reads rows (see `TraceTable` for why
    a reader always sees a consistent prefix).
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
        #: The packed rows; room for them is guessed from the file size.
        self.table = TraceTable(max(1024, self.size // 128))

    # --- reading rows (the table's, by row number or trace id) ---------------------------

    @property
    def count(self) -> int:
        """Rows complete in every column."""
        return self.table.count

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
        """A copy of one numeric column for the rows scanned so far (`errors`, `spans`, ...)."""
        return self.table.column(name)

    def sorted_order(self, name: str, indices: Iterable[int] | None = None) -> npt.NDArray[np.int32] | None:
        """Row numbers in sort order `name`; see `TraceTable.sorted_order`."""
        return self.table.sorted_order(name, indices)

    def flagged(self, marks: set[str]) -> npt.NDArray[np.bool_]:
        """Per row: has errors, faults, or is one of the marked (diverged) traces."""
        return self.table.flagged(marks)

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
        table = self.table
        with self._lock:
            self.size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                for item in scan_frames(fh, self.offset, path=self.path, size=self.size):
                    if isinstance(item, ScanResult):
                        self.offset = item.end
                        break
                    if item.type is FrameType.RECORDS:
                        spans = self._decoded(item, decode_slim_spans, "records")
                        table.absorb(spans, item.offset)
                        added += len(spans)
                        self.span_count += len(spans)
                    elif item.type is FrameType.MANIFEST:
                        self.manifest = self.manifest.merged(self._decoded(item, decode_manifest, "manifest"))
                    elif item.type is FrameType.BLOB:
                        self.blob_at[item.body()[:32].hex()] = item.offset
                    elif item.type is FrameType.SEAL:
                        self.sealed = True
                    self.offset = item.end  # after the frame is absorbed: iter_graphs reads up to here
                    frames += 1
                    if ((max_frames is not None and frames >= max_frames)
                            or (deadline is not None and time.perf_counter() > deadline)
                            or (min_rows is not None and table.count >= min_rows)):
                        break
            if added:
                self._cache.clear()  # a cached trace may have grown
            return added

    def _decoded(self, frame: Frame, decode: Callable[[bytes], _T], what: str) -> _T:
        """A frame's payload decoded, or the one-line CorruptSessionError `show` gives."""
        try:
            return decode(frame.body())
        except CorruptSessionError:
            raise
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise CorruptSessionError(f"{self.path}: {what} frame at offset {frame.offset} does not decode: {exc}",
                                      path=self.path, offset=frame.offset) from None
        except Exception as exc:  # zlib.error and friends
            raise CorruptSessionError(f"{self.path}: {what} frame at offset {frame.offset} does not decompress: "
                                      f"{exc}", path=self.path, offset=frame.offset) from None

    @property
    def at_end(self) -> bool:
        return self.offset >= self.size

    # --- per-trace loading -------------------------------------------------------------

    def _frames(self, offsets: list[int]) -> Iterator[bytes]:
        """The bodies of the frames at these offsets (all read by `scan` before, so intact)."""
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
        while len(self._cache) > GRAPH_CACHE:
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
        end, known, last = self.offset, self.count, self.table.columns.last_frame
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
