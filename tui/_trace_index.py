"""Trace id → row of the explorer's trace table, in a few bytes a trace.

The scan meets each trace id once per frame that holds its spans and must find the trace's
row again; the UI looks rows up by id (a diff's diverged traces). A dict of 700,000 ids
costs ~100 MB, so only traces seen lately stay in a dict and the rest move, by hash, into a
sorted array (12 bytes a trace). Where the C extension is built, `NativeTraceIndex` does the
same in a C hash table keyed by the id's bytes (about 6 bytes a trace).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["NativeTraceIndex", "TraceIndex"]


_CHUNK = 1 << 20
#: Traces the C index numbers (27 bits of row in a slot, see _recscan.c).
MAX_TRACES = 2**27 - 2


def _merged(old: tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]], hashes: npt.NDArray[np.int64],
            rows: npt.NDArray[np.int32]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """The sorted arrays with sorted (hashes, rows) merged in, in fresh columns (large ones in
    scratch files: see `allocate`), a chunk of the old arrays at a time so that no temporary
    is as large as they are."""
    import numpy as np

    from edgetrace.tui._columns import allocate, release_all

    keys, old_rows = old
    total = len(keys) + len(hashes)
    out_keys = allocate("i8", total)[:total]
    out_rows = allocate("i4", total)[:total]
    at = np.searchsorted(keys, hashes) + np.arange(len(hashes))  # where each new entry lands
    out_keys[at], out_rows[at] = hashes, rows
    for a in range(0, len(keys), _CHUNK):
        b = min(len(keys), a + _CHUNK)
        # an old entry moves up by the new entries that sort at or before it (ties: new first)
        to = np.arange(a, b) + np.searchsorted(hashes, keys[a:b], side="right")
        out_keys[to], out_rows[to] = keys[a:b], old_rows[a:b]
        release_all()
    return out_keys, out_rows


class TraceIndex:
    """Trace id → row: a dict of traces seen lately, the rest by hash in a sorted array.

    Every hit on the arrays is checked against the stored id (`trace_at`), so a hash
    collision cannot merge two traces. Only the scanning thread writes; `lookup` may run
    on any thread.
    """

    RECENT: ClassVar[int] = 32_768
    RECENT_MAX: ClassVar[int] = 262_144

    def __init__(self, trace_at: Callable[[int], str]) -> None:
        self.recent: dict[str, int] = {}
        self._trace_at = trace_at
        # (hashes sorted, their rows), swapped whole so a reader never sees half of an update
        self._sorted: tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]] | None = None
        self._settled = 0  # rows below this are in the arrays
        self._bloom: npt.NDArray[np.uint8] | None = None

    def _bloom_add(self, new: npt.NDArray[np.int64], every: npt.NDArray[np.int64]) -> None:
        """Note hashes in the filter that tells traces never settled from ones maybe settled:
        `new` into the filter there is, or `every` into a larger one once it fills up (bits
        are only ever set, or a whole new filter swapped in, so a reader is never misled)."""
        import numpy as np

        bits = 1 << max(20, (16 * len(every) - 1).bit_length())  # ~16 bits a trace: ~2% false hits
        bloom = self._bloom
        if bloom is None or len(bloom) * 8 < bits:
            bloom, new = np.zeros(bits // 8, np.uint8), every
        size = np.uint64(len(bloom) * 8)
        for a in range(0, len(new), _CHUNK):  # in chunks: the temporaries stay small
            part = new[a:a + _CHUNK].view(np.uint64)
            for shift in (0, 29):
                at = (part >> np.uint64(shift)) % size
                np.bitwise_or.at(bloom, (at >> np.uint64(3)).astype(np.int64),
                                 (np.uint8(1) << (at & np.uint64(7)).astype(np.uint8)))
            if len(new) > _CHUNK:
                from edgetrace.tui._columns import release_all

                release_all()  # the hashes just read
        self._bloom = bloom

    def _maybe_seen(self, hashes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        import numpy as np

        bloom = self._bloom
        if bloom is None:
            return np.zeros(len(hashes), bool)
        seen = np.ones(len(hashes), bool)
        for shift in (0, 29):
            at = (hashes.view(np.uint64) >> np.uint64(shift)) % np.uint64(len(bloom) * 8)
            seen &= ((bloom[(at >> np.uint64(3)).astype(np.int64)] >> (at & np.uint64(7)).astype(np.uint8)) & 1) > 0
        return seen

    def _search(self, traces: list[str]) -> Iterator[tuple[str, int]]:
        table = self._sorted
        if table is None or not traces:
            return
        import numpy as np

        keys, rows = table
        hashes = np.fromiter(map(hash, traces), np.int64, len(traces))
        maybe = self._maybe_seen(hashes)
        if not maybe.any():
            return  # none was ever settled: the usual case for new traces
        traces = [t for t, m in zip(traces, maybe.tolist(), strict=True) if m]
        hashes = hashes[maybe]
        pos = np.searchsorted(keys, hashes)
        inside = pos < len(keys)
        hit = np.zeros(len(traces), bool)
        hit[inside] = keys[pos[inside]] == hashes[inside]
        for k in np.flatnonzero(hit).tolist():
            p, h = int(pos[k]), hashes[k]
            while p < len(keys) and keys[p] == h:
                row = int(rows[p])
                if self._trace_at(row) == traces[k]:
                    yield traces[k], row
                    break
                p += 1

    def recall(self, traces: Iterable[str]) -> None:
        """Scanner: bring the given traces that are in the arrays back into `recent`."""
        recent = self.recent
        for trace, row in self._search(list(itertools.filterfalse(recent.__contains__, traces))):
            recent[trace] = row

    def rows_for(self, traces: list[str], blob: npt.NDArray[np.uint8], lens: npt.NDArray[np.int64],
                 next_row: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Scanner: the row of each of a frame's distinct traces, the new ones numbered from
        `next_row` in order; and which are new. (`blob`/`lens`, their bytes, are for
        `NativeTraceIndex`; this one keys by the strings.)"""
        import numpy as np

        self.recall(traces)
        recent = self.recent
        row_of = np.fromiter(map(recent.get, traces, itertools.repeat(-1)), np.int64, len(traces))
        fresh = row_of < 0
        if fresh.any():
            new = traces if fresh.all() else [t for t, is_new in zip(traces, fresh.tolist(), strict=True) if is_new]
            distinct = list(dict.fromkeys(new))  # a run of frames may name a new trace twice
            recent.update(zip(distinct, range(next_row, next_row + len(distinct)), strict=True))
            if len(distinct) < len(new):
                rows = np.fromiter(map(recent.__getitem__, new), np.int64, len(new))
                at = np.flatnonzero(fresh)
                row_of[at] = rows
                first = np.zeros(len(new), bool)
                first[np.unique(rows, return_index=True)[1]] = True
                fresh[at[~first]] = False  # only the first coming is new: its bytes are stored
            else:
                row_of[fresh] = np.arange(next_row, next_row + len(new))
        return row_of, fresh

    def lookup(self, trace: str) -> int | None:
        row = self.recent.get(trace)
        if row is None:
            row = next((r for _t, r in self._search([trace])), None)
        return row

    def settle(self, count: int) -> None:
        """Scanner: move `recent` into the sorted arrays once it holds `RECENT` traces (more
        as the arrays grow, up to `RECENT_MAX`: each merge copies the arrays)."""
        if len(self.recent) < max(self.RECENT, min(self.RECENT_MAX, self._settled // 8)):
            return
        import numpy as np

        recent = self.recent
        hashes = np.fromiter(map(hash, recent), np.int64, len(recent))
        rows = np.fromiter(recent.values(), np.int32, len(recent))
        fresh = rows >= self._settled  # the others were recalled from the arrays
        hashes, rows = hashes[fresh], rows[fresh]
        order = np.argsort(hashes, kind="stable")
        hashes, rows = hashes[order], rows[order]
        new = hashes
        if self._sorted is not None:
            hashes, rows = _merged(self._sorted, hashes, rows)
        self._bloom_add(new, hashes)
        self._sorted = (hashes, rows)  # readers see the filter and arrays before the dict is emptied
        self.recent = {}
        self._settled = count


class NativeTraceIndex:
    """Trace id → row in C (`_recscan.TraceTable`): a hash table of rows, each hit checked
    against the id the trace table stores, about 6 bytes a trace and no Python object per
    trace (used where the extension is built). `stored()` gives the table's ids, their offsets and its complete row count."""

    def __init__(self, stored: Callable[[], tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint64], int]]) -> None:
        from edgetrace import _recscan

        self._table = _recscan.TraceTable()
        self._stored = stored

    def rows_for(self, traces: list[str], blob: npt.NDArray[np.uint8], lens: npt.NDArray[np.int64],
                 next_row: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """As `TraceIndex.rows_for` (keyed by the bytes)."""
        import numpy as np

        ids, off, _count = self._stored()
        try:
            rows, fresh = self._table.rows(blob, lens.astype(np.int32), ids, off, next_row)
        except OverflowError:  # 2^27 - 2 traces: far past what a scan can hold anyway
            from edgetrace._errors import CorruptSessionError

            raise CorruptSessionError(f"more than {MAX_TRACES:,} traces, more than the explorer can show",
                                      expected=f"at most {MAX_TRACES:,} traces") from None
        return np.frombuffer(rows, np.int64).copy(), np.frombuffer(fresh, np.bool_)

    def lookup(self, trace: str) -> int | None:
        ids, off, count = self._stored()
        row: int = self._table.find(trace.encode("utf-8", "surrogatepass"), ids, off, count)
        return row if row >= 0 else None

    def settle(self, count: int) -> None:
        """Nothing to move: the C table holds every trace."""
