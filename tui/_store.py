"""The explorer's view of a session file: one summary row per trace, spans loaded per trace.

`Session` decodes every record into a full `Span` and indexes it, which is right for replay
but costs seconds and gigabytes at a million spans. The explorer only needs one row per trace
to draw the list, so `TraceStore` scans frames with a slim decoder (no clocks, attributes
decoded only for decisions and actions), remembers which frames hold each trace, and decodes a
trace's full spans only when it is opened. Scanning is incremental: `scan()` continues from
where it stopped, which is also how a session still being written is followed live.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from edgetrace.tui._graph import TraceGraph

from edgetrace._codec import decode_manifest, decode_spans
from edgetrace._errors import SessionNotFoundError
from edgetrace._frames import FILE_HEADER_SIZE, FrameType, ScanResult, read_file_header, scan_frames
from edgetrace._records import FORMAT_VERSION, Manifest, Span
from edgetrace._session import SESSION_MAGIC, SESSION_SUFFIX

__all__ = ["TraceRow", "TraceStore"]


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


_slim_decoder = msgspec.msgpack.Decoder(list[_Slim])
_attrs_decoder = msgspec.msgpack.Decoder(dict[str, Any])


class TraceRow:
    """One line of the trace list, updated as more spans of the trace are scanned."""

    __slots__ = ("acts", "decision", "errors", "faults", "hi", "index", "lo", "node", "offsets",
                 "ranges", "root_kind", "root_name", "root_seq", "spans", "trace")

    def __init__(self, index: int, trace: str, span: _Slim, offset: int, intern: dict[str, str]) -> None:
        self.index = index
        self.trace = trace
        # node, name and kind repeat across a million rows: share one string object each.
        self.node = intern.setdefault(span.node, span.node)
        self.root_seq = span.seq
        self.root_name = intern.setdefault(span.name, span.name)
        self.root_kind = intern.setdefault(span.kind, span.kind)
        self.lo = span.start
        self.hi = span.end
        self.ranges: dict[str, tuple[int, int]] | None = None
        self.spans = 0
        self.errors = 0
        self.faults = 0
        self.decision: str = ""
        self.acts: str = ""
        self.offsets: int | list[int] = offset

    def add(self, span: _Slim, offset: int) -> None:
        self.spans += 1
        if span.status == "error":
            self.errors += 1
        if span.kind == "fault":
            self.faults += 1
        if span.node == self.node:
            self.lo, self.hi = min(self.lo, span.start), max(self.hi, span.end)
        else:
            ranges = self.ranges
            if ranges is None:
                ranges = self.ranges = {}
            lo, hi = ranges.get(span.node, (span.start, span.end))
            ranges[span.node] = (min(lo, span.start), max(hi, span.end))
        if span.kind == "decide" or span.kind == "act":
            attrs = _attrs_decoder.decode(span.attrs) if span.attrs else {}
            if span.kind == "decide" and attrs.get("edgetrace.decision") is not None:
                self.decision = str(attrs["edgetrace.decision"])
            elif span.kind == "act":
                self.acts = f"{self.acts},{span.name}" if self.acts else span.name
        offsets = self.offsets
        if isinstance(offsets, int):
            if offsets != offset:
                self.offsets = [offsets, offset]
        elif offsets[-1] != offset:
            offsets.append(offset)

    @property
    def root(self) -> str:
        return f"{self.node}:{self.root_seq}"

    @property
    def nodes(self) -> list[str]:
        return sorted({self.node, *(self.ranges or ())})

    @property
    def duration(self) -> int:
        """Longest per-node extent: local clocks may be skewed, so never subtract across nodes."""
        best = self.hi - self.lo
        for lo, hi in (self.ranges or {}).values():
            best = max(best, hi - lo)
        return best

    @property
    def flags(self) -> str:
        return ("E" if self.errors else "·") + ("F" if self.faults else "·")

    @property
    def frame_offsets(self) -> list[int]:
        return [self.offsets] if isinstance(self.offsets, int) else list(self.offsets)


#: Sort keys of the trace list, in the order the `s` key cycles through them.
SORTS: dict[str, Callable[[TraceRow], Any]] = {
    "arrival": lambda r: r.index,
    "trace": lambda r: r.trace,
    "duration": lambda r: -r.duration,
    "spans": lambda r: -r.spans,
    "errors": lambda r: (-r.errors, r.index),
}


class TraceStore:
    """Trace rows of one session file, filled by `scan()` and read by the UI thread.

    A background thread may call `scan()` while the UI reads `rows`: rows are only ever
    appended, and a row's fields are plain attribute writes, so a reader sees a consistent
    prefix (the GIL makes each append atomic).
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
        self.rows: list[TraceRow] = []
        self.by_trace: dict[str, TraceRow] = {}
        self.blob_at: dict[str, int] = {}
        self.span_count = 0
        self.sealed = False
        self.offset = FILE_HEADER_SIZE
        self.size = self.path.stat().st_size
        self._lock = threading.Lock()
        self._intern: dict[str, str] = {}
        self._cache: OrderedDict[str, TraceGraph] = OrderedDict()

    # --- scanning ----------------------------------------------------------------------

    @property
    def progress(self) -> float:
        return 1.0 if self.size <= FILE_HEADER_SIZE else min(1.0, self.offset / self.size)

    def scan(self, *, budget_s: float | None = None, max_frames: int | None = None) -> int:
        """Read frames appended since the last call; return how many spans were added."""
        with self._lock:
            added = 0
            deadline = None if budget_s is None else time.perf_counter() + budget_s
            frames = 0
            self.size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                for item in scan_frames(fh, self.offset, path=self.path):
                    if isinstance(item, ScanResult):
                        self.offset = item.end
                        break
                    self.offset = item.end
                    if item.type is FrameType.RECORDS:
                        added += self._absorb(_slim_decoder.decode(item.body()), item.offset)
                    elif item.type is FrameType.MANIFEST:
                        self.manifest = self.manifest.merged(decode_manifest(item.body()))
                    elif item.type is FrameType.BLOB:
                        self.blob_at[item.body()[:32].hex()] = item.offset
                    elif item.type is FrameType.SEAL:
                        self.sealed = True
                    frames += 1
                    if (max_frames is not None and frames >= max_frames) or (
                        deadline is not None and time.perf_counter() > deadline
                    ):
                        break
            self.span_count += added
            if added:
                self._cache.clear()  # a cached trace may have grown
            return added

    @property
    def at_end(self) -> bool:
        return self.offset >= self.size

    def _absorb(self, spans: list[_Slim], offset: int) -> int:
        rows, by_trace = self.rows, self.by_trace
        for span in spans:
            row = by_trace.get(span.trace)
            if row is None:
                row = by_trace[span.trace] = TraceRow(len(rows), span.trace, span, offset, self._intern)
                rows.append(row)
            row.add(span, offset)
        return len(spans)

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
        hit = self._cache.get(trace)
        if hit is not None:
            self._cache.move_to_end(trace)
            return hit
        row = self.by_trace.get(trace)
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
        """Every trace in arrival order, decoding each records frame once (for filtering).

        A trace is yielded once the scan has passed the last frame that holds it, so a
        whole-session pass holds only the traces still open, not the session.
        """
        last = {r.trace: r.frame_offsets[-1] for r in self.rows}
        pending: dict[str, list[Span]] = {}
        end = self.offset
        with open(self.path, "rb") as fh:
            for item in scan_frames(fh, FILE_HEADER_SIZE, path=self.path):
                if isinstance(item, ScanResult) or item.offset >= end or stop():
                    break
                if item.type is not FrameType.RECORDS:
                    continue
                for span in decode_spans(item.body()):
                    bucket = pending.get(span.trace)
                    if bucket is None:
                        bucket = pending[span.trace] = []
                    bucket.append(span)
                for trace in list(pending):
                    if last.get(trace, -1) <= item.offset:
                        yield TraceGraph(trace, pending.pop(trace))
        for trace, spans in pending.items():
            yield TraceGraph(trace, spans)


def find_sessions(*dirs: Path) -> list[Path]:
    """Session files in the given folders, newest first (the picker's list)."""
    found: dict[Path, float] = {}
    for folder in dirs:
        try:
            for p in folder.glob(f"*{SESSION_SUFFIX}"):
                if p.is_file():
                    found[p.resolve()] = p.stat().st_mtime
        except OSError:
            continue
    return sorted(found, key=lambda p: (-found[p], str(p)))


def data_dir() -> Path:
    """Where sessions live by default: `$EDGETRACE_DATA`, else ~/.local/share/edgetrace."""
    env = os.environ.get("EDGETRACE_DATA")
    return Path(env) if env else Path.home() / ".local" / "share" / "edgetrace"
