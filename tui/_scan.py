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
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

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


def _opened(frame: Frame) -> tuple[bytes, Walked]:
    """On a worker thread: the body inflated, then walked into columns by the C walk (which
    needs no table and releases the GIL), so the scanning thread is handed both."""
    body = frame.body()
    return body, walk_body(body)


class OpenFrame:
    """A frame read from the file, with its body once decompressed (and its records walked
    into columns, where the C walk is built: `walked`)."""

    __slots__ = ("_future", "frame")

    def __init__(self, frame: Frame, future: Future[tuple[bytes, Walked]] | None) -> None:
        self.frame = frame
        self._future = future

    def _result(self, path: Path) -> tuple[bytes, Walked] | None:
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
        return done[0] if done is not None else self._opening(path, self.frame.body)

    def walked(self, path: Path) -> Walked:
        """The C walk of the body (None: not built, or it declined), done ahead on a worker
        when the frame was inflated there, else now."""
        done = self._result(path)
        return done[1] if done is not None else walk_body(self.body(path))


class FrameReader:
    """Frames of one file from an offset, in order, bodies decompressed ahead."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def frames(self, start: int, size: int, *, salvage: bool = False) -> Iterator[OpenFrame | Damage | ScanResult]:
        """`OpenFrame`s from `start`, then the `ScanResult` where reading stopped. Stopping
        early is fine: frames read ahead are simply dropped. With `salvage` a damaged stretch
        comes as a `Damage` (in file order) and reading goes on after it."""
        pool = inflate_pool()
        ahead: deque[OpenFrame | Damage] = deque()
        with open(self.path, "rb") as fh:
            for item in scan_frames(fh, start, path=self.path, size=size, salvage=salvage):
                if isinstance(item, ScanResult):
                    while ahead:
                        yield ahead.popleft()
                    yield item
                    return
                if isinstance(item, Damage):
                    ahead.append(item)
                    continue
                future = pool.submit(_opened, item) if item.type is FrameType.RECORDS and item.flags else None
                ahead.append(OpenFrame(item, future))
                if len(ahead) > AHEAD:
                    yield ahead.popleft()
