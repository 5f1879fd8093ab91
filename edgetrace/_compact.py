"""Compaction: a finished session rewritten small, record bytes copied, never decoded.

Live writers use zlib level 1 because the hub must keep up with its agents; once a session is
sealed nobody appends to it, so it can be recompressed with xz and its records regrouped into
larger frames — without decoding a record: a records frame is a MessagePack array, so frames
are merged by their array headers.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

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
from edgetrace._records import FORMAT_VERSION
from edgetrace._session import SESSION_MAGIC

__all__ = ["compact"]


def compact(path: str | os.PathLike[str], *, records_per_frame: int = 2000) -> tuple[int, int]:
    """Rewrite a finished (sealed) session with xz frames of up to `records_per_frame` records.

    Live writers use zlib level 1 because the hub must keep up with its agents; once a
    session is sealed nobody appends to it, so it can be recompressed: ≈ 2.5× smaller on
    the 1,000-node benchmark (bench/bench_core.py). The new file replaces the old one
    atomically, so a crash leaves one or the other, never a mix. Readers that hold frame
    offsets of the old file (a live explorer) must reopen: compact a session before anyone
    follows it — `edgetrace record` compacts after the hub has stopped. Returns (bytes
    before, bytes after).
    """
    path = Path(path)
    if not path.is_file():
        raise SessionNotFoundError(f"{path}: no such session", path=path)
    before = path.stat().st_size
    mode = stat.S_IMODE(path.stat().st_mode)
    # created exclusively under a fresh random name (never a fixed name someone could plant a
    # symlink at), in the same folder so the rename is atomic
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".compacting")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            sealed = _rewrite_xz(path, out, records_per_frame)
            os.fchmod(out.fileno(), mode)
        if not sealed:
            raise UsageError(f"{path}: only a sealed session can be compacted (it may still be written)")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return before, path.stat().st_size


def _rewrite_xz(path: Path, out: BinaryIO, records_per_frame: int) -> bool:
    """Copy `path` to `out` frame by frame, records regrouped and xz-compressed; True if sealed."""
    pending: list[bytes] = []
    count = 0
    sealed = False
    with open(path, "rb") as src:
        read_file_header(src.read(FILE_HEADER_SIZE), magic=SESSION_MAGIC, supported=FORMAT_VERSION,
                         path=path, what="session")
        out.write(encode_file_header(SESSION_MAGIC, FORMAT_VERSION))

        def flush() -> None:
            nonlocal count
            if pending:
                out.write(encode_frame(FrameType.RECORDS, _join_arrays(pending, count), compress="lzma", count=count))
                pending.clear()
                count = 0

        for item in scan_frames(src, FILE_HEADER_SIZE, path=path):
            if isinstance(item, ScanResult):
                break
            if item.type is FrameType.RECORDS:
                n, items = _array_items(item.body(), path)
                pending.append(items)
                count += n
                if count >= records_per_frame:
                    flush()
            elif item.type is FrameType.SEAL:
                flush()
                out.write(encode_frame(FrameType.SEAL, b""))
                sealed = True
            elif item.type is FrameType.BLOB:
                out.write(encode_frame(FrameType.BLOB, item.body(), compress="lzma"))
            else:  # manifest and marker frames keep their place among the records
                flush()
                out.write(encode_frame(item.type, item.body()))
        flush()
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
