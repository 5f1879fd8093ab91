"""The session store: an append-only file of CRC-checked frames — this module reads it.

One writer (the hub, or the replayer's `--save`; edgetrace._writer) appends manifest, record,
blob and marker frames; any number of readers (show, replay, the explorer following a live
session) read the intact prefix. Blobs are content-addressed by sha256 and written once per
session. Opening a session for writing cuts a torn tail left by a crash; opening it for
reading only stops before it, since the writer may be in the middle of that frame. Damage
is refused with the offset and what was expected, unless the reader asked to `salvage`:
then each damaged frame is skipped, counted and listed (`Session.damage`), never silently.
See docs/format.md.

Both ends also work on an in-memory buffer (`buffer=`) holding exactly the bytes a file
would: that is how `MemorySessionStore` (edgetrace._store) keeps sessions in tests, with the
same frames, recovery and reader as on disk.
"""

from __future__ import annotations

import enum
import io
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import msgspec

from edgetrace._codec import decode_manifest, decode_marker, decode_spans
from edgetrace._errors import CorruptSessionError, SessionNotFoundError, UsageError
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    Damage,
    Frame,
    FrameType,
    ScanResult,
    read_file_header,
    scan_frames,
)
from edgetrace._inflate import inflated
from edgetrace._records import CLOCK_REF_VERSION, Incarnation, Lost, Manifest, Marker, Span, blob_id

if TYPE_CHECKING:
    from edgetrace._index import CausalIndex
    from edgetrace._writer import SessionWriter

__all__ = ["SESSION_MAGIC", "SESSION_SUFFIX", "FsyncPolicy", "Session", "SessionWriter"]

_SALVAGE_HINT = " (edgetrace show/replay/export --salvage skips the damaged frame and reads the rest)"

SESSION_MAGIC = b"ETSESS\r\n"
SESSION_SUFFIX = ".ets"


class FsyncPolicy(enum.StrEnum):
    """When a writer forces data to disk. `frame` is what the hub uses before acking."""

    NEVER = "never"
    FRAME = "frame"
    CLOSE = "close"

    @classmethod
    def parse(cls, text: str) -> FsyncPolicy:
        try:
            return cls(text)
        except ValueError:
            raise UsageError(
                f"unknown fsync policy {text!r}; expected one of: {', '.join(p.value for p in cls)}"
            ) from None


def _decode_blob(frame: Frame, path: Path) -> tuple[str, bytes]:
    body = frame.body()
    if len(body) < 32:
        raise CorruptSessionError(
            f"{path}: blob frame at offset {frame.offset} is {len(body)} bytes, "
            "shorter than its 32-byte hash",
            path=path, offset=frame.offset, expected="sha256 + blob bytes",
        )
    sha, data = body[:32].hex(), body[32:]
    if blob_id(data) != sha:
        raise CorruptSessionError(
            f"{path}: blob at offset {frame.offset} does not match its sha256 {sha[:12]}…",
            path=path, offset=frame.offset, expected="blob content matching its hash",
        )
    return sha, data


def _decode_records(frame: Frame, path: Path, body: Future[bytes] | None = None) -> list[Span]:
    try:
        return decode_spans(frame.body() if body is None else body.result())
    except CorruptSessionError:
        raise
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise CorruptSessionError(
            f"{path}: records frame at offset {frame.offset} does not decode: {exc}",
            path=path, offset=frame.offset, expected="a MessagePack array of span records",
        ) from None
    except Exception as exc:  # zlib.error and friends
        raise CorruptSessionError(
            f"{path}: records frame at offset {frame.offset} does not decompress: {exc}",
            path=path, offset=frame.offset, expected="zlib-compressed records",
        ) from None


_T = TypeVar("_T")


def _decoded(frame: Frame, path: Path, decode: Callable[[bytes], _T], what: str, expected: str) -> _T:
    """A frame's payload decoded, or the one-line CorruptSessionError every reader gives."""
    try:
        return decode(frame.body())
    except CorruptSessionError:
        raise
    except Exception as exc:
        raise CorruptSessionError(
            f"{path}: {what} frame at offset {frame.offset} does not decode: {exc}",
            path=path, offset=frame.offset, expected=expected,
        ) from None


def _decode_marker_frame(frame: Frame, path: Path) -> Marker | None:
    return _decoded(frame, path, decode_marker, "marker", "an incarnation or lost marker")


def _decode_manifest_frame(frame: Frame, path: Path) -> Manifest:
    return _decoded(frame, path, decode_manifest, "manifest", "a MessagePack manifest map")


class Session:
    """A session read from disk: manifest, spans in stored order, blobs on demand.

    `refresh()` picks up frames a live writer appended since the last read, which is how
    the explorer follows a session the hub is still writing. With `buffer` it reads a session
    an in-memory `SessionWriter` is writing (`path` then only names it in messages).

    With `salvage`, a damaged frame (a CRC mismatch, a record that does not validate) is
    skipped and listed in `damage` instead of refusing the session; `salvage_report()` says
    what was skipped and which records are missing. What a session says about its nodes'
    streams besides the records is in `incarnations` (where an agent started or rebased) and
    `lost` (seqs an agent quarantined or the hub refused, with why).
    """

    def __init__(self, path: str | os.PathLike[str], *, buffer: io.BytesIO | None = None,
                 salvage: bool = False) -> None:
        self.path = Path(path)
        self._buffer = buffer
        self.salvage = salvage
        if buffer is None and not self.path.exists():
            raise SessionNotFoundError(f"{self.path}: no such session", path=self.path)
        if buffer is None and self.path.is_dir():
            raise SessionNotFoundError(
                f"{self.path}: is a directory; expected a session file ({SESSION_SUFFIX})",
                path=self.path,
            )
        self.manifest = Manifest()
        self.spans: list[Span] = []
        self.sealed = False
        self.torn = False
        self.incarnations: list[Incarnation] = []
        self.lost: list[Lost] = []
        self.damage: list[Damage] = []
        self._blob_at: dict[str, int] = {}
        self._by_ref: dict[str, Span] | None = None  # built on the first lookup: most reads never make one
        self._offset = FILE_HEADER_SIZE
        self._index: CausalIndex | None = None
        with self._open() as fh:
            self.version = read_file_header(
                fh.read(FILE_HEADER_SIZE),
                magic=SESSION_MAGIC, supported=CLOCK_REF_VERSION, path=self.path, what="session",
            )
        self.refresh()

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, salvage: bool = False) -> Session:
        return cls(path, salvage=salvage)

    def _open(self) -> BinaryIO:
        if self._buffer is not None:
            return io.BytesIO(self._buffer.getvalue())  # a snapshot: the writer may go on appending
        return open(self.path, "rb")

    def refresh(self) -> list[Span]:
        """Read frames appended since the last call; return the new spans."""
        new: list[Span] = []
        try:
            with self._open() as fh:
                scan = scan_frames(fh, self._offset, path=self.path, salvage=self.salvage)
                for item, body in inflated(scan):
                    if isinstance(item, ScanResult):
                        self._offset = item.end
                        self.torn = item.torn
                        break
                    if isinstance(item, Damage):
                        self.damage.append(item)
                        continue
                    try:
                        self._take(item, new, body)
                    except CorruptSessionError as exc:
                        if not self.salvage:
                            raise
                        self.damage.append(Damage(item.offset, item.end, str(exc).removeprefix(f"{self.path}: ")))
        except CorruptSessionError as exc:
            raise CorruptSessionError(f"{exc}{_SALVAGE_HINT}", path=exc.path, offset=exc.offset,
                                      expected=exc.expected) from None
        if self._by_ref is not None:
            self._refs_of(new)
        self.spans.extend(new)
        if new and self._index is not None:
            self._index.extend(new)
        return new

    def _take(self, item: Frame, new: list[Span], body: Future[bytes] | None = None) -> None:
        if item.type is FrameType.RECORDS:
            new.extend(_decode_records(item, self.path, body))
        elif item.type is FrameType.MANIFEST:
            self.manifest = self.manifest.merged(_decode_manifest_frame(item, self.path))
        elif item.type is FrameType.BLOB:
            self._blob_at[item.head(32).hex()] = item.offset
        elif item.type is FrameType.SEAL:
            self.sealed = True
        elif item.type is FrameType.MARKER:
            marker = _decode_marker_frame(item, self.path)
            if isinstance(marker, Incarnation):
                self.incarnations.append(marker)
            elif isinstance(marker, Lost):
                self.lost.append(marker)

    # --- what the streams say --------------------------------------------------------------

    def restarts(self, node: str) -> list[int]:
        """Stored seqs at which `node` restarted (a new agent process), in order, its first included."""
        return [m.base for m in self.incarnations if m.node == node and m.restart]

    def missing(self) -> dict[str, list[tuple[int, int | None]]]:
        """Per node, seq ranges neither stored nor accounted for by a marker (what damage cost);
        a range that runs to the node's end (nothing of it came after the damage) ends in None."""
        found: dict[str, list[tuple[int, int | None]]] = {}
        by_node: dict[str, list[tuple[int, int]]] = {}
        for span in self.spans:
            by_node.setdefault(span.node, []).append((span.seq, span.seq))
        for lost in self.lost:
            by_node.setdefault(lost.node, []).append((lost.first, lost.last))
        starts: dict[str, set[int]] = {}
        for m in self.incarnations:
            starts.setdefault(m.node, set()).add(m.base)
            by_node.setdefault(m.node, [])
        for node, ranges in by_node.items():
            ranges.sort()
            expected = 1
            for first, last in ranges:
                if first > expected and first not in starts.get(node, ()):
                    found.setdefault(node, []).append((expected, first - 1))
                expected = max(expected, last + 1)
            if self.damage and max(starts.get(node, {0})) >= expected:  # an incarnation with nothing left
                found.setdefault(node, []).append((max(starts[node]), None))
        return found

    def salvage_report(self) -> str:
        """One line for stderr: what salvage skipped and exactly which records are missing."""
        if not self.damage:
            return ""
        size = sum(d.size for d in self.damage)
        where = ", ".join(str(d.offset) for d in self.damage[:5]) + (" …" if len(self.damage) > 5 else "")
        said = [d.records for d in self.damage]
        if all(n is not None for n in said):
            count = f"{sum(n or 0 for n in said)} records are missing"
        else:
            count = f"at least {sum(n or 0 for n in said)} records are missing (a damaged header does not say)"
        missing = self.missing()
        detail = "; ".join(
            f"{node} seq " + ", ".join(f"{a}" if a == b else f"{a}–{b if b is not None else ''}" for a, b in ranges[:4])
            + (" …" if len(ranges) > 4 else "")
            for node, ranges in sorted(missing.items())[:6])
        from edgetrace._text import printable

        return printable(f"salvaged {self.path}: skipped {len(self.damage)} damaged frame(s), {size} bytes at "
                         f"offset(s) {where}; {count}" + (f" ({detail})" if detail else ""), limit=2000)

    # --- lookups -------------------------------------------------------------------------

    def span(self, ref: str) -> Span:
        try:
            return self._refs()[ref]
        except KeyError:
            raise UsageError(f"{self.path}: no span {ref!r} in this session") from None

    def get(self, ref: str) -> Span | None:
        return self._refs().get(ref)

    def _refs(self) -> dict[str, Span]:
        if self._by_ref is None:
            self._by_ref = {}
            self._refs_of(self.spans)
        return self._by_ref

    def _refs_of(self, spans: list[Span]) -> None:
        by_ref = self._refs()
        for span in spans:
            by_ref.setdefault(span.ref, span)  # a duplicate delivery: the first one stands

    @property
    def nodes(self) -> list[str]:
        return sorted(set(self.manifest.nodes) | {s.node for s in self.spans})

    def traces(self) -> dict[str, list[Span]]:
        """Spans grouped by trace id, traces sorted by id, spans in causal order."""
        order = self.index.causal_sort(self.spans)
        groups: dict[str, list[Span]] = {}
        for span in order:
            groups.setdefault(span.trace, []).append(span)
        return dict(sorted(groups.items()))

    def trace(self, trace_id: str) -> list[Span]:
        spans = [s for s in self.spans if s.trace == trace_id]
        if not spans:
            raise UsageError(f"{self.path}: no trace {trace_id!r} in this session")
        return self.index.causal_sort(spans)

    def blob(self, sha: str) -> bytes:
        at = self._blob_at.get(sha)
        if at is None:
            raise UsageError(f"{self.path}: no blob {sha[:12]}… in this session")
        with self._open() as fh:
            for item in scan_frames(fh, at, path=self.path):
                if isinstance(item, Frame):
                    return _decode_blob(item, self.path)[1]
                break
        raise CorruptSessionError(
            f"{self.path}: blob frame at offset {at} vanished", path=self.path, offset=at
        )

    def blob_ids(self) -> Iterable[str]:
        return self._blob_at.keys()

    @property
    def index(self) -> CausalIndex:
        if self._index is None:  # imported lazily: most readers never ask happens-before questions
            from edgetrace._index import CausalIndex

            try:
                self._index = CausalIndex(self.spans, lenient=self.salvage)
            except UsageError as exc:  # a reference the file does not resolve: the file is damaged
                raise CorruptSessionError(f"{self.path}: {exc}", path=self.path,
                                          expected="clock references to records before them") from None
        return self._index

    def __iter__(self) -> Iterator[Span]:
        return iter(self.spans)

    def __len__(self) -> int:
        return len(self.spans)



def __getattr__(name: str) -> object:
    # SessionWriter lives in edgetrace._writer, which builds on this module: re-exported lazily
    if name == "SessionWriter":
        from edgetrace._writer import SessionWriter

        return SessionWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
