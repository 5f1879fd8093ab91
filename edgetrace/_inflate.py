"""Records frames inflated ahead on worker threads while the reader decodes the frame before.

A records frame of a live session is zlib-compressed (zstd once compacted; xz if compacted
before zstd), and on a session of a million records inflating costs a good part of what
decoding does. zlib, zstd and lzma release the GIL while they work, so `inflated` hands each
records frame to a small thread pool as soon as the scan has read (and CRC-checked) it, and
yields the frames back in file order with their bodies on the way: the reading thread decodes
one frame while the next are being inflated on the other core. What the scan raises is raised after the frames before it, as a scan one frame
at a time would. (The explorer's reader, tui/_scan.py, does the same; this is the core's.)
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from edgetrace._frames import Frame, FrameType

__all__ = ["AHEAD", "inflate_pool", "inflated"]

#: Frames inflated ahead of the one being decoded.
AHEAD = 6
T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def inflate_pool() -> ThreadPoolExecutor:
    """The one pool of inflate threads every reader of this process shares (zlib/zstd/lzma
    release the GIL): the CLI's session reader and the explorer's scan."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="edgetrace-inflate")
        return _pool


def inflated(items: Iterable[T]) -> Iterator[tuple[T, Future[bytes] | None]]:
    """Each item with, for a compressed records frame, the future of its body (`Frame.body()`,
    exceptions included); None for anything else, whose body the reader takes itself."""
    ahead: deque[tuple[T, Future[bytes] | None]] = deque()
    pool: ThreadPoolExecutor | None = None
    try:
        for item in items:
            future = None
            if isinstance(item, Frame) and item.type is FrameType.RECORDS and item.flags:
                pool = pool or inflate_pool()
                future = pool.submit(item.body)
            ahead.append((item, future))
            if len(ahead) > AHEAD:
                yield ahead.popleft()
    except BaseException:
        while ahead:  # what the scan found is raised where it was found, after the frames before it
            yield ahead.popleft()
        raise
    while ahead:
        yield ahead.popleft()
