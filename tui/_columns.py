"""Growable typed columns, the explorer's storage for per-span and per-trace numbers.

A column is a numpy array over a memory mapping. Small columns map anonymous memory (pages
never written cost nothing). Large ones map an unlinked scratch file: once written, their
pages can be handed back to the kernel (`release`), which keeps them in the page cache and
writes them to disk under memory pressure, so a ten-million-span session does not have to
fit in the explorer's resident memory. Reading a released page faults it back in.

`Columns` holds parallel columns of one length, declared once in `SPEC`; growing swaps in
new arrays whole, so a reader on another thread sees either the old arrays or the new ones,
each holding every row it was told about.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import threading
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

__all__ = ["SCRATCH_MIN_BYTES", "Columns", "allocate", "release_all", "scratch_bytes"]

#: Arrays at least this large live in scratch files rather than anonymous memory.
SCRATCH_MIN_BYTES = 32 * 1024 * 1024

_lock = threading.Lock()
_scratch: list[mmap.mmap] = []  # every live file-backed mapping (weakly: pruned when closed)


def allocate(dtype: npt.DTypeLike, n: int, *, fill: int = 0) -> npt.NDArray[Any]:
    """A zeroed (or `fill`ed) array of `n` items, backed by anonymous memory or a scratch file."""
    dt = np.dtype(dtype)
    nbytes = max(1, n) * dt.itemsize
    if nbytes >= SCRATCH_MIN_BYTES:
        fd, name = tempfile.mkstemp(prefix="edgetrace-explore-", suffix=".cols")
        try:
            os.unlink(name)  # gone from the folder now; the space is freed with the mapping
            os.ftruncate(fd, nbytes)
            buf = mmap.mmap(fd, nbytes)
        finally:
            os.close(fd)
        with _lock:
            _scratch[:] = [m for m in _scratch if not m.closed]
            _scratch.append(buf)
    else:
        buf = mmap.mmap(-1, nbytes)
    arr: npt.NDArray[Any] = np.frombuffer(buf, dtype=dt, count=max(1, n))
    if fill:
        arr.fill(fill)
    return arr


def release_all() -> None:
    """Hand the pages of every scratch-backed column back to the kernel (the data stays)."""
    with _lock:
        live = [m for m in _scratch if not m.closed]
    for m in live:
        try:
            m.madvise(mmap.MADV_DONTNEED)
        except (ValueError, OSError):  # closed meanwhile, or a kernel without madvise
            pass


def scratch_bytes() -> int:
    """Bytes of scratch files mapped now (what `release_all` may hand back)."""
    with _lock:
        return sum(len(m) for m in _scratch if not m.closed)


class Columns:
    """Parallel columns of one capacity; a subclass declares them in `SPEC` (name → dtype)
    and annotates each as an attribute. `FILL` names columns that start at a value other
    than 0 (e.g. -1 for "no link")."""

    SPEC: ClassVar[dict[str, str]] = {}
    FILL: ClassVar[dict[str, int]] = {}

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        for name, dtype in self.SPEC.items():
            setattr(self, name, allocate(dtype, self.capacity, fill=self.FILL.get(name, 0)))

    def reserve(self, need: int, held: int | None = None) -> None:
        """Make room for `need` entries in every column (doubling, so growth is amortised).
        `held`: how many entries are in use, the only ones copied (the rest of the old capacity
        was never written: copying it would make every page of the new columns resident)."""
        if need <= self.capacity:
            return
        cap = max(need, self.capacity * 2)
        for name, dtype in self.SPEC.items():
            old = getattr(self, name)
            new = allocate(dtype, cap, fill=self.FILL.get(name, 0))
            keep = len(old) if held is None else min(held, len(old))
            new[:keep] = old[:keep]
            setattr(self, name, new)  # one assignment: readers see the old array or the new
            del old
            release_all()  # the copy's pages: one column's worth resident at a time, not all
        self.capacity = cap

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.SPEC)
