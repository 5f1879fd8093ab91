"""Reading a session's frames for the explorer: decompression ahead on worker threads.

A records frame must be decompressed (zlib for live sessions, zstd for compacted ones) before
it can be decoded, and on a session of a million spans decompressing costs about as much as
decoding. zlib, zstd and lzma release the GIL while they work, so `FrameReader` hands each
frame's bytes to a small thread pool as soon as the frame is read and yields the frames back in
file order with their bodies: the scanning thread decodes one frame while the next ones are
being decompressed on the other core.

Every way a frame can fail to open is a `CorruptSessionError` naming the file and offset.
"""

from __future__ import annotations

import lzma
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO, TypeVar

from edgetrace._errors import CorruptSessionError
from edgetrace._frames import Damage, Frame, FrameType, ScanResult, scan_frames
from edgetrace._inflate import AHEAD, inflate_pool
from edgetrace.tui._span_columns import Walked, walk_body

__all__ = ["AHEAD", "FrameReader", "OpenFrame", "corrupt"]

T = TypeVar("T")


def corrupt(path: Path, frame: Frame, what: str, exc: BaseException | None = None) -> CorruptSessionError:
    """The error for a frame whose payload cannot be read as `what`."""
    detail = f": {' '.join(str(exc).split())}" if exc is not None and str(exc) else ""
    return CorruptSessionError(
        f"{path}: {frame.type.name.lower()} frame at offset {frame.offset} does not decode as {what}{detail}",
        path=path, offset=frame.offset, expected=what,
    )


def _opened(frame: Frame) -> tuple[bytes | None, Walked]:
    """On a worker thread: the body inflated, then walked into columns by the C walk (which
    needs no table and releases the GIL), so the scanning thread is handed both. A body the
    walk took is dropped: read ahead, it would hold several times the compressed bytes, and
    the scan needs only the columns (`OpenFrame.body` inflates it again if asked)."""
    body = frame.body()
    walked = walk_body(body)
    return (body if walked is None else None), walked


class OpenFrame:
    """A frame read from the file, with its body once decompressed (and its records walked
    into columns, where the C walk is built: `walked`)."""

    __slots__ = ("_future", "frame")

    def __init__(self, frame: Frame, future: Future[tuple[bytes | None, Walked]] | None) -> None:
        self.frame = frame
        self._future = future

    def _result(self, path: Path) -> tuple[bytes | None, Walked] | None:
        """What the worker made of the frame (None: it was not handed to one)."""
        return None if self._future is None else self._opening(path, self._future.result)

    def _opening(self, path: Path, open_: Callable[[], T]) -> T:
        """`open_()`, with a payload that does not inflate reported as the damaged frame it is."""
        try:
            return open_()
        except CorruptSessionError:
            raise
        except (zlib.error, lzma.LZMAError, ValueError, MemoryError) as exc:
            raise corrupt(path, self.frame, "a compressed payload", exc) from None

    def body(self, path: Path) -> bytes:
        done = self._result(path)
        if done is not None and done[0] is not None:
            return done[0]
        return self._opening(path, self.frame.body)

    def walked(self, path: Path) -> Walked:
        """The C walk of the body (None: not built, or it declined), done ahead on a worker
        when the frame was inflated there, else now."""
        done = self._result(path)
        return done[1] if done is not None else walk_body(self.body(path))


class _Frames:
    """Frames of one file from an offset up to a size, read (and CRC-checked) here and handed to
    the inflate workers ahead of the consumer; what the scan raises is raised after the frames
    before it. Not a generator: a consumer that stops early leaves it as it is, so the next
    scan from the same place takes the frames already opened (`FrameReader.frames`)."""

    def __init__(self, path: Path, start: int, size: int, salvage: bool) -> None:
        self.size, self.salvage = size, salvage
        self.position = start  # where the next item handed out starts
        self._fh: BinaryIO | None = open(path, "rb")  # closed at the end, by close(), or when dropped
        weakref.finalize(self, self._fh.close)  # a store dropped mid-file: closed, not left to the GC
        self._scan = scan_frames(self._fh, start, path=path, size=size, salvage=salvage)
        self._ahead: deque[OpenFrame | Damage | ScanResult] = deque()
        self._error: BaseException | None = None

    def __iter__(self) -> _Frames:
        return self

    def __next__(self) -> OpenFrame | Damage | ScanResult:
        self.fill(AHEAD + 1)
        if not self._ahead:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            raise StopIteration
        item = self._ahead.popleft()
        if isinstance(item, OpenFrame):
            self.position = item.frame.end
        elif isinstance(item, Damage):
            self.position = item.end
        else:
            self.position = -1  # the end: nothing resumes after it
        return item

    def fill(self, frames: int) -> None:
        """Read until `frames` items are ahead (or the scan ends), records frames handed to the
        inflate workers as they are read."""
        pool = inflate_pool()
        while self._fh is not None and len(self._ahead) < frames:
            try:
                item = next(self._scan)
            except StopIteration:  # pragma: no cover - scan_frames always ends with a ScanResult
                self.close()
                break
            except Exception as exc:  # raised in order, after the frames before it
                self._error = exc
                self.close()
                break
            if isinstance(item, Frame):
                future = pool.submit(_opened, item) if item.type is FrameType.RECORDS and item.flags else None
                self._ahead.append(OpenFrame(item, future))
            else:
                self._ahead.append(item)
                if isinstance(item, ScanResult):
                    self.close()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class FrameReader:
    """Frames of one file from an offset, in order, bodies decompressed ahead."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._kept: _Frames | None = None

    def frames(self, start: int, size: int, *, salvage: bool = False) -> Iterator[OpenFrame | Damage | ScanResult]:
        """`OpenFrame`s from `start`, then the `ScanResult` where reading stopped. Stopping
        early is fine: the next call from where it stopped (same size, same salvage) goes on
        with the frames already read ahead; any other drops them. With `salvage` a damaged
        stretch comes as a `Damage` (in file order) and reading goes on after it."""
        kept = self._kept
        if kept is not None and (kept.position, kept.size, kept.salvage) == (start, size, salvage):
            return kept
        if kept is not None:
            kept.close()
        self._kept = _Frames(self.path, start, size, salvage)
        return self._kept
