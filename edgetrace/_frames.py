"""CRC-checked frames: the unit of every edgetrace file (sessions and agent spools).

A file is a 16-byte header (magic, format version, header CRC) followed by frames. Each
frame has its own 16-byte header (payload length, type, flags, payload CRC, header CRC) so
that a flipped bit in a length is caught before the length is trusted. A frame cut short
by a crash is a *torn tail*: readers stop before it and the next writer cuts it off. Any
other mismatch is corruption and is reported with the file, the offset and what was
expected; it is never decoded silently. The layout is written down in docs/format.md.
"""

from __future__ import annotations

import enum
import lzma
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import BinaryIO, Literal, overload

import zstandard

from edgetrace._errors import CorruptSessionError, UnsupportedFormatError

_deflate: ModuleType
_DeflateError: type[Exception]
try:  # ISA-L's inflate: ≈ 2× zlib's on the hub's frames, the same bytes (docs/decisions.md)
    from isal import isal_zlib as _deflate

    _DeflateError = _deflate.error
except ImportError:  # a platform without its wheel: the standard library's zlib
    _deflate, _DeflateError = zlib, zlib.error

__all__ = [
    "FILE_HEADER_SIZE",
    "FLAG_LZMA",
    "FLAG_ZLIB",
    "FLAG_ZSTD",
    "FRAME_HEADER_SIZE",
    "MAX_FRAME_PAYLOAD",
    "MAX_INFLATED",
    "Damage",
    "Frame",
    "FrameType",
    "ScanResult",
    "encode_file_header",
    "encode_frame",
    "read_file_header",
    "scan_frames",
    "upgrade_file_header",
]

_FILE_HEADER = struct.Struct("<8sHHI")  # magic, version, reserved, crc32 of the first 12 bytes
_FRAME_HEADER = struct.Struct("<IBBHI")  # payload length, type, flags, reserved, payload crc32
_HEADER_CRC = struct.Struct("<I")
FILE_HEADER_SIZE = _FILE_HEADER.size
FRAME_HEADER_SIZE = _FRAME_HEADER.size + _HEADER_CRC.size
MAX_FRAME_PAYLOAD = 256 * 1024 * 1024
#: The most a compressed frame may inflate to (records or one blob): readers never spend more.
MAX_INFLATED = 64 * 1024 * 1024
_STEP = 1 << 20
FLAG_ZLIB = 0x01  # zlib level 1: what live writers use (the hub stores ≈ 300k records/s)
FLAG_LZMA = 0x02  # xz preset 0: what finished sessions were compacted to before zstd (still read)
FLAG_ZSTD = 0x04  # zstd level 9: what finished sessions are compacted to (docs/decisions.md)
_KNOWN_FLAGS = FLAG_ZLIB | FLAG_LZMA | FLAG_ZSTD  # every known flag names a codec
ZSTD_LEVEL = 9
_ZSTD_WINDOW = 1 << 23
_XZ = {"format": lzma.FORMAT_XZ, "check": lzma.CHECK_NONE, "preset": 0}  # the frame CRC already checks


class FrameType(enum.IntEnum):
    MANIFEST = 1
    RECORDS = 2
    BLOB = 3
    SEAL = 4
    ACK = 5
    MARKER = 6


@dataclass(frozen=True, slots=True)
class Frame:
    offset: int
    type: FrameType
    flags: int
    payload: bytes
    path: Path | str = ""  # the file it came from, for messages

    @property
    def end(self) -> int:
        return self.offset + FRAME_HEADER_SIZE + len(self.payload)

    def body(self, limit: int = MAX_INFLATED) -> bytes:
        """The payload with frame-level compression undone; never more than `limit` bytes.

        A compressed payload that would inflate past `limit` is refused (CorruptSessionError)
        before the memory is spent: a 156 KB frame of xz can hold a gigabyte of zeros.
        """
        if self.flags & ~_KNOWN_FLAGS:
            raise CorruptSessionError(
                f"{self.path}: frame at offset {self.offset} has flags {self.flags:#04x} that this build does "
                "not know (written by a newer edgetrace? upgrade to read it)",
                path=self.path or None, offset=self.offset, expected=f"flags within {_KNOWN_FLAGS:#04x}",
            )
        if not self._codec:
            return self.payload
        data, complete = self._inflate(limit)
        if not complete:
            raise CorruptSessionError(
                f"{self.path}: frame at offset {self.offset} inflates past the {limit}-byte limit, or is "
                f"cut short ({len(self.payload)} bytes stored)",
                path=self.path or None, offset=self.offset, expected=f"a compressed payload of at most {limit} bytes",
            )
        return data

    def head(self, n: int) -> bytes:
        """The first `n` bytes of the body, inflating no more than that (a blob's hash)."""
        if not self._codec or self.flags & ~_KNOWN_FLAGS:
            return self.payload[:n]
        if self._codec == FLAG_ZSTD:
            try:  # a stream read stops at n bytes, whatever the frame claims
                with _zstd().stream_reader(self.payload, read_across_frames=False) as reader:
                    return reader.read(n)
            except zstandard.ZstdError as exc:
                raise self._undecompressable(exc) from None
        return self._inflate(n)[0][:n]

    @property
    def _codec(self) -> int:
        """The flag of the codec the payload is read with, 0 for none. A frame naming two is
        read with the first of xz, zstd, zlib (no writer sets two)."""
        flags = self.flags & _KNOWN_FLAGS
        return FLAG_LZMA if flags & FLAG_LZMA else FLAG_ZSTD if flags & FLAG_ZSTD else flags

    def _inflate(self, limit: int) -> tuple[bytes, bool]:
        """Up to `limit` bytes of the inflated payload, and whether that is all of it."""
        parts: list[bytes] = []  # a step at a time: a refused bomb costs `limit`, not a multiple of it
        size = 0
        codec = self._codec
        try:
            if codec == FLAG_LZMA:
                xz = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
                data = self.payload
                while not xz.eof and size < limit and (data or not xz.needs_input):
                    parts.append(xz.decompress(data, max_length=min(limit - size, _STEP)))
                    size += len(parts[-1])
                    data = b""
                complete = xz.eof and not xz.unused_data
            elif codec == FLAG_ZSTD:
                return self._unzstd(limit)
            else:
                inflater = _deflate.decompressobj()
                data = self.payload
                while data and size < limit:
                    parts.append(inflater.decompress(data, min(limit - size, _STEP)))
                    size += len(parts[-1])
                    data = inflater.unconsumed_tail
                complete = inflater.eof and not inflater.unconsumed_tail and not inflater.unused_data
            if not complete and size > _STEP:
                return b"", False  # refused: never join (copy) what is being thrown away
            return (parts[0] if len(parts) == 1 else b"".join(parts)), complete
        except (lzma.LZMAError, zlib.error, _DeflateError, zstandard.ZstdError) as exc:
            raise self._undecompressable(exc) from None

    def _unzstd(self, limit: int) -> tuple[bytes, bool]:
        """A zstd payload in one call, which releases the GIL. Bounded before any memory is
        spent: the frame header must state the size (every writer here states it) and it must
        be within `limit`; the one-shot call then writes into exactly that many bytes, so a
        frame that inflates to more than it claims fails instead of growing."""
        size = zstandard.frame_content_size(self.payload)
        if size < 0:
            raise CorruptSessionError(
                f"{self.path}: frame at offset {self.offset} holds a zstd payload that does not state its size",
                path=self.path or None, offset=self.offset, expected="a zstd frame that states its content size",
            )
        if size > limit:
            return b"", False
        return _zstd().decompress(self.payload, allow_extra_data=False), True

    def _undecompressable(self, exc: BaseException) -> CorruptSessionError:
        return CorruptSessionError(
            f"{self.path}: frame at offset {self.offset} does not decompress: {exc}",
            path=self.path or None, offset=self.offset, expected="a compressed payload",
        )


_local = threading.local()


def _zstd() -> zstandard.ZstdDecompressor:
    """This thread's zstd decompressor: one may not be shared between threads (the inflate
    pool decompresses frames on two), and making one per frame costs an allocation each."""
    d: zstandard.ZstdDecompressor | None = getattr(_local, "zstd", None)
    if d is None:  # a stream read (`head`) never allocates more than an 8 MiB window: ours use 4
        d = _local.zstd = zstandard.ZstdDecompressor(max_window_size=_ZSTD_WINDOW)
    return d


def encode_file_header(magic: bytes, version: int) -> bytes:
    head = struct.pack("<8sHH", magic, version, 0)
    return head + _HEADER_CRC.pack(zlib.crc32(head))


def upgrade_file_header(fh: BinaryIO, magic: bytes, version: int) -> None:
    """Rewrite an older file's 16-byte header to `version` in place, before appending to it.

    Only a writer does this, just before it appends frames the older version does not have;
    16 bytes at offset 0 land in one sector, so a crash leaves the old header or the new one.
    """
    fh.seek(0)
    fh.write(encode_file_header(magic, version))
    fh.flush()
    os.fsync(fh.fileno())
    fh.seek(0, os.SEEK_END)


def read_file_header(data: bytes, *, magic: bytes, supported: int, path: Path | str, what: str) -> int:
    """Check magic, version and header CRC; return the version.

    `supported` is the newest version this reader knows; every version from 1 up to it is
    read (each format version reads the ones before it, docs/format.md says how).
    """
    if len(data) < FILE_HEADER_SIZE:
        raise CorruptSessionError(
            f"{path}: not a {what}: file is {len(data)} bytes, shorter than the "
            f"{FILE_HEADER_SIZE}-byte header",
            path=path, offset=0, expected="file header",
        )
    found, version, _reserved, crc = _FILE_HEADER.unpack_from(data, 0)
    if found != magic:
        raise CorruptSessionError(
            f"{path}: not a {what}: expected magic {magic!r} at offset 0, found {found!r}",
            path=path, offset=0, expected=f"magic {magic!r}",
        )
    if zlib.crc32(data[:12]) != crc:
        raise CorruptSessionError(
            f"{path}: file header CRC mismatch at offset 0 (the header is damaged)",
            path=path, offset=0, expected="file header CRC",
        )
    if not 1 <= version <= supported:
        newer = version > supported
        advice = (
            "upgrade edgetrace (pip install -U edgetrace) to read it"
            if newer
            else f"convert it with an edgetrace release that reads format {version}"
        )
        reads = f"version {supported}" if supported == 1 else f"versions 1 to {supported}"
        raise UnsupportedFormatError(
            f"{path}: {what} format version {version} is not supported by this build "
            f"(reads {reads}); {advice}",
            path=path, version=version,
        )
    return int(version)


def encode_frame(ftype: FrameType, payload: bytes, *, compress: bool | str = False, flags: int = 0,
                 count: int = 0) -> bytes:
    """`compress`: False, True or "zlib" (fast, for live writers), "zstd" (small and fast to read,
    for finished files: what compaction writes), or "lzma" (xz, as compaction wrote before zstd).

    `flags` marks a payload that is already compressed (the agent's zlib bytes, stored as sent).
    `count`: how many records a RECORDS frame holds (format 2; capped at 65535, 0 = not said),
    so a reader that has to skip the frame as damaged can still say how many records it lost.
    """
    if not (flags or compress or count):  # the common case (a spool's one-record frame): no branches below
        head = _FRAME_HEADER.pack(len(payload), ftype, 0, 0, zlib.crc32(payload))
        return b"".join((head, _HEADER_CRC.pack(zlib.crc32(head)), payload))
    if flags & ~_KNOWN_FLAGS:
        raise ValueError(f"unknown frame flags {flags:#04x}")
    if compress and not flags:
        if compress == "zstd":
            packed, flag = _zstd_compressor().compress(payload), FLAG_ZSTD
        elif compress == "lzma":
            packed, flag = lzma.compress(payload, **_XZ), FLAG_LZMA  # type: ignore[arg-type]
        else:
            packed, flag = zlib.compress(payload, 1), FLAG_ZLIB
        if len(packed) < len(payload):
            payload, flags = packed, flag
    head = _FRAME_HEADER.pack(len(payload), int(ftype), flags, min(max(count, 0), 0xFFFF), zlib.crc32(payload))
    return head + _HEADER_CRC.pack(zlib.crc32(head)) + payload


def _zstd_compressor() -> zstandard.ZstdCompressor:
    """This thread's zstd compressor (not shareable between threads either); every frame it
    writes states its content size, which readers require (`Frame._unzstd`)."""
    c: zstandard.ZstdCompressor | None = getattr(_local, "zstd_c", None)
    if c is None:
        c = _local.zstd_c = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
    return c


def _zeros_from_within(read: Callable[[int, int], bytes], total: int, start: int, end: int) -> bool:
    """True if everything from some byte in [start, end) up to the end of the data is zero.

    That is the zero tail some file systems leave after a crash (the size was updated, the
    data blocks were not), starting anywhere in the frame being written: a torn tail, not
    damage. The scan runs backwards from the end and stops at the first non-zero byte.
    """
    at = total
    while at > start:
        step = min(_ZERO_SCAN, at - start)
        chunk = read(at - step, step)
        stripped = chunk.rstrip(b"\0")
        if stripped:
            return at - step + len(stripped) < end  # the zeros begin inside the frame
        at -= step
    return True


_ZERO_SCAN = 1 << 16


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Where a scan stopped: `end` is the first byte after the last intact frame."""

    end: int
    torn: bool


@dataclass(frozen=True, slots=True)
class Damage:
    """A damaged stretch a salvaging scan skipped: bytes [offset, end), what was wrong, and how
    many records it held when its (intact) header says so."""

    offset: int
    end: int
    reason: str
    records: int | None = None

    @property
    def size(self) -> int:
        return self.end - self.offset


# what a frame header can look like at a resync point: type 1-6, known flags, reserved 0
_CANDIDATE = re.compile(rb"(?s)(?=.{4}[\x01-\x06][\x00-\x07])")
_RESYNC_CHUNK = 1 << 20


@overload
def scan_frames(
    source: bytes | memoryview | BinaryIO, start: int, *, path: Path | str, size: int | None = None,
    salvage: Literal[False] = False,
) -> Iterator[Frame | ScanResult]: ...


@overload
def scan_frames(
    source: bytes | memoryview | BinaryIO, start: int, *, path: Path | str, size: int | None = None,
    salvage: bool,
) -> Iterator[Frame | Damage | ScanResult]: ...


def scan_frames(
    source: bytes | memoryview | BinaryIO, start: int, *, path: Path | str, size: int | None = None,
    salvage: bool = False,
) -> Iterator[Frame | Damage | ScanResult]:
    """Yield intact frames from `start`, then one ScanResult saying where and why it stopped.

    A frame that runs past the end of the data is a torn tail (as is a tail of zero bytes,
    which some file systems leave after a crash, starting anywhere in the last frame). A
    header or payload whose CRC does not match raises CorruptSessionError: a crash cannot
    produce that, only damage can. With `salvage` a damaged stretch is yielded as a `Damage`
    instead and the scan goes on at the next intact frame (both CRCs must match there), so one
    bad byte costs one frame, not the file.
    """
    if isinstance(source, (bytes, memoryview)):
        data = memoryview(source)
        total = len(data) if size is None else size

        def read(at: int, n: int) -> bytes:
            return bytes(data[at : min(at + n, total)])
    else:
        fh = source
        if size is None:
            fh.seek(0, 2)
            size = fh.tell()
        total = size

        def read(at: int, n: int) -> bytes:
            fh.seek(at)
            return fh.read(max(0, min(n, total - at)))

    offset = start
    while True:
        if offset >= total:
            yield ScanResult(offset, False)
            return
        frame = _frame_at(read, total, offset, path)
        if isinstance(frame, Frame):
            yield frame
            offset = frame.end
            continue
        if frame is None:  # runs past the end, or a zero tail: torn
            yield ScanResult(offset, True)
            return
        if not salvage:
            raise frame
        resume = _resync(read, total, offset + 1, path)
        yield Damage(offset, resume, str(frame).removeprefix(f"{path}: "), _records_said(read, offset))
        offset = resume


def _frame_at(read: Callable[[int, int], bytes], total: int, offset: int,
              path: Path | str) -> Frame | CorruptSessionError | None:
    """The intact frame at `offset`, None for a torn tail, or the error that says how it is damaged."""
    head = read(offset, FRAME_HEADER_SIZE)
    if len(head) < FRAME_HEADER_SIZE:
        return None
    (hcrc,) = _HEADER_CRC.unpack_from(head, _FRAME_HEADER.size)
    if zlib.crc32(head[: _FRAME_HEADER.size]) != hcrc:
        if _zeros_from_within(read, total, offset, offset + FRAME_HEADER_SIZE):
            return None
        return CorruptSessionError(
            f"{path}: frame header CRC mismatch at offset {offset} "
            "(expected an intact frame header; the file is damaged here)",
            path=path, offset=offset, expected="frame header CRC",
        )
    length, ftype, flags, _reserved, pcrc = _FRAME_HEADER.unpack_from(head, 0)
    if length > MAX_FRAME_PAYLOAD:
        return CorruptSessionError(
            f"{path}: frame at offset {offset} claims {length} bytes, over the "
            f"{MAX_FRAME_PAYLOAD}-byte limit",
            path=path, offset=offset, expected="frame length within limit",
        )
    body_at = offset + FRAME_HEADER_SIZE
    if body_at + length > total:
        return None
    payload = read(body_at, length)
    if zlib.crc32(payload) != pcrc:
        if _zeros_from_within(read, total, body_at, body_at + length):
            return None  # the header made it, the rest of the write did not
        return CorruptSessionError(
            f"{path}: payload CRC mismatch in frame at offset {offset} "
            f"({length} bytes; the file is damaged here)",
            path=path, offset=offset, expected="payload CRC",
        )
    try:
        kind = FrameType(ftype)
    except ValueError:
        return CorruptSessionError(
            f"{path}: unknown frame type {ftype} at offset {offset}; expected one of "
            + ", ".join(f"{t.value} ({t.name})" for t in FrameType),
            path=path, offset=offset, expected="frame type",
        )
    return Frame(offset, kind, flags, payload, path)


def _records_said(read: Callable[[int, int], bytes], offset: int) -> int | None:
    """The record count in the header of the frame at `offset`, if that header is intact."""
    head = read(offset, FRAME_HEADER_SIZE)
    if len(head) < FRAME_HEADER_SIZE or zlib.crc32(head[: _FRAME_HEADER.size]) != _HEADER_CRC.unpack_from(
            head, _FRAME_HEADER.size)[0]:
        return None
    _length, ftype, _flags, count, _crc = _FRAME_HEADER.unpack_from(head, 0)
    if ftype != FrameType.RECORDS:
        return 0
    return count or None


def _resync(read: Callable[[int, int], bytes], total: int, at: int, path: Path | str) -> int:
    """The offset of the next intact frame at or after `at`, or `total` if there is none."""
    while at < total:
        chunk = read(at, _RESYNC_CHUNK + FRAME_HEADER_SIZE)
        for match in _CANDIDATE.finditer(chunk):
            if match.start() >= _RESYNC_CHUNK:
                break
            candidate = at + match.start()
            if isinstance(_frame_at(read, total, candidate, path), Frame):
                return candidate
        at += _RESYNC_CHUNK
    return total
