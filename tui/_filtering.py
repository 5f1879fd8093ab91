"""Which traces the list shows: a query and time/duration ranges, over the scanned columns.

A query is answered from the span columns (`_vector_query`) when it can be — a second on a
million spans. Otherwise (an attribute map the scan did not keep, `concurrent(...)` of a
query) the traces are decoded frame by frame and tested with the query's predicates, on a
worker that reports progress; small sessions take that path at once. Ranges are checked on
the trace rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from edgetrace.tui._query import Query
from edgetrace.tui._ranges import Ranges
from edgetrace.tui._store import TraceStore

__all__ = ["SYNC_FILTER_SPANS", "TraceFilter"]

#: Below this many spans even the decoding path runs at once on the UI thread.
SYNC_FILTER_SPANS = 50_000

Rows = npt.NDArray[np.int32]


class TraceFilter:
    """One application of a query and ranges to the traces scanned so far."""

    def __init__(self, store: TraceStore, query: Query, ranges: Ranges) -> None:
        self.store = store
        self.query = query
        self.ranges = ranges
        self.count = store.count
        self._found: Rows | None = None
        self._tried = False
        self.columnar = True
        self._keep = self._range_mask()

    def _columns(self) -> None:
        """Answer from the columns if they can (once)."""
        from edgetrace.tui._vector_query import Unsupported, matching_rows

        if self._tried:
            return
        self._tried = True
        if self.query.empty:
            self._found = np.arange(self.count, dtype=np.int32)
            return
        try:
            self._found = matching_rows(self.store, self.query)
        except Unsupported:
            self.columnar = False

    @property
    def quick(self) -> bool:
        """Whether `run()` is quick enough for the UI thread (a small session, or no query)."""
        return self.store.span_count <= SYNC_FILTER_SPANS or self.query.empty

    def _range_mask(self) -> npt.NDArray[np.bool_]:
        n = self.count
        c = self.store.table.columns
        if self.ranges.empty:
            return np.ones(n, bool)
        lo = c.lo[:n].astype(np.int64)
        return self.ranges.mask(lo - self.store.t0, c.hi[:n].astype(np.int64) - lo)

    def _ranged(self, rows: Rows) -> Rows:
        rows = rows[rows < len(self._keep)]
        return rows[self._keep[rows]].astype(np.int32)

    def run(self) -> Rows:
        self._columns()
        if self._found is None:
            for _found, _progress in self.run_steps(lambda: False):
                pass
        return self.result()

    def result(self) -> Rows:
        assert self._found is not None, "run_steps() has not finished"
        return self._ranged(self._found)

    def run_steps(self, stop: Callable[[], bool]) -> Iterator[tuple[Rows, float]]:
        """From the columns, else decoding and testing trace by trace; yields (rows found so
        far, progress 0..1)."""
        self._columns()
        if self._found is not None:
            yield self.result(), 1.0
            return
        found: list[int] = []
        total = max(1, self.count)
        for seen, (row, graph) in enumerate(self.store.iter_rows_graphs(stop), 1):
            if self._keep[row] and self.query.matches_trace(graph):
                found.append(row)
            if seen % 512 == 0:
                yield np.asarray(sorted(found), np.int32), seen / total
        if not stop():
            self._found = np.asarray(sorted(found), np.int32)
            yield self._found, 1.0

    def empty_order(self) -> Rows:
        return np.zeros(0, np.int32)
