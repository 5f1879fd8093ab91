"""The spool: an agent's local, crash-safe store of spans waiting to reach the hub.

The recorder appends here first, so a span survives the link being down and the agent
being killed (up to the fsync policy). The shipper reads forward from its cursor and sends;
the hub's acknowledgements are written back as ACK frames, so after a restart both know
what is still owed. Spans live on disk, not in memory: an agent offline for a day keeps a
bounded memory footprint (a sparse index of one offset per 256 records).

Every opening of a spool is a new **incarnation** (a random id and the seq it starts at, an
`Incarnation` marker forced to disk before any span follows it): the hub keys what it holds
by (incarnation, seq), so a spool that lost its tail (`--sync never` and a power cut) or was
lost altogether cannot have its new spans mistaken for ones the hub already holds. When the
hub says the node's stream is already past this spool's numbers, the agent *rebases*: a new
incarnation that starts after what the hub holds, so its spans and the clocks it sends need
no translation (edgetrace._streams).

Damage is contained: a frame whose CRC does not match, or whose record does not validate,
costs that frame. The spool skips it, ships what is intact around it, tells the hub which
seqs are lost (`Pending.missing`) and logs the exact count; it never blocks what follows.
"""

from __future__ import annotations

import enum
import logging
import os
import secrets
import struct
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetrace._codec import (
    decode_marker,
    decode_span_ids,
    decode_spans,
    encode_marker,
    encode_spans,
)
from edgetrace._errors import UsageError
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    Damage,
    Frame,
    FrameType,
    ScanResult,
    encode_file_header,
    encode_frame,
    read_file_header,
    scan_frames,
)
from edgetrace._records import FORMAT_VERSION, Incarnation, Lost, Span, blob_id
from edgetrace._text import printable
from edgetrace._vclock import apply_delta
from edgetrace.agents._sink import SpanSink

__all__ = ["SPOOL_MAGIC", "Pending", "Spool", "SpoolIncarnation", "SpoolSync"]

log = logging.getLogger("edgetrace.agent")

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


@dataclass
class SpoolIncarnation:
    """One incarnation of this spool: its id, first seq, whether a process start began it, last seq."""

    id: str
    start: int
    restart: bool = True
    last: int = 0  # the last seq written in it (0: none yet)


@dataclass
class Pending:
    """What the shipper sends next: spans of one incarnation after the cursor, their blobs, and
    the seq ranges in between that damage cost (first, last, why)."""

    spans: list[Span]
    blobs: list[tuple[str, bytes]]
    incarnation: SpoolIncarnation
    missing: list[tuple[int, int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.spans or self.missing)


class Spool(SpanSink):
    """Append-only spool file for one node: spans, blobs, ack cursors and incarnation markers."""

    def __init__(self, path: str | os.PathLike[str], *, sync: SpoolSync | str = SpoolSync.NEVER) -> None:
        self.path = Path(path)
        self.sync = SpoolSync(sync)
        self.acked = 0
        self.last_seq = 0  # the last seq given out (a span's, or where a rebase jumped to)
        self.last_span = 0  # the last seq of a span actually held
        self.clock: dict[str, int] = {}
        self.incarnations: list[SpoolIncarnation] = []
        self.recovered = 0
        self.rejected = 0  # spans the hub refused (did not validate): quarantined, counted
        self.lost: dict[int, tuple[int, str]] = {}  # first seq → (last seq, why) of ranges damage cost
        self.damage: list[Damage] = []
        # (seq, offset where its frames begin: right after the previous span, so the blobs
        # written just before it are read with it), one entry per _INDEX_EVERY spans
        self._index: list[tuple[int, int]] = []
        self._span_start = FILE_HEADER_SIZE
        self._blobs: set[str] = set()
        self._reported: set[int] = set()
        if self.path.exists() and self.path.stat().st_size > 0:
            version = self._recover()
            self._fh = open(self.path, "r+b" if version < FORMAT_VERSION else "ab")
            if version < FORMAT_VERSION:  # a format-1 spool: its spans are the incarnation "" from 1
                self._fh.write(encode_file_header(SPOOL_MAGIC, FORMAT_VERSION))
                self._fh.seek(0, os.SEEK_END)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "wb")
            self._fh.write(encode_file_header(SPOOL_MAGIC, FORMAT_VERSION))
        self.end = self._fh.tell()
        self._next = self.last_seq + 1
        self._begin(self._next, restart=True)

    # --- recovery -------------------------------------------------------------------------------

    def _recover(self) -> int:
        """Rebuild cursor, clock, index and incarnations from the file; cut a torn tail; skip damage."""
        with open(self.path, "rb") as fh:
            version = read_file_header(fh.read(FILE_HEADER_SIZE), magic=SPOOL_MAGIC, supported=FORMAT_VERSION,
                                       path=self.path, what="spool")
            if version < FORMAT_VERSION:
                self.incarnations.append(SpoolIncarnation("", 1))
            end = FILE_HEADER_SIZE
            damaged_from: int | None = None
            for item in scan_frames(fh, FILE_HEADER_SIZE, path=self.path, salvage=True):
                if isinstance(item, ScanResult):
                    end = item.end
                    break
                if isinstance(item, Damage):
                    self.damage.append(item)
                    damaged_from = self.last_seq + 1 if damaged_from is None else damaged_from
                    continue
                first = self._absorb(item)
                if first is not None and damaged_from is not None:
                    if first > damaged_from:
                        self._lose(damaged_from, first - 1, "damaged in the spool (CRC mismatch)")
                    damaged_from = None
        if self.damage and self.damage[-1].end >= end:  # damage up to the end: nothing after it to keep
            tail = self.damage.pop()
            end = tail.offset
            log.error("spool %s: cut %d damaged bytes at its end (offset %d): the spans in them are lost; "
                      "a new incarnation starts after seq %d", self.path, tail.size, tail.offset, self.last_seq)
        if end < self.path.stat().st_size:
            os.truncate(self.path, end)
        for d in self.damage:
            log.error("spool %s: skipped %d damaged bytes at offset %d (%s)", self.path, d.size, d.offset, d.reason)
        return version

    def _absorb(self, frame: Frame) -> int | None:
        """Take one intact frame into the spool's state; the seq of the span it held, if any."""
        if frame.type is FrameType.RECORDS:
            spans = self._decode(frame)
            for span in spans:
                self._note(span, self._span_start)
                self.recovered += 1
            self._span_start = frame.end
            return spans[0].seq if spans else None
        if frame.type is FrameType.ACK:
            self.acked = max(self.acked, _ACK.unpack(frame.payload)[0])
        elif frame.type is FrameType.BLOB:
            self._blobs.add(frame.head(32).hex())
        elif frame.type is FrameType.MARKER:
            try:
                marker = decode_marker(frame.body())
            except Exception:
                return None
            if isinstance(marker, Incarnation):
                self.incarnations.append(SpoolIncarnation(marker.id, marker.start, marker.restart))
                self.last_seq = max(self.last_seq, marker.start - 1)  # a rebase jumps the numbering
            elif isinstance(marker, Lost) and marker.by == "hub":
                self.rejected += marker.count
        return None

    def _decode(self, frame: Frame) -> list[Span]:
        """The frame's spans; one that does not validate is quarantined (its seq is known)."""
        try:
            return decode_spans(frame.body())
        except Exception as exc:  # msgspec's errors, an inflate limit: this frame, not the spool
            found: list[Span] = []
            try:
                items = decode_span_ids(frame.body())
            except Exception:
                items = []
            for who, span, why in items:
                if span is not None:
                    found.append(span)
                elif who is not None and 1 <= who.seq < 2**63:
                    self._lose(who.seq, who.seq, f"does not validate: {why}")
                    self.last_seq = self.last_span = max(self.last_seq, who.seq)
            if not items:
                self.damage.append(Damage(frame.offset, frame.end, f"records do not decode: {exc}"))
            return found

    def _note(self, span: Span, offset: int) -> None:
        if span.seq % _INDEX_EVERY == 1 or not self._index:
            self._index.append((span.seq, offset))
        self.last_seq = self.last_span = span.seq
        if self.incarnations:
            self.incarnations[-1].last = span.seq
        self.clock = apply_delta(self.clock, span.vc, own=span.node, seq=span.seq).as_dict()

    def _lose(self, first: int, last: int, why: str) -> None:
        if first not in self.lost:
            self.lost[first] = (last, why)
            log.error("spool %s: %d span(s), seq %d–%d, are lost: %s; shipping the rest", self.path,
                      last - first + 1, first, last, printable(why, limit=200))

    # --- incarnations ------------------------------------------------------------------------------

    @property
    def incarnation(self) -> SpoolIncarnation:
        """The incarnation spans are being written to now."""
        return self.incarnations[-1]

    def _begin(self, start: int, *, restart: bool) -> SpoolIncarnation:
        if self.incarnations and not self.incarnations[-1].last and self.incarnations[-1].id:
            restart = restart or self.incarnations[-1].restart  # an empty one is replaced, not continued
            self.incarnations.pop()
        inc = SpoolIncarnation(secrets.token_hex(8), start, restart)
        frame = encode_frame(FrameType.MARKER, encode_marker(
            Incarnation(node="", id=inc.id, start=start, base=start, restart=restart)))
        self._fh.write(frame)
        self.end += len(frame)
        self.fsync()  # before any span of it: a span must never outlive the marker that numbers it
        self.incarnations.append(inc)
        self._next = start
        return inc

    def rebase(self, after: int) -> SpoolIncarnation:
        """Continue numbering after `after` (≥ the last seq) in a new incarnation: the hub holds
        the node's stream up to there. The recorder must resume at `after` too."""
        if after < self.last_seq:
            raise UsageError(f"spool {self.path}: cannot rebase to {after}, below its last seq {self.last_seq}")
        inc = self._begin(after + 1, restart=False)
        self.last_seq = after
        return inc

    def shipping_incarnations(self) -> list[tuple[str, int, int]]:
        """(id, first, last) of every incarnation holding spans, and the current one (last 0: open)."""
        found = [(i.id, i.start, i.last) for i in self.incarnations[:-1] if i.last]
        return [*found, (self.incarnation.id, self.incarnation.start, 0)]

    # --- SpanSink -----------------------------------------------------------------------------

    def emit(self, span: Span) -> None:
        if span.seq != self._next:
            raise UsageError(f"spool {self.path}: span {span.ref} does not follow seq {self._next - 1}")
        offset = self._span_start
        data = encode_frame(FrameType.RECORDS, encode_spans([span]))
        self._fh.write(data)
        self.end += len(data)
        self._span_start = self.end
        if span.seq % _INDEX_EVERY == 1 or not self._index:
            self._index.append((span.seq, offset))
        self.last_seq = self.last_span = span.seq
        self.incarnation.last = span.seq
        self._next = span.seq + 1
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
        seq = min(seq, self.last_seq)  # never past what this spool holds: new spans must still ship
        if seq > self.acked:
            self.acked = seq
            frame = encode_frame(FrameType.ACK, _ACK.pack(seq))
            self._fh.write(frame)
            self.end += len(frame)

    def reject(self, seq: int, reason: str) -> None:
        """The hub refused span `seq` (it did not validate): count it, keep why in the spool."""
        self.rejected += 1
        frame = encode_frame(FrameType.MARKER, encode_marker(
            Lost(node="", first=seq, last=seq, reason=reason[:500], by="hub")))
        self._fh.write(frame)
        self.end += len(frame)

    def _shipping(self, after: int) -> tuple[SpoolIncarnation, int | None]:
        """The first incarnation holding anything after `after`, and the first seq of the next one."""
        for i, inc in enumerate(self.incarnations):
            nxt = self.incarnations[i + 1].start if i + 1 < len(self.incarnations) else None
            if nxt is None or inc.last > after or any(after < lo < nxt and lo >= inc.start for lo in self.lost):
                return inc, nxt
        return self.incarnation, None

    def pending(self, after: int, limit: int = 500, max_bytes: int = 4 << 20) -> Pending:
        """Spans with seq > after (at most `limit`, all of one incarnation), their blobs, and the
        seq ranges damage cost among them."""
        self._fh.flush()
        inc, boundary = self._shipping(after)
        if after >= self.last_seq and not any(after < lo for lo in self.lost):
            return Pending([], [], self.incarnation)
        after = max(after, inc.start - 1)  # an earlier incarnation is done: skip a rebase's jump
        i = bisect_right([s for s, _ in self._index], after + 1) - 1
        start = self._index[max(i, 0)][1] if self._index else FILE_HEADER_SIZE
        spans: list[Span] = []
        blobs: dict[str, bytes] = {}
        missing: list[tuple[int, int, str]] = []
        size = 0
        expected = after + 1
        damaged_at: Damage | None = None
        full = False
        with open(self.path, "rb") as fh:
            for item in scan_frames(fh, start, path=self.path, size=self.end, salvage=True):
                if isinstance(item, ScanResult):
                    break
                if isinstance(item, Damage):
                    damaged_at = damaged_at or item
                    continue
                if item.type is FrameType.BLOB:
                    body = item.body()
                    blobs[body[:32].hex()] = body[32:]
                    continue
                if item.type is not FrameType.RECORDS:
                    continue
                for span in self._decode(item):
                    if span.seq <= after:
                        damaged_at = None  # damage before the cursor is not ours to report
                        continue
                    if boundary is not None and span.seq >= boundary:
                        full = True
                        break
                    if span.seq > expected and (damaged_at is not None or self._lost_between(expected, span.seq)):
                        missing += self._missing(expected, span.seq - 1, damaged_at)
                    damaged_at = None
                    spans.append(span)
                    expected = span.seq + 1
                    size += len(item.payload)
                if full or len(spans) >= limit or size >= max_bytes:
                    full = True
                    break
        if not full:  # read to the end of what is written: is anything after the last span lost?
            last = self.last_seq if boundary is None else min(self.last_seq, boundary - 1)
            if expected <= last and (damaged_at is not None or self._lost_between(expected, last + 1)):
                missing += self._missing(expected, last, damaged_at)
        wanted = {sha for s in spans for sha in s.blobs.values()}
        lost_blobs = sorted(sha for sha in wanted if sha not in blobs)
        if lost_blobs:
            log.error("spool %s: %d blob(s) referenced by spans %d–%d are damaged; the spans ship without them",
                      self.path, len(lost_blobs), spans[0].seq, spans[-1].seq)
        return Pending(spans, [(sha, blobs[sha]) for sha in sorted(wanted) if sha in blobs], inc, missing)

    def _lost_between(self, first: int, end: int) -> bool:
        return any(first <= lo < end for lo in self.lost)

    def _missing(self, first: int, last: int, damage: Damage | None) -> list[tuple[int, int, str]]:
        """Seqs first..last are not in the spool: the ranges known lost, else what damage cost."""
        known = [(lo, min(hi, last), why) for lo, (hi, why) in sorted(self.lost.items()) if first <= lo <= last]
        if known and damage is None:
            return known
        why = f"damaged in the spool at offset {damage.offset} ({damage.reason})" if damage else "damaged in the spool"
        if first not in self._reported:
            self._reported.add(first)
            self._lose(first, last, why)
        return [(first, last, why[:500])]

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()

    @property
    def unacked(self) -> int:
        """Spans held here that the hub has not confirmed yet."""
        return max(0, self.last_span - self.acked)

    def stats(self) -> dict[str, Any]:
        return {"path": str(self.path), "last_seq": self.last_seq, "acked": self.acked, "bytes": self.end,
                "incarnation": self.incarnation.id, "lost": sum(hi - lo + 1 for lo, (hi, _) in self.lost.items()),
                "rejected": self.rejected}
