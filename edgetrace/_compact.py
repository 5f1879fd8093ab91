"""Compaction: a finished session rewritten small.

Live writers use zlib level 1 because the hub must keep up with its agents; once a session is
sealed nobody appends to it, so it can be recompressed with zstd (level 9: smaller than zlib 1,
and ≈ 10× faster to inflate than the xz it replaced, docs/decisions.md) and its records
regrouped into larger frames — a records frame is a MessagePack array, so frames are merged
by their array headers and a record nobody changes is copied as it is.

The records compaction does change are receives whose clock entries their send already holds:
in a dense grid most of a session's bytes (docs/format.md, "Clocks by reference"). Two passes:
the first reads only who each record is and what caused it, to learn which sends a later
receive can point back to; the second follows every stream's full clock in file order (the
`Rows` of edgetrace._clockref) and stores such a receive as `merged` = its send plus the
entries the merge does not explain — exact by construction, and only where it is smaller.
"""

from __future__ import annotations

import os
import stat
import tempfile
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from edgetrace._clockref import Codes, Rows, dense_fits
from edgetrace._codec import decode_spans, encode, encode_spans
from edgetrace._errors import CorruptSessionError, SessionNotFoundError, UsageError
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    FrameType,
    ScanResult,
    encode_file_header,
    encode_frame,
    read_file_header,
    scan_frames,
)
from edgetrace._records import CLOCK_REF_VERSION, FORMAT_VERSION, Span, parse_ref
from edgetrace._session import SESSION_MAGIC

__all__ = ["by_reference", "compact"]


#: Records per compacted frame. Larger frames amortise what a reader pays per frame (the
#: explorer scans a compacted 1M-span session ≈ 1.6× faster at 8,000 than at 2,000, bench/
#: bench_explore.py) and cost little: showing one trace decodes its frames, ≈ 7 ms each here
#: (16 ms decoded as full `Span`s; 2 and 5 ms at 2,000 records).
RECORDS_PER_FRAME = 8000
#: Bytes of records per compacted frame at most, whatever their count: readers refuse a frame
#: that inflates past MAX_INFLATED (64 MiB), and records with large clocks or attributes
#: would otherwise reach it.
FRAME_BYTES = 8 << 20


def compact(path: str | os.PathLike[str], *, records_per_frame: int = RECORDS_PER_FRAME,
            references: bool = True,
            progress: Callable[[int, int], None] | None = None,
            out: str | os.PathLike[str] | None = None) -> tuple[int, int]:
    """Rewrite a finished (sealed) session with zstd frames of up to `records_per_frame` records.

    Live writers use zlib level 1 because the hub must keep up with its agents; once a
    session is sealed nobody appends to it, so it can be recompressed: ≈ 5× smaller on the
    1,000-node fleet benchmark without references, ≈ 7× with them (docs/format.md). The new file replaces the old one
    atomically, so a crash leaves one or the other, never a mix. Readers that hold frame
    offsets of the old file (a live explorer) must reopen: compact a session before anyone
    follows it — `edgetrace record` compacts after the hub has stopped. `references` stores
    receives by reference to their sends where that is smaller (the file is then format 3,
    which builds before it do not read). `progress(done, total)` is told the bytes read so
    far (the file is read twice with references: once to plan them, once to write). `out`:
    write the compacted session there (atomically too) and leave `path` as it is. Returns
    (bytes before, bytes after).
    """
    path = Path(path)
    if not path.is_file():
        raise SessionNotFoundError(f"{path}: no such session", path=path)
    target = Path(out) if out is not None else path
    before = path.stat().st_size
    mode = stat.S_IMODE(path.stat().st_mode)
    # created exclusively under a fresh random name (never a fixed name someone could plant a
    # symlink at), in the target's folder so the rename is atomic
    fd, name = tempfile.mkstemp(dir=target.resolve().parent, prefix=f".{target.name}.", suffix=".compacting")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            total = before * (2 if references else 1)
            tell = progress or (lambda done, total: None)
            refs = _References.plan(path, lambda done: tell(done, total)) if references else None
            base = before if references else 0
            sealed = _rewrite(path, fh, records_per_frame, refs, lambda done: tell(base + done, total))
            tell(total, total)
            os.fchmod(fh.fileno(), mode)
        if not sealed:
            raise UsageError(f"{path}: only a sealed session can be compacted (it may still be written)")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    return before, target.stat().st_size


def _rewrite(path: Path, out: BinaryIO, records_per_frame: int, refs: _References | None,
             progress: Callable[[int], None]) -> bool:
    """Copy `path` to `out` frame by frame, records regrouped and zstd-compressed; True if sealed."""
    pending: list[bytes] = []
    count = 0
    size = 0  # bytes pending: a frame also ends at FRAME_BYTES, far inside what readers inflate
    sealed = False
    with open(path, "rb") as src:
        version = read_file_header(src.read(FILE_HEADER_SIZE), magic=SESSION_MAGIC, supported=CLOCK_REF_VERSION,
                                   path=path, what="session")
        if version == CLOCK_REF_VERSION and refs is None:
            raise UsageError(f"{path}: the session already stores clocks by reference; compact it with references")
        by_ref = refs is not None and (refs.worth or version == CLOCK_REF_VERSION)
        out.write(encode_file_header(SESSION_MAGIC, CLOCK_REF_VERSION if by_ref else FORMAT_VERSION))

        def flush() -> None:
            nonlocal count, size
            if pending:
                out.write(encode_frame(FrameType.RECORDS, _join_arrays(pending, count), compress="zstd", count=count))
                pending.clear()
                count = size = 0

        for item in scan_frames(src, FILE_HEADER_SIZE, path=path):
            if isinstance(item, ScanResult):
                break
            if item.type is FrameType.RECORDS:
                progress(item.offset)
                body = item.body()
                if by_ref and refs is not None:
                    body = refs.rewrite(body)
                n, items = _array_items(body, path)
                if size + len(items) > FRAME_BYTES:
                    flush()
                pending.append(items)
                count += n
                size += len(items)
                if count >= records_per_frame:
                    flush()
            elif item.type is FrameType.SEAL:
                flush()
                out.write(encode_frame(FrameType.SEAL, b""))
                sealed = True
            elif item.type is FrameType.BLOB:
                out.write(encode_frame(FrameType.BLOB, item.body(), compress="zstd"))
            else:  # manifest and marker frames keep their place among the records
                flush()
                out.write(encode_frame(item.type, item.body()))
        flush()
        if by_ref and refs is not None and not refs.used and version < CLOCK_REF_VERSION:
            out.seek(0)  # no receive was worth a reference: builds that read only version 2 can read it
            out.write(encode_file_header(SESSION_MAGIC, FORMAT_VERSION))
            out.seek(0, os.SEEK_END)
        out.flush()
        os.fsync(out.fileno())
    return sealed


def _array_items(body: bytes, path: Path) -> tuple[int, bytes]:
    """(count, the encoded items) of a MessagePack array, without decoding any item."""
    first = body[0] if body else -1
    if 0x90 <= first <= 0x9F:
        return first & 0x0F, body[1:]
    if first == 0xDC and len(body) >= 3:
        return int.from_bytes(body[1:3], "big"), body[3:]
    if first == 0xDD and len(body) >= 5:
        return int.from_bytes(body[1:5], "big"), body[5:]
    raise CorruptSessionError(f"{path}: a records frame is not a MessagePack array", path=path,
                              expected="a MessagePack array of span records")


def _join_arrays(items: list[bytes], count: int) -> bytes:
    """A MessagePack array header for `count` items, then the items as they are."""
    if count < 16:
        head = bytes([0x90 | count])
    elif count < 1 << 16:
        head = b"\xdc" + count.to_bytes(2, "big")
    else:
        head = b"\xdd" + count.to_bytes(4, "big")
    return head + b"".join(items)


class _Head(msgspec.Struct, array_like=True, gc=False):
    """Who a record is and what caused it: the first pass reads nothing else."""

    node: str
    seq: int
    kind: str = ""
    name: str = ""
    trace: str = ""
    parent: str = ""
    cause: str = ""
    start: int = 0
    end: int = 0
    vc: msgspec.Raw = msgspec.Raw(b"\x80")
    attrs: msgspec.Raw = msgspec.Raw(b"\x80")
    status: str = ""
    error: str = ""
    blobs: msgspec.Raw = msgspec.Raw(b"\x80")
    merged: str = ""


_heads = msgspec.msgpack.Decoder(list[_Head])


class _References:
    """Which receives compaction may store by reference, and the clocks to write them with.

    A receive can point back to its send when both streams are in seq order in the file (so
    following the file is following each stream) and the send comes first. `rewrite` is then
    called on every records frame in file order.
    """

    def __init__(self, targets: dict[tuple[str, int], int], candidates: set[tuple[str, int]], nodes: int) -> None:
        self.targets = targets  # send → how many later records still need its clock
        self.candidates = candidates
        self.worth = bool(candidates)
        self.used = False  # a record was written by reference
        self.rows = Rows(Codes(), dense=dense_fits(nodes, nodes), trusted=True)  # decode_spans validated them
        self.saved: dict[tuple[str, int], Any] = {}

    @classmethod
    def plan(cls, path: Path, progress: Callable[[int], None]) -> _References:
        order: dict[str, list[int]] = {}  # node → seqs in file order
        at: dict[str, list[int]] = {}  # node → the file position of each of those records
        causes: list[tuple[int, str, int, str]] = []  # (position, node, seq, cause or merged target)
        merged: list[tuple[str, int, str]] = []
        unordered: set[str] = set()
        names: set[str] = set()
        position = 0
        for heads in _head_frames(path, progress):
            for h in heads:
                seqs = order.setdefault(h.node, [])
                if seqs and h.seq <= seqs[-1]:
                    unordered.add(h.node)
                seqs.append(h.seq)
                at.setdefault(h.node, []).append(position)
                if h.merged:
                    merged.append((h.node, h.seq, h.merged))
                elif h.cause and len(h.vc) > 1:  # an empty map is one byte: nothing to store by reference
                    causes.append((position, h.node, h.seq, h.cause))
                position += 1
            names.update(h.node for h in heads)

        def place(ref: str) -> tuple[str, int, int] | None:
            try:
                node, seq = parse_ref(ref)
            except ValueError:
                return None
            seqs = order.get(node)
            if seqs is None or node in unordered:
                return None
            i = bisect_left(seqs, seq)
            return (node, seq, at[node][i]) if i < len(seqs) and seqs[i] == seq else None

        targets: dict[tuple[str, int], int] = {}
        for node, seq, ref in merged:  # an input compacted before: its references must resolve in file order
            found = place(ref)
            mine = place(f"{node}:{seq}")
            if node in unordered or found is None or mine is None or found[2] >= mine[2]:
                raise UsageError(f"{path}: record {node}:{seq} merges the clock of {ref}, which this file does not "
                                 "hold before it; compaction cannot follow its references")
            targets[found[:2]] = targets.get(found[:2], 0) + 1
        candidates: set[tuple[str, int]] = set()
        for position, node, seq, ref in causes:
            found = place(ref)
            if found is None or found[0] == node or node in unordered or found[2] >= position:
                continue
            candidates.add((node, seq))
            targets[found[:2]] = targets.get(found[:2], 0) + 1
        return cls(targets, candidates, len(names))

    def rewrite(self, body: bytes) -> bytes:
        """A records frame's body with its receives stored by reference where that is smaller."""
        spans = decode_spans(body)
        changed = False
        rows = self.rows
        for i, span in enumerate(spans):
            key = (span.node, span.seq)
            if span.merged:
                rows.merge(span, self._take(span.merged))
            elif key in self.candidates:
                before = rows.copy(span.node)
                rows.apply(span)
                target = span.cause
                residual = rows.residual(span, before, self._take(target), rows.current(span.node))
                if len(encode(residual)) + len(target) + 1 < len(encode(span.vc)):
                    spans[i] = msgspec.structs.replace(span, vc=residual, merged=target)
                    changed = self.used = True
            else:
                rows.apply(span)
            if key in self.targets:
                self.saved[key] = rows.snapshot(span.node, span.seq)
        return encode_spans(spans) if changed else body

    def _take(self, ref: str) -> Any:
        node, seq = parse_ref(ref)
        key = (node, seq)
        clock = self.saved[key]
        left = self.targets[key] - 1
        if left:
            self.targets[key] = left
        else:
            del self.targets[key], self.saved[key]
        return clock


def _head_frames(path: Path, progress: Callable[[int], None]) -> Iterator[list[_Head]]:
    with open(path, "rb") as src:
        read_file_header(src.read(FILE_HEADER_SIZE), magic=SESSION_MAGIC, supported=CLOCK_REF_VERSION,
                         path=path, what="session")
        for item in scan_frames(src, FILE_HEADER_SIZE, path=path):
            if isinstance(item, ScanResult):
                break
            if item.type is FrameType.RECORDS:
                progress(item.offset)
                try:
                    yield _heads.decode(item.body())
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise CorruptSessionError(f"{path}: a records frame does not decode: {exc}", path=path,
                                              expected="a MessagePack array of span records") from None


def by_reference(spans: Sequence[Span]) -> list[Span]:
    """`spans` with every record that another node's record caused (and that carries clock
    entries) stored by reference to it — what compaction writes where that is smaller, for
    records in memory (tests and tools that need the form without a file)."""
    from edgetrace._index import CausalIndex

    index = CausalIndex(spans)
    refs = {s.ref for s in spans}
    previous: dict[str, dict[str, int]] = {}
    rewritten: dict[str, Span] = {}
    for span in sorted(spans, key=lambda s: (s.node, s.seq)):
        full = index.clock(span).as_dict()
        before = previous.get(span.node, {})
        previous[span.node] = full
        if not span.vc or span.cause not in refs or span.cause.rpartition(":")[0] == span.node:
            continue
        want = dict(before)
        for k, v in index.clock(span.cause).items():
            want[k] = max(want.get(k, 0), v)
        residual = {k: full.get(k, 0) for k in sorted(set(full) | set(want))
                    if k != span.node and full.get(k, 0) != want.get(k, 0)}
        rewritten[span.ref] = msgspec.structs.replace(span, vc=residual, merged=span.cause)
    return [rewritten.get(s.ref, s) for s in spans]
