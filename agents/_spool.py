"""The spool: an agent's local, crash-safe store of spans waiting to reach the hub.

The recorder appends here first, so a span survives the link being down and the agent
being killed (up to the fsync policy). The shipper reads forward from its cursor and sends;
the hub's acknowledgements are written back as ACK frames, so after a restart both know
what is still owed. Spans live on disk, not in memory: an agent offline for a day keeps a
bounded memory footprint (a sparse index of one offset per 256 records).
"""

from __future__ import annotations

import enum
import os
import struct
from bisect import bisect_right
from pathlib import Path
from typing import Any

from edgetrace._codec import decode_spans, encode_spans
from edgetrace._errors import UsageError
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    Frame,
    FrameType,
    ScanResult,
    encode_file_header,
    encode_frame,
    read_file_header,
    scan_frames,
)
from edgetrace._records import FORMAT_VERSION, Span, blob_id
from edgetrace._vclock import apply_delta
from edgetrace.agents._sink import SpanSink

__all__ = ["SPOOL_MAGIC", "Spool", "SpoolSync"]

SPOOL_MAGIC = b"ETSPOOL\n"
_ACK = struct.Struct("<Q")
_INDEX_EVERY = 256


class SpoolSync(enum.StrEnum):
    """How hard the spool pushes each span to disk before the app goes on."""

    NEVER = "never"  # to the OS on every flush(): survives a killed process, not a power cut
    ALWAYS = "always"  # fsync every span: survives a power cut, ≈ 6,400 spans/s on this disk

    @classmethod
    def parse(cls, text: str) -> SpoolSync:
        try:
            return cls(text)
        except ValueError:
            raise UsageError(f"unknown spool sync {text!r}; expected one of: "
                             f"{', '.join(p.value for p in cls)}") from None


class Spool(SpanSink):
    """Append-only spool file for one node: spans, blobs and ack cursors."""

    def __init__(self, path: str | os.PathLike[str], *, sync: SpoolSync | str = SpoolSync.NEVER) -> None:
        self.path = Path(path)
        self.sync = SpoolSync(sync)
        self.acked = 0
        self.last_seq = 0
        self.clock: dict[str, int] = {}
        # (seq, offset where its frames begin: right after the previous span, so the blobs
        # written just before it are read with it), one entry per _INDEX_EVERY spans
        self._index: list[tuple[int, int]] = []
        self._span_start = FILE_HEADER_SIZE
        self._blobs: set[str] = set()
        self.recovered = 0
        if self.path.exists() and self.path.stat().st_size > 0:
            self._recover()
            self._fh = open(self.path, "ab")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "wb")
            self._fh.write(encode_file_header(SPOOL_MAGIC, FORMAT_VERSION))
            self._fh.flush()
        self.end = self._fh.tell()

    def _recover(self) -> None:
        """Rebuild cursor, clock and index from the file; cut a torn tail."""
        with open(self.path, "rb") as fh:
            read_file_header(fh.read(FILE_HEADER_SIZE), magic=SPOOL_MAGIC, supported=FORMAT_VERSION,
                             path=self.path, what="spool")
            end = FILE_HEADER_SIZE
            for item in scan_frames(fh, FILE_HEADER_SIZE, path=self.path):
                if isinstance(item, ScanResult):
                    end = item.end
                    break
                self._absorb(item)
        if end < self.path.stat().st_size:
            os.truncate(self.path, end)

    def _absorb(self, frame: Frame) -> None:
        if frame.type is FrameType.RECORDS:
            for span in decode_spans(frame.body()):
                self._note(span, self._span_start)
                self.recovered += 1
            self._span_start = frame.end
        elif frame.type is FrameType.ACK:
            self.acked = max(self.acked, _ACK.unpack(frame.payload)[0])
        elif frame.type is FrameType.BLOB:
            self._blobs.add(frame.head(32).hex())

    def _note(self, span: Span, offset: int) -> None:
        if span.seq % _INDEX_EVERY == 1 or not self._index:
            self._index.append((span.seq, offset))
        self.last_seq = span.seq
        self.clock = apply_delta(self.clock, span.vc, own=span.node, seq=span.seq).as_dict()

    # --- SpanSink -----------------------------------------------------------------------------

    def emit(self, span: Span) -> None:
        if span.seq != self.last_seq + 1:
            raise UsageError(f"spool {self.path}: span {span.ref} does not follow seq {self.last_seq}")
        offset = self._span_start
        data = encode_frame(FrameType.RECORDS, encode_spans([span]))
        self._fh.write(data)
        self.end += len(data)
        self._span_start = self.end
        if span.seq % _INDEX_EVERY == 1 or not self._index:
            self._index.append((span.seq, offset))
        self.last_seq = span.seq
        if self.sync is SpoolSync.ALWAYS:
            self.fsync()

    def put_blob(self, data: bytes) -> str:
        sha = blob_id(data)
        if sha not in self._blobs:
            frame = encode_frame(FrameType.BLOB, bytes.fromhex(sha) + data, compress=len(data) > 256)
            self._fh.write(frame)
            self.end += len(frame)
            self._blobs.add(sha)
        return sha

    # --- the shipper's side ---------------------------------------------------------------------

    def flush(self) -> None:
        self._fh.flush()

    def fsync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def ack(self, seq: int) -> None:
        """Persist the hub's acknowledgement so a restarted agent does not resend."""
        if seq > self.acked:
            self.acked = seq
            frame = encode_frame(FrameType.ACK, _ACK.pack(seq))
            self._fh.write(frame)
            self.end += len(frame)

    def pending(self, after: int, limit: int = 500, max_bytes: int = 4 << 20) -> tuple[list[Span], list[tuple[str, bytes]]]:
        """Spans with seq > after (at most `limit`), and the blobs they reference."""
        self._fh.flush()
        if after >= self.last_seq:
            return [], []
        i = bisect_right([s for s, _ in self._index], after + 1) - 1
        start = self._index[max(i, 0)][1] if self._index else FILE_HEADER_SIZE
        spans: list[Span] = []
        blobs: dict[str, bytes] = {}
        size = 0
        with open(self.path, "rb") as fh:
            for item in scan_frames(fh, start, path=self.path, size=self.end):
                if isinstance(item, ScanResult):
                    break
                if item.type is FrameType.BLOB:
                    body = item.body()
                    blobs[body[:32].hex()] = body[32:]
                elif item.type is FrameType.RECORDS:
                    for span in decode_spans(item.body()):
                        if span.seq > after:
                            spans.append(span)
                            size += len(item.payload)
                if len(spans) >= limit or size >= max_bytes:
                    break
        wanted = {sha for s in spans for sha in s.blobs.values()}
        return spans, [(sha, blobs[sha]) for sha in sorted(wanted) if sha in blobs]

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()

    def stats(self) -> dict[str, Any]:
        return {"path": str(self.path), "last_seq": self.last_seq, "acked": self.acked, "bytes": self.end}
