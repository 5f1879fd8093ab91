"""The first screen: the traces of a session, to find the one that matters.

Traces can be found by what happened (`/`: the filter language, with completion of field
names and of the values the session holds), by when and how long (`t`: a time range; `h`:
the start × duration chart, where a box of cells selects traces), or from the fleet (`f`:
pick a node or a link). A background worker keeps reading the file (or a live session).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from edgetrace._errors import UsageError
from edgetrace.tui._complete import QueryInput, QuerySuggester, Vocabulary, candidates
from edgetrace.tui._filtering import TraceFilter
from edgetrace.tui._footer import KeyFooter
from edgetrace.tui._query import Query, QueryError, parse_query
from edgetrace.tui._ranges import RANGE_HELP, Ranges, parse_ranges
from edgetrace.tui._scatter import CHART_LEGEND, ChartData, DurationChart
from edgetrace.tui._store import TraceStore
from edgetrace.tui._text import printable
from edgetrace.tui._trace_list import TraceList, list_header
from edgetrace.tui._trace_table import SORTS

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TraceListScreen"]

#: The background reader starts this long after the first screen is drawn.
LOAD_DELAY_S = 0.3


class TraceListScreen(Screen[None]):
    """Trace list, status line, filter and range boxes, and the duration chart."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "filter"),
        Binding("t", "ranges", "time"),
        Binding("h", "chart", "chart"),
        Binding("f", "fleet", "fleet"),
        Binding("x", "causal", "causal", show=False),
        Binding("s", "sort", "sort"),
        Binding("n", "next_flagged(1)", "next flagged"),
        Binding("N", "next_flagged(-1)", "prev flagged", show=False),
        Binding("d", "diff", "diff", show=False),
        Binding("escape", "clear", "clear filter", show=False),
    ]

    class FilterChanged(Message):
        """The filter query changed (the trace view highlights matching spans with it)."""

        def __init__(self, query: Query) -> None:
            super().__init__()
            self.query = query

    class Grown(Message):
        """The background reader added rows."""

    class OpenFleet(Message):
        """The user asked for the fleet view."""

    class OpenCausal(Message):
        """The user asked for the causal view around a trace's root."""

        def __init__(self, trace: str) -> None:
            super().__init__()
            self.trace = trace

    def __init__(self, store: TraceStore, *, follow: bool = True, marks: set[str] | None = None,
                 query: str = "") -> None:
        super().__init__()
        self.store = store
        self.follow = follow
        self.filter_query = parse_query("")
        self.ranges = Ranges()
        self.sort_names = list(SORTS)
        self.sort_at = 0
        self.filter_note = ""
        self.draft = ""  # what was typed in the filter box when it last failed to parse
        self._initial_marks = marks or set()
        self._initial_query = query
        self._filter_serial = 0
        self._vocab = Vocabulary(store)

    def compose(self) -> ComposeResult:
        with Vertical(id="list-box"):
            yield Static(id="status", markup=False)
            yield DurationChart(id="duration-chart")
            yield Static(CHART_LEGEND, id="chart-legend", markup=False)
            yield QueryInput(placeholder="filter: kind=act without after(kind=infer)  (Tab completes)",
                             id="filter", suggester=QuerySuggester(self._vocab))
            yield Input(placeholder=f"time range: {RANGE_HELP}", id="range")
            yield Static(id="hint", markup=False)
            yield Static(id="list-header", markup=False)
            yield TraceList(self.store, id="traces")
            yield Static(id="message", markup=False)
        yield KeyFooter()

    @property
    def traces(self) -> TraceList:
        return self.query_one(TraceList)

    @property
    def chart(self) -> DurationChart:
        return self.query_one(DurationChart)

    def on_mount(self) -> None:
        for wid in ("#filter", "#range", "#hint", "#duration-chart", "#chart-legend"):
            self.query_one(wid).display = False
        self.traces.marks = set(self._initial_marks)
        if self.store.rows:
            self.traces.refresh_rows()
        self.traces.focus()
        self._update_status()
        if self._initial_query:
            self.apply_filter(self._initial_query)
        if not (self.store.at_end and (self.store.sealed or not self.follow)):
            # the first screen first: the reader competes with the UI for the GIL.
            self.set_timer(LOAD_DELAY_S, self._load)

    def on_resize(self) -> None:
        self.query_one("#list-header", Static).update(list_header(self.size.width))

    # --- background loading and live follow --------------------------------------------

    @work(thread=True, exclusive=True, group="load")
    def _load(self) -> None:
        worker = get_current_worker()

        def report() -> bool:
            if not worker.is_cancelled:
                self.post_message(self.Grown())  # thread-safe, and the reader need not wait
            return not worker.is_cancelled

        while not worker.is_cancelled:
            added = self.store.scan(report=report)
            if self.store.at_end:
                self.store.estimate_clocks()  # the whole file read: every trace on the final axis
                if added:
                    self.app.call_from_thread(self._grown)
                if self.store.sealed or not self.follow:
                    break
                time.sleep(0.5)  # a live writer: poll for what it appends next
        self.app.call_from_thread(self._grown)

    def on_trace_list_screen_grown(self, event: Grown) -> None:
        self._grown()

    def _grown(self) -> None:
        lst = self.traces
        if self.filtered:
            pass  # a filtered view is recomputed when the filter is applied again
        elif lst.order is not None:
            self._apply_sort()
        lst.refresh_rows()
        self._update_status()
        if self.chart.display:
            self._chart()

    @property
    def filtered(self) -> bool:
        return not self.filter_query.empty or not self.ranges.empty

    def _update_status(self) -> None:
        st = self.store
        m = st.manifest
        if not st.at_end:
            state = f"loading {st.progress:.0%}"
        elif st.sealed:
            state = "sealed"
        elif st.torn and not self.follow:  # a crash cut the last frame short: what came before is shown
            state = f"torn tail, {st.torn_bytes:,} bytes not read"
        else:
            state = "live" if self.follow else "not sealed"
        shown = self.traces.count
        view = f"{shown:,}/{len(st.rows):,} traces" if self.traces.order is not None else f"{len(st.rows):,} traces"
        text = (f"{st.path.name}  {m.app or '-'}  {view}  {st.span_count:,} spans  [{state}]  "
                f"sort {self.sort_names[self.sort_at]}")
        if not self.filter_query.empty:
            text += f"  filter: {self.filter_query.text}"
        if not self.ranges.empty:
            text += f"  {self.ranges.describe()}"
        if st.damage:
            text += f"  {st.damage_note()}"
        if self.filter_note:
            text += f"  {self.filter_note}"
        self.query_one("#status", Static).update(printable(text))

    def say(self, text: str) -> None:
        self.query_one("#message", Static).update(printable(text))

    # --- the filter box ------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        self.query_one("#hint").display = True
        box.value = self.draft or self.filter_query.text
        box.cursor_position = len(box.value)
        box.focus()
        self._hint(box.value)

    @on(Input.Changed, "#filter")
    def _typed(self, event: Input.Changed) -> None:
        self._hint(event.value)

    def _hint(self, value: str) -> None:
        _prefix, found = candidates(self._vocab, value)
        text = ("Tab completes: " + "  ".join(found[:12]) + ("  …" if len(found) > 12 else "")) if found else \
            "Enter applies, Esc closes; ? lists fields and operators"
        self.query_one("#hint", Static).update(printable(text))

    @on(Input.Submitted, "#filter")
    def _submitted(self, event: Input.Submitted) -> None:
        self._close_box(event.input)
        self.apply_filter(event.value)

    def _close_box(self, box: Input) -> None:
        box.display = False
        self.query_one("#hint").display = False
        self.traces.focus()

    def action_clear(self) -> None:
        for wid in ("#filter", "#range"):
            box = self.query_one(wid, Input)
            if box.display:
                self._close_box(box)
                return
        if self.filtered:
            self.ranges = Ranges()
            self.apply_filter("")

    def apply_filter(self, text: str) -> None:
        """Parse and run a filter; a bad query leaves the list as it was and says why."""
        try:
            query = parse_query(text)
        except QueryError as exc:
            self.draft = text  # `/` reopens with it, to fix rather than retype
            self.say(f"filter error: {exc}")
            return
        self.draft = ""
        self.say("")
        self.filter_query = query
        self.post_message(self.FilterChanged(query))
        self._run_filter()

    def set_ranges(self, ranges: Ranges) -> None:
        self.ranges = ranges
        self._run_filter()

    def _run_filter(self) -> None:
        self._filter_serial += 1
        if not self.filtered:
            self.filter_note = ""
            self._apply_sort()
            self.traces.set_order(self.traces.order)
            self._update_status()
            return
        flt = TraceFilter(self.store, self.filter_query, self.ranges)
        if flt.quick:
            found = flt.run()
            self.filter_note = f"{len(found):,} match"
            self.traces.set_order(self._sorted(found))
            self._update_status()
        else:
            self.filter_note = "filtering…"
            self.traces.set_order(flt.empty_order())
            self._update_status()
            self._filter_big(flt, self._filter_serial)

    @work(thread=True, exclusive=True, group="filter")
    def _filter_big(self, flt: TraceFilter, serial: int) -> None:
        worker = get_current_worker()
        last = time.monotonic()

        def stop() -> bool:
            return worker.is_cancelled or serial != self._filter_serial
        for found, progress in flt.run_steps(stop):
            if time.monotonic() - last > 0.3:
                last = time.monotonic()
                self.app.call_from_thread(self._filter_progress, serial, found, f"filtering {progress:.0%}…")
        if not stop():
            found = flt.result()
            self.app.call_from_thread(self._filter_progress, serial, self._sorted(found),
                                      f"{len(found):,} match", True)

    def _filter_progress(self, serial: int, found: np.ndarray | None, note: str, done: bool = False) -> None:
        if serial != self._filter_serial:
            return
        lst = self.traces
        cursor = lst.cursor
        lst.order = found
        lst.refresh_rows()
        lst.cursor = min(cursor, max(0, lst.count - 1))
        self.filter_note = note
        self._update_status()
        if self.chart.display:
            self._chart()

    # --- ranges and the chart ------------------------------------------------------------

    def action_ranges(self) -> None:
        box = self.query_one("#range", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#range")
    def _range_submitted(self, event: Input.Submitted) -> None:
        try:
            ranges = parse_ranges(event.value)
        except UsageError as exc:
            self.say(str(exc))
            return
        self._close_box(event.input)
        self.say("")
        self.set_ranges(ranges)

    def action_chart(self) -> None:
        chart = self.chart
        show = not chart.display
        chart.display = show
        self.query_one("#chart-legend").display = show
        if show:
            self._chart()
            chart.focus()
        else:
            self.traces.focus()

    def _chart(self) -> None:
        import numpy as np

        st = self.store
        n = st.count
        order = self.traces.order
        rows = np.arange(n) if order is None else order
        lo = st.table.columns.lo[:n]
        start = lo[rows] - st.t0
        dur = st.table.columns.hi[:n][rows] - lo[rows]
        errors = st.table.columns.errors[:n][rows] > 0
        self.chart.show(ChartData(start.astype(np.int64), dur.astype(np.int64), errors))

    def on_duration_chart_closed(self, event: DurationChart.Closed) -> None:
        if self.chart.display:
            self.action_chart()

    def on_duration_chart_selected(self, event: DurationChart.Selected) -> None:
        self.set_ranges(event.ranges)
        self.traces.focus()

    # --- sorting, flags and the other views ------------------------------------------------

    def action_sort(self) -> None:
        self.sort_at = (self.sort_at + 1) % len(self.sort_names)
        if not self.filtered:
            self._apply_sort()
            self.traces.set_order(self.traces.order)
        else:
            self._run_filter()
        self._update_status()

    def _sorted(self, indices: np.ndarray | None) -> np.ndarray | None:
        return self.store.sorted_order(self.sort_names[self.sort_at], indices)

    def _apply_sort(self) -> None:
        self.traces.order = self._sorted(None)

    def action_next_flagged(self, direction: int) -> None:
        import numpy as np

        lst = self.traces
        flagged = self.store.flagged(lst.marks)
        if lst.order is not None:
            flagged = flagged[lst.order]
        start = lst.cursor + direction
        if direction > 0:
            hits = np.flatnonzero(flagged[start:])
            to = start + int(hits[0]) if len(hits) else None
        else:
            hits = np.flatnonzero(flagged[: max(0, start + 1)])
            to = int(hits[-1]) if len(hits) else None
        if to is None:
            self.say("no more traces with errors, faults or divergences that way")
        else:
            lst.move_to(to)

    def action_diff(self) -> None:
        row = self.traces.current
        open_diff = getattr(self.app, "open_diff", None)
        if open_diff is not None:
            open_diff(row.trace if row else None)

    def action_fleet(self) -> None:
        self.post_message(self.OpenFleet())

    def action_causal(self) -> None:
        row = self.traces.current
        if row is not None:
            self.post_message(self.OpenCausal(row.trace))
