"""The session store: an append-only file of CRC-checked frames.

One writer (the hub, or the replayer's `--save`) appends manifest, record and blob frames;
any number of readers (show, replay, the explorer following a live session) read the intact
prefix. Blobs are content-addressed by sha256 and written once per session. Opening a
session for writing cuts a torn tail left by a crash; opening it for reading only stops
before it, since the writer may be in the middle of that frame. See docs/format.md.

Both ends also work on an in-memory buffer (`buffer=`) holding exactly the bytes a file
would: that is how `MemorySessionStore` (edgetrace._store) keeps sessions in tests, with the
same frames, recovery and reader as on disk.
"""

from __future__ import annotations

import enum
import io
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

import msgspec

from edgetrace._codec import decode_manifest, decode_spans, encode_manifest, encode_spans
from edgetrace._errors import CorruptSessionError, SessionNotFoundError, UsageError
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    FLAG_ZLIB,
    Frame,
    FrameType,
    ScanResult,
    encode_file_header,
    encode_frame,
    read_file_header,
    scan_frames,
)
from edgetrace._records import FORMAT_VERSION, Manifest, Span, blob_id
from edgetrace._version import __version__

if TYPE_CHECKING:
    from edgetrace._index import CausalIndex

__all__ = ["SESSION_MAGIC", "SESSION_SUFFIX", "FsyncPolicy", "Session", "SessionWriter"]

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


def _decode_records(frame: Frame, path: Path) -> list[Span]:
    try:
        return decode_spans(frame.body())
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


def _decode_manifest_frame(frame: Frame, path: Path) -> Manifest:
    try:
        return decode_manifest(frame.body())
    except CorruptSessionError:
        raise
    except Exception as exc:
        raise CorruptSessionError(
            f"{path}: manifest frame at offset {frame.offset} does not decode: {exc}",
            path=path, offset=frame.offset, expected="a MessagePack manifest map",
        ) from None


class SessionWriter:
    """Appends frames to a session file; creating it, or continuing it after a crash.

    The writer remembers the highest seq stored per node and which blobs exist, so the hub
    can deduplicate by (node, seq) and store each blob once across restarts.

    With `buffer` the session lives in that in-memory buffer instead of a file (`path` then
    only names it in messages); a non-empty buffer is recovered like a file left by a crash.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        manifest: Manifest | None = None,
        *,
        fsync: FsyncPolicy | str = FsyncPolicy.NEVER,
        compress: bool | str = True,
        buffer: io.BytesIO | None = None,
    ) -> None:
        self.path = Path(path)
        self.fsync = FsyncPolicy(fsync)
        self.compress = compress
        self.manifest = Manifest()
        self.last_seq: dict[str, int] = {}
        self.blob_ids: set[str] = set()
        self.records = 0
        self.sealed = False
        self.torn_bytes_cut = 0
        self._fh: BinaryIO
        if buffer is not None:
            size = buffer.seek(0, io.SEEK_END)
            if size:
                end = self._recover(buffer)
                self.torn_bytes_cut = size - end
                buffer.truncate(end)
                buffer.seek(end)
            else:
                buffer.write(encode_file_header(SESSION_MAGIC, FORMAT_VERSION))
            self._fh = buffer
        elif self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                end = self._recover(fh)
            size = self.path.stat().st_size
            if end < size:
                self.torn_bytes_cut = size - end
                os.truncate(self.path, end)
            self._fh = open(self.path, "ab")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "wb")
            self._fh.write(encode_file_header(SESSION_MAGIC, FORMAT_VERSION))
            self._fh.flush()
        self._in_memory = buffer is not None
        if manifest is not None:
            self.write_manifest(manifest)

    def _recover(self, fh: BinaryIO) -> int:
        """Absorb every intact frame; return where they end (a torn tail starts there)."""
        fh.seek(0)
        read_file_header(
            fh.read(FILE_HEADER_SIZE), magic=SESSION_MAGIC, supported=FORMAT_VERSION, path=self.path, what="session"
        )
        for item in scan_frames(fh, FILE_HEADER_SIZE, path=self.path):
            if isinstance(item, ScanResult):
                return item.end
            self._absorb(item)
        raise AssertionError("scan_frames always ends with a ScanResult")

    def _absorb(self, frame: Frame) -> None:
        if frame.type is FrameType.MANIFEST:
            self.manifest = self.manifest.merged(_decode_manifest_frame(frame, self.path))
        elif frame.type is FrameType.RECORDS:
            for span in _decode_records(frame, self.path):
                if span.seq > self.last_seq.get(span.node, 0):
                    self.last_seq[span.node] = span.seq
                self.records += 1
        elif frame.type is FrameType.BLOB:
            self.blob_ids.add(frame.head(32).hex())
        elif frame.type is FrameType.SEAL:
            self.sealed = True

    def _write(self, data: bytes) -> None:
        self._fh.write(data)
        if self.fsync is FsyncPolicy.FRAME:
            self.sync()

    def write_manifest(self, manifest: Manifest) -> None:
        if not manifest.edgetrace:
            manifest = msgspec.structs.replace(
                manifest, edgetrace=__version__, python=manifest.python or sys.version.split()[0]
            )
        self.manifest = self.manifest.merged(manifest)
        self._write(encode_frame(FrameType.MANIFEST, encode_manifest(manifest)))

    def append(self, spans: Sequence[Span]) -> None:
        """Write spans as one frame (one CRC, one compression window)."""
        if not spans:
            return
        self._write(encode_frame(FrameType.RECORDS, encode_spans(list(spans)), compress=self.compress))
        for span in spans:
            if span.seq > self.last_seq.get(span.node, 0):
                self.last_seq[span.node] = span.seq
        self.records += len(spans)

    def append_encoded(self, payload: bytes, spans: Sequence[Any], *, zlib_packed: bytes | None = None,
                       last: tuple[str, int] | None = None) -> None:
        """Write an already-encoded records payload (the hub forwards what agents sent).

        `zlib_packed`, when given, is `payload` compressed by the agent: stored as it is.
        `last` = (node, seq) when the caller knows the batch is one node's, in order.
        """
        if zlib_packed is not None and self.compress:
            self._write(encode_frame(FrameType.RECORDS, zlib_packed, flags=FLAG_ZLIB))
        else:
            self._write(encode_frame(FrameType.RECORDS, payload, compress=self.compress))
        if last is not None:
            node, seq = last
            if seq > self.last_seq.get(node, 0):
                self.last_seq[node] = seq
        else:
            for span in spans:
                if span.seq > self.last_seq.get(span.node, 0):
                    self.last_seq[span.node] = span.seq
        self.records += len(spans)

    def put_blob(self, data: bytes, sha: str | None = None) -> str:
        sha = sha or blob_id(data)
        if sha not in self.blob_ids:
            self._write(
                encode_frame(FrameType.BLOB, bytes.fromhex(sha) + data, compress=self.compress)
            )
            self.blob_ids.add(sha)
        return sha

    def seal(self) -> None:
        """Mark the session complete: readers following it live can stop waiting."""
        if not self.sealed:
            self._write(encode_frame(FrameType.SEAL, b""))
            self.sealed = True

    def flush(self) -> None:
        self._fh.flush()

    def sync(self) -> None:
        self._fh.flush()
        if not self._in_memory:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Finish writing; an in-memory buffer stays open, since it *is* the stored session."""
        if self._fh.closed:
            return
        if self._in_memory:
            self._fh = io.BytesIO()
            self._fh.close()  # writing on fails as it would on a closed file
            return
        if self.fsync in (FsyncPolicy.FRAME, FsyncPolicy.CLOSE):
            self.sync()
        self._fh.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Session:
    """A session read from disk: manifest, spans in stored order, blobs on demand.

    `refresh()` picks up frames a live writer appended since the last read, which is how
    the explorer follows a session the hub is still writing. With `buffer` it reads a session
    an in-memory `SessionWriter` is writing (`path` then only names it in messages).
    """

    def __init__(self, path: str | os.PathLike[str], *, buffer: io.BytesIO | None = None) -> None:
        self.path = Path(path)
        self._buffer = buffer
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
        self._blob_at: dict[str, int] = {}
        self._by_ref: dict[str, Span] = {}
        self._offset = FILE_HEADER_SIZE
        self._index: CausalIndex | None = None
        with self._open() as fh:
            read_file_header(
                fh.read(FILE_HEADER_SIZE),
                magic=SESSION_MAGIC, supported=FORMAT_VERSION, path=self.path, what="session",
            )
        self.refresh()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Session:
        return cls(path)

    def _open(self) -> BinaryIO:
        if self._buffer is not None:
            return io.BytesIO(self._buffer.getvalue())  # a snapshot: the writer may go on appending
        return open(self.path, "rb")

    def refresh(self) -> list[Span]:
        """Read frames appended since the last call; return the new spans."""
        new: list[Span] = []
        with self._open() as fh:
            for item in scan_frames(fh, self._offset, path=self.path):
                if isinstance(item, ScanResult):
                    self._offset = item.end
                    self.torn = item.torn
                    break
                if item.type is FrameType.RECORDS:
                    new.extend(_decode_records(item, self.path))
                elif item.type is FrameType.MANIFEST:
                    self.manifest = self.manifest.merged(_decode_manifest_frame(item, self.path))
                elif item.type is FrameType.BLOB:
                    self._blob_at[item.head(32).hex()] = item.offset
                elif item.type is FrameType.SEAL:
                    self.sealed = True
        for span in new:
            self._by_ref.setdefault(span.ref, span)
        self.spans.extend(new)
        if new and self._index is not None:
            self._index.extend(new)
        return new

    # --- lookups -------------------------------------------------------------------------

    def span(self, ref: str) -> Span:
        try:
            return self._by_ref[ref]
        except KeyError:
            raise UsageError(f"{self.path}: no span {ref!r} in this session") from None

    def get(self, ref: str) -> Span | None:
        return self._by_ref.get(ref)

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

            self._index = CausalIndex(self.spans)
        return self._index

    def __iter__(self) -> Iterator[Span]:
        return iter(self.spans)

    def __len__(self) -> int:
        return len(self.spans)
