"""The typed columns the explorer packs its trace rows into, each declared once.

A trace row is about a hundred bytes spread over parallel columns, against several hundred
for an object per row. Every column is a memoryview over an anonymous mapping: pages never
written are never backed by memory, growing leaves no holes in the heap, and a memoryview
reads and writes single items faster than numpy or `array` do.

- `RowColumns`: one entry per trace row (the numbers a trace-list line shows, and where
  in the file the trace's spans are);
- `NodeExtents`: a chain per row of its time extents on nodes other than its root's;
- `LaterFrames`: a chain per row of the frames after its first that hold its spans;
- trace ids are one byte table (`zeros("B", n)`) indexed by `RowColumns.tr_off`.
"""

from __future__ import annotations

import mmap
import struct
from typing import Literal, Self, cast

__all__ = ["IntCode", "LaterFrames", "NodeExtents", "RowColumns", "regrown", "zeros"]

#: The `array` typecodes the columns use: unsigned byte, 32-bit (un)signed, 64-bit (un)signed.
IntCode = Literal["B", "I", "i", "Q", "q"]


def zeros(typecode: IntCode, n: int) -> memoryview[int]:
    """A zeroed column of `n` items in an anonymous mapping."""
    return memoryview(mmap.mmap(-1, max(1, n) * struct.calcsize(typecode))).cast(typecode)


def regrown(col: memoryview[int], need: int) -> memoryview[int]:
    """A copy of `col` with room for at least `need` items (doubling, so growth is amortised)."""
    new = zeros(cast(IntCode, col.format), max(need, len(col) * 2))
    new[: len(col)] = col
    return new


class _Columns:
    """Parallel columns of one length; a subclass allocates each of its slots in `__init__`."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, n: int) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        first: memoryview[int] = getattr(self, self.__slots__[0])
        return len(first)

    def grown(self, need: int) -> Self:
        """A copy with room for at least `need` entries in every column."""
        n = len(self)
        new = type(self)(max(need, n * 2))
        for name in self.__slots__:
            getattr(new, name)[:n] = getattr(self, name)
        return new


class RowColumns(_Columns):
    """One entry per trace row; strings are codes into `TraceTable.names` (0 is "")."""

    __slots__ = ("acts", "decision", "dur", "errors", "faults", "first_frame", "hi", "kind", "last_frame",
                 "lo", "more_frames", "more_nodes", "name", "node", "seq", "spans", "tr_off")

    def __init__(self, n: int) -> None:
        #: Where row i's trace id starts in the id table; entry i + 1 is where it ends.
        self.tr_off = zeros("Q", n)
        #: The trace's first span: its node, seq, kind and name.
        self.node = zeros("I", n)
        self.seq = zeros("q", n)
        self.kind = zeros("I", n)
        self.name = zeros("I", n)
        #: Extent on the first span's node (local ns); other nodes' are in `NodeExtents`.
        self.lo = zeros("q", n)
        self.hi = zeros("q", n)
        #: Longest per-node extent: local clocks may be skewed, so never subtract across nodes.
        self.dur = zeros("q", n)
        self.spans = zeros("I", n)
        self.errors = zeros("I", n)
        self.faults = zeros("I", n)
        #: The latest decision, and the first act (a row with more keeps its list apart).
        self.decision = zeros("I", n)
        self.acts = zeros("I", n)
        #: Numbers of the first and the latest records frame that hold the trace's spans.
        self.first_frame = zeros("I", n)
        self.last_frame = zeros("I", n)
        #: Heads of the row's chains in `LaterFrames` and `NodeExtents`; -1 ends a chain.
        self.more_frames = zeros("i", n)
        self.more_nodes = zeros("i", n)


class NodeExtents(_Columns):
    """Chains of per-node extents: entry x is one node's extent of one trace."""

    __slots__ = ("hi", "lo", "next", "node")

    def __init__(self, n: int) -> None:
        self.node = zeros("I", n)
        self.lo = zeros("q", n)
        self.hi = zeros("q", n)
        self.next = zeros("i", n)  # the row's next entry, -1 at the end


class LaterFrames(_Columns):
    """Chains of frame numbers, newest first: entry f is one later frame of one trace."""

    __slots__ = ("frame", "next")

    def __init__(self, n: int) -> None:
        self.frame = zeros("I", n)
        self.next = zeros("i", n)  # the row's next (older) entry, -1 at the end
