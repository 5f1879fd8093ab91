"""The session writer: appends frames to one session file (recorded → shipped → *stored*).

The hub (through a `SessionStore`) and `edgetrace replay --save` write sessions with it. It
creates a file, or continues one after a crash: recovery reads every intact frame, rebuilds
what the hub needs to deduplicate (the highest seq per node, the blobs, each node's
incarnations: edgetrace._streams) and cuts a torn tail — or a damaged one, which it logs;
damage further in is skipped and logged (`damage`), so one bad frame does not lock every
agent out of a session. A file of format 1 is upgraded in place (its header) before anything
of format 2 is appended. A file of format 3 (clocks by reference: a compacted or merged
session) is continued only by a writer made for that format (`format_version`); the others
refuse it in one line.

A write that fails — a full disk, an I/O error, a failed fsync — never leaves a partial
frame behind: the file is cut back to the end of the last complete frame and the writer's
state is rolled back (`batch()` does this for a group of frames, so blobs never survive the
records that needed them), and `StorageError` says which disk. The writer stays usable; the
next write tries again, so a hub resumes by itself once space returns.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import msgspec

from edgetrace._codec import encode_manifest, encode_marker, encode_spans
from edgetrace._errors import StorageError, UnsupportedFormatError
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    FLAG_ZLIB,
    Damage,
    Frame,
    FrameType,
    ScanResult,
    encode_file_header,
    encode_frame,
    read_file_header,
    scan_frames,
)
from edgetrace._records import (
    CLOCK_REF_VERSION,
    FORMAT_VERSION,
    Incarnation,
    Lost,
    Manifest,
    Marker,
    Span,
    blob_id,
)
from edgetrace._session import (
    SESSION_MAGIC,
    FsyncPolicy,
    _decode_manifest_frame,
    _decode_marker_frame,
    _decode_records,
)
from edgetrace._streams import IncState, NodeStream
from edgetrace._version import __version__

__all__ = ["SessionWriter"]

log = logging.getLogger("edgetrace.hub")


class _File:
    """The bytes of one session: a file opened for appending (no user-space buffer), or a buffer."""

    def __init__(self, path: Path, buffer: io.BytesIO | None) -> None:
        self.path = path
        self.buffer = buffer
        self.fd = -1

    def open_append(self) -> None:
        if self.buffer is None and self.fd < 0:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))

    def create(self, header: bytes) -> None:
        if self.buffer is not None:
            self.buffer.write(header)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
                          | getattr(os, "O_CLOEXEC", 0), 0o644)
        self.write(header)

    def write(self, data: bytes) -> None:
        if self.buffer is not None:
            self.buffer.seek(0, io.SEEK_END)
            self.buffer.write(data)
            return
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            if n <= 0:  # a regular file reports a full disk as ENOSPC; be safe about 0 as well
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[n:]

    def truncate(self, size: int) -> None:
        if self.buffer is not None:
            self.buffer.truncate(size)
            self.buffer.seek(size)
        else:
            os.ftruncate(self.fd, size)

    def sync(self) -> None:
        if self.buffer is None and self.fd >= 0:
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class SessionWriter:
    """Appends frames to a session file; creating it, or continuing it after a crash.

    The writer remembers the highest seq stored per node (`last_seq`), which blobs exist and
    each node's incarnations (`streams`), so the hub can deduplicate across restarts.

    With `buffer` the session lives in that in-memory buffer instead of a file (`path` then
    only names it in messages); a non-empty buffer is recovered like a file left by a crash.
    `release()` gives the file descriptor back (a store with many sessions bounds its open
    files); the next write opens it again, without reading the file.

    `format_version` is the file-header version a new file gets: `FORMAT_VERSION` (2), or
    `CLOCK_REF_VERSION` (3) for a writer whose records may hold clocks by reference
    (`Span.merged`: merge, of inputs that have them). A writer of format 2 refuses to continue a
    file of format 3; one of format 3 continues either (an older file's header is raised to 3).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        manifest: Manifest | None = None,
        *,
        fsync: FsyncPolicy | str = FsyncPolicy.NEVER,
        compress: bool | str = True,
        buffer: io.BytesIO | None = None,
        format_version: int = FORMAT_VERSION,
    ) -> None:
        if format_version not in (FORMAT_VERSION, CLOCK_REF_VERSION):
            raise ValueError(f"format_version must be {FORMAT_VERSION} or {CLOCK_REF_VERSION}, not {format_version!r}")
        self.path = Path(path)
        self.format_version = format_version
        self.fsync = FsyncPolicy(fsync)
        self.compress = compress
        self.manifest = Manifest()
        self.last_seq: dict[str, int] = {}
        self.streams: dict[str, NodeStream] = {}
        self.blob_ids: set[str] = set()
        self.records = 0
        self.sealed = False
        self.torn_bytes_cut = 0
        self.damage: list[Damage] = []
        self._undo: list[Callable[[], None]] | None = None
        self._closed = False
        self._file = _File(self.path, buffer)
        if buffer is not None and buffer.seek(0, io.SEEK_END):
            self._end = self._recover(buffer, buffer.tell())
        elif buffer is None and self.path.exists() and self.path.stat().st_size > 0:
            size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                self._end = self._recover(fh, size)
            self._file.open_append()
        else:
            self._file.create(encode_file_header(SESSION_MAGIC, format_version))
            self._end = FILE_HEADER_SIZE
        if manifest is not None:
            self.write_manifest(manifest)

    # --- recovery -------------------------------------------------------------------------------

    def _recover(self, fh: BinaryIO, size: int) -> int:
        """Absorb every intact frame; cut a torn (or damaged) tail; return where the file ends."""
        fh.seek(0)
        version = read_file_header(fh.read(FILE_HEADER_SIZE), magic=SESSION_MAGIC, supported=CLOCK_REF_VERSION,
                                   path=self.path, what="session")
        if version > self.format_version:
            raise UnsupportedFormatError(
                f"{self.path}: session format version {version} holds clocks by reference (a compacted or "
                "merged session); it is read, never appended to: record into a new session",
                path=self.path, version=version)
        end = FILE_HEADER_SIZE
        for item in scan_frames(fh, FILE_HEADER_SIZE, path=self.path, size=size, salvage=True):
            if isinstance(item, ScanResult):
                end = item.end
                break
            if isinstance(item, Damage):
                self.damage.append(item)
                continue
            try:
                self._absorb(item)
            except Exception as exc:  # a frame that does not decode is damage too
                self.damage.append(Damage(item.offset, item.end, str(exc)))
        if self.damage and self.damage[-1].end >= end:  # damage to the end of the file: no frame after it
            end = self.damage.pop().offset
        for d in self.damage:
            log.error("session %s: skipped a damaged stretch of %d bytes at offset %d (%s); what follows is kept",
                      self.path.name, d.size, d.offset, d.reason)
        if end < size:
            self.torn_bytes_cut = size - end
            self._cut(end)
        if version < self.format_version:
            self._upgrade()
        return end

    def _cut(self, end: int) -> None:
        if self._file.buffer is not None:
            self._file.truncate(end)
        else:
            os.truncate(self.path, end)

    def _upgrade(self) -> None:
        """Raise an older header to this writer's format (16 bytes in place): what follows may use
        markers (format 2) and, for a writer of format 3, clocks by reference."""
        header = encode_file_header(SESSION_MAGIC, self.format_version)
        if self._file.buffer is not None:
            self._file.buffer.seek(0)
            self._file.buffer.write(header)
            self._file.buffer.seek(0, io.SEEK_END)
            return
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, header, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _absorb(self, frame: Frame) -> None:
        if frame.type is FrameType.MANIFEST:
            self.manifest = self.manifest.merged(_decode_manifest_frame(frame, self.path))
        elif frame.type is FrameType.RECORDS:
            spans = _decode_records(frame, self.path)
            for span in spans:
                self._note(span.node, span.seq)
            self.records += len(spans)
        elif frame.type is FrameType.BLOB:
            self.blob_ids.add(frame.head(32).hex())
        elif frame.type is FrameType.SEAL:
            self.sealed = True
        elif frame.type is FrameType.MARKER:
            marker = _decode_marker_frame(frame, self.path)
            if marker is not None:
                self._apply_marker(marker)

    def _note(self, node: str, seq: int) -> None:
        stream = self.streams.get(node)
        if stream is None:
            stream = self.streams[node] = NodeStream()
        stream.absorb_span(seq)
        if seq > self.last_seq.get(node, 0):
            self.last_seq[node] = seq

    def _apply_marker(self, marker: Marker) -> None:
        stream = self.streams.get(marker.node)
        if stream is None:
            stream = self.streams[marker.node] = NodeStream()
        if isinstance(marker, Incarnation):
            stream.absorb_marker(marker)
        elif isinstance(marker, Lost):
            stream.absorb_span(marker.last)
            if marker.last > self.last_seq.get(marker.node, 0):
                self.last_seq[marker.node] = marker.last

    # --- transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Frames written inside stand or fall together: on any error the file is cut back to
        where the batch began and the writer's state is what it was."""
        if self._undo is not None:  # nested: the outer batch decides
            yield
            return
        mark, self._undo = self._end, []
        try:
            yield
        except BaseException:
            undo, self._undo = self._undo, None
            self._rewind(mark)
            for step in reversed(undo):
                step()
            raise
        self._undo = None

    def _remember(self, step: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(step)

    def _reopen(self) -> None:
        """Open the file again after `release()`, if it is still as this writer left it."""
        if self._file.buffer is not None or self._file.fd >= 0:
            return
        self._file.open_append()
        if os.fstat(self._file.fd).st_size != self._end:
            self._file.close()
            self._closed = True  # the store opens (and recovers) it afresh
            raise StorageError(f"{self.path}: changed on disk while it was not open here", path=self.path)

    def _rewind(self, mark: int) -> None:
        try:
            self._reopen()
            self._file.truncate(mark)
            self._end = mark
        except OSError as exc:  # cannot even cut back: stop writing until the store reopens us
            self._closed = True
            log.error("session %s: cannot cut back to offset %d after a failed write: %s", self.path.name, mark, exc)

    def _write(self, data: bytes) -> None:
        if self._closed:
            raise StorageError(f"{self.path}: the session writer is closed", path=self.path)
        mark = self._end
        try:
            self._reopen()
            self._file.write(data)
            self._end += len(data)
            if self.fsync is FsyncPolicy.FRAME and self._undo is None:
                self._file.sync()
        except OSError as exc:
            self._rewind(mark)
            raise self._storage_error(exc) from None

    def _storage_error(self, exc: OSError) -> StorageError:
        where = self.path.parent
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            what = f"the disk holding {where} is full ({exc.strerror})"
        else:
            what = f"cannot write to {where} ({exc.strerror or exc})"
        return StorageError(f"{self.path.name}: {what}; nothing unstored was acknowledged, "
                            "and writing resumes when the disk takes data again", path=self.path)

    # --- frames ----------------------------------------------------------------------------------

    def write_manifest(self, manifest: Manifest) -> None:
        if not manifest.edgetrace:
            manifest = msgspec.structs.replace(
                manifest, edgetrace=__version__, python=manifest.python or sys.version.split()[0]
            )
        self._write(encode_frame(FrameType.MANIFEST, encode_manifest(manifest)))
        before, self.manifest = self.manifest, self.manifest.merged(manifest)
        self._remember(lambda: setattr(self, "manifest", before))

    def write_marker(self, marker: Marker) -> None:
        """A stream marker (an incarnation, a lost range): written before the spans it concerns."""
        self._write(encode_frame(FrameType.MARKER, encode_marker(marker)))
        stream = self.streams.get(marker.node)
        saved = (stream.high, stream.current, dict(stream.incarnations)) if stream is not None else None
        high = self.last_seq.get(marker.node)
        self._apply_marker(marker)

        def undo() -> None:
            if saved is None:
                self.streams.pop(marker.node, None)
            else:
                restored = self.streams[marker.node]
                restored.high, restored.current, restored.incarnations = saved
            self._restore_last(marker.node, high)

        self._remember(undo)

    def _restore_last(self, node: str, value: int | None) -> None:
        if value is None:
            self.last_seq.pop(node, None)
        else:
            self.last_seq[node] = value

    def append(self, spans: Sequence[Span]) -> None:
        """Write spans as one frame (one CRC, one compression window)."""
        if not spans:
            return
        self._write(encode_frame(FrameType.RECORDS, encode_spans(list(spans)), compress=self.compress,
                                 count=len(spans)))
        self._stored(spans)

    def append_encoded(self, payload: bytes, spans: Sequence[Span], *, zlib_packed: bytes | None = None,
                       last: tuple[str, int] | None = None) -> None:
        """Write an already-encoded records payload (the hub stores what agents sent).

        `zlib_packed`, when given, is `payload` compressed by the agent: stored as it is.
        `last` = (node, seq) when the caller knows the batch is one node's, contiguous and in
        order: the bookkeeping is then one update, not one per span.
        """
        if zlib_packed is not None and self.compress:
            self._write(encode_frame(FrameType.RECORDS, zlib_packed, flags=FLAG_ZLIB, count=len(spans)))
        else:
            self._write(encode_frame(FrameType.RECORDS, payload, compress=self.compress, count=len(spans)))
        self._stored(spans, last)

    def _stored(self, spans: Sequence[Span], last: tuple[str, int] | None = None) -> None:
        touched: dict[str, tuple[int | None, NodeStream | None, IncState | None, int]] = {}
        nodes = {last[0]} if last is not None else {s.node for s in spans}
        if self._undo is not None:
            for node in nodes:
                stream = self.streams.get(node)
                state = stream.incarnations.get(stream.current) if stream and stream.current is not None else None
                touched[node] = (self.last_seq.get(node), stream,
                                 IncState(state.offset, state.local_last) if state else None,
                                 stream.high if stream else 0)
        if last is not None:
            self._note(*last)
        else:
            for span in spans:
                self._note(span.node, span.seq)
        self.records += len(spans)
        if self._undo is not None:
            count = len(spans)

            def undo() -> None:
                self.records -= count
                for node, (last, stream, state, high) in touched.items():
                    self._restore_last(node, last)
                    if stream is None:
                        self.streams.pop(node, None)
                        continue
                    stream.high = high
                    if state is not None and stream.current is not None:
                        stream.incarnations[stream.current] = state

            self._remember(undo)

    def put_blob(self, data: bytes, sha: str | None = None) -> str:
        sha = sha or blob_id(data)
        if sha not in self.blob_ids:
            self._write(encode_frame(FrameType.BLOB, bytes.fromhex(sha) + data, compress=self.compress))
            self.blob_ids.add(sha)
            self._remember(lambda: self.blob_ids.discard(sha))
        return sha

    def seal(self) -> None:
        """Mark the session complete: readers following it live can stop waiting."""
        if not self.sealed:
            self._write(encode_frame(FrameType.SEAL, b""))
            self.sealed = True
            self._remember(lambda: setattr(self, "sealed", False))

    def stream(self, node: str) -> NodeStream:
        """The node's stream as stored so far (created empty for a new node, not written)."""
        stream = self.streams.get(node)
        return stream if stream is not None else NodeStream()

    # --- durability ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Nothing is buffered in this process: every frame is written when it is made."""

    def sync(self) -> None:
        """Force what was written to disk; a failure is a StorageError (the caller must not ack)."""
        try:
            self._file.sync()
        except OSError as exc:
            raise self._storage_error(exc) from None

    @property
    def size(self) -> int:
        return self._end

    @property
    def closed(self) -> bool:
        return self._closed

    def release(self) -> None:
        """Close the file descriptor but keep the state; the next write reopens the file."""
        if self._file.fd >= 0:
            with contextlib.suppress(OSError):
                if self.fsync in (FsyncPolicy.FRAME, FsyncPolicy.CLOSE):
                    self._file.sync()
            self._file.close()

    def close(self) -> None:
        """Finish writing; an in-memory buffer stays as it is, since it *is* the stored session."""
        if self._closed:
            return
        self._closed = True
        if self._file.buffer is not None:
            return
        try:
            if self.fsync in (FsyncPolicy.FRAME, FsyncPolicy.CLOSE):
                self._file.sync()
        except OSError as exc:  # a close must not raise over a full disk: what was acked is synced
            log.error("session %s: final sync failed: %s", self.path.name, exc)
        finally:
            self._file.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
