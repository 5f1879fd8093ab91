"""The first screen: one row per trace, sortable and filterable, drawn line by line.

`TraceList` is a Line-API widget (`ScrollView.render_line`): it formats only the rows on
screen, so a session of a million spans costs the same to draw as one of ten. Rows come
from a `TraceStore` that a background thread keeps filling (the rest of a large file, or
records a live writer is still appending).
"""

from __future__ import annotations

import time
from array import array
from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from edgetrace._errors import EdgeTraceError
from edgetrace.tui._query import Query, QueryError, parse_query
from edgetrace.tui._store import TraceStore
from edgetrace.tui._trace_table import SORTS, TraceRow

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TraceList", "TraceListScreen", "format_duration"]

#: The background reader starts this long after the first screen is drawn.
LOAD_DELAY_S = 0.3
#: Below this many spans a filter runs at once on the UI thread (tests see it finished).
SYNC_FILTER_SPANS = 50_000


def format_duration(ns: int) -> str:
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.0f}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f}ms"
    return f"{ns / 1e9:.2f}s"


def _fit(text: str, width: int) -> str:
    return text[:width].ljust(width) if len(text) <= width else text[: max(0, width - 1)] + "…"


class TraceList(ScrollView, can_focus=True):
    """A virtual list of trace rows with a cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor(1)", "down", show=False),
        Binding("k,up", "cursor(-1)", "up", show=False),
        Binding("g,home", "jump(0)", "first", show=False),
        Binding("G,end", "jump(-1)", "last", show=False),
        Binding("pagedown,ctrl+f,space", "page(1)", "page down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "page up", show=False),
        Binding("enter", "open", "open trace"),
    ]

    class Opened(Message):
        """The user chose a trace to look into."""

        def __init__(self, trace: str) -> None:
            super().__init__()
            self.trace = trace

    def __init__(self, store: TraceStore, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.order: np.ndarray | None = None  # row numbers shown; None: every row in arrival order
        self.cursor = 0
        self.marks: set[str] = set()  # traces flagged by a diff
        self._styles = {
            "row": Style(),
            "cursor": Style(reverse=True, bold=True),
            "error": Style(color="red"),
            "mark": Style(color="yellow", bold=True),
        }

    # --- data ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return self.store.count if self.order is None else len(self.order)

    def row_at(self, i: int) -> TraceRow | None:
        if not 0 <= i < self.count:
            return None
        return self.store.row(i if self.order is None else int(self.order[i]))

    @property
    def current(self) -> TraceRow | None:
        return self.row_at(self.cursor)

    def refresh_rows(self) -> None:
        self.virtual_size = Size(self.size.width, self.count)
        self.cursor = min(self.cursor, max(0, self.count - 1))
        self.refresh()

    def set_order(self, order: np.ndarray | None) -> None:
        self.order = order
        self.cursor = 0
        self.scroll_to(y=0, animate=False)
        self.refresh_rows()

    # --- drawing ------------------------------------------------------------------------

    @staticmethod
    def header(width: int) -> str:
        return _line(width, " ", "trace", "root", "nodes", "spans", "duration", "decision", "acts")

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.size.width
        row = self.row_at(index)
        if row is None:
            return Strip.blank(width)
        flag = row.flags + ("≠" if row.trace in self.marks else " ")
        text = _line(width, flag, row.trace, f"{row.root_kind} {row.root_name}", str(len(row.nodes)),
                     str(row.spans), format_duration(row.duration), row.decision or "-", row.acts or "-")
        if index == self.cursor:
            style = self._styles["cursor"]
        elif row.trace in self.marks:
            style = self._styles["mark"]
        elif row.errors:
            style = self._styles["error"]
        else:
            style = self._styles["row"]
        return Strip([Segment(text, style)], width)

    # --- movement -----------------------------------------------------------------------

    def move_to(self, i: int) -> None:
        if not self.count:
            return
        self.cursor = max(0, min(self.count - 1, i))
        height = max(1, self.size.height)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_jump(self, where: int) -> None:
        self.move_to(self.count - 1 if where < 0 else where)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.size.height - 1))

    def action_open(self) -> None:
        row = self.current
        if row is not None:
            self.post_message(self.Opened(row.trace))

    def on_resize(self) -> None:
        self.refresh_rows()


def _line(width: int, flag: str, trace: str, root: str, nodes: str, spans: str, dur: str,
          decision: str, acts: str) -> str:
    # fixed columns first; trace and root share what is left, so 80 columns stay readable.
    fixed = f" {nodes:>5} {spans:>6} {dur:>9} {_fit(decision, 9)} {_fit(acts, 8)}"
    rest = max(10, width - len(fixed) - 4)
    tw = max(8, rest * 11 // 20)
    return f"{flag:<3} {_fit(trace, tw)} {_fit(root, rest - tw - 1)}{fixed}"[:width].ljust(width)


class TraceListScreen(Screen[None]):
    """Trace list, status line and filter box for one session."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "filter"),
        Binding("s", "sort", "sort"),
        Binding("n", "next_flagged(1)", "next flagged"),
        Binding("N", "next_flagged(-1)", "prev flagged"),
        Binding("d", "diff", "diff", show=False),
        Binding("escape", "clear", "clear filter", show=False),
    ]

    class FilterChanged(Message):
        """The filter query changed (the trace view highlights matching spans with it)."""

        def __init__(self, query: Query) -> None:
            super().__init__()
            self.query = query

    class Unreadable(Message):
        """Reading on found the session damaged: the app ends with the error, as `show` would."""

        def __init__(self, error: EdgeTraceError) -> None:
            super().__init__()
            self.error = error

    def __init__(self, store: TraceStore, *, follow: bool = True, marks: set[str] | None = None) -> None:
        super().__init__()
        self.store = store
        self.follow = follow
        self.filter_query = parse_query("")
        self.sort_names = list(SORTS)
        self.sort_at = 0
        self.filter_note = ""
        self._initial_marks = marks or set()
        self._filter_serial = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="list-box"):
            yield Static(id="status", markup=False)
            yield Input(placeholder="filter: kind=act without after(kind=infer)   (Enter apply, Esc close)",
                        id="filter")
            yield Static(id="list-header", markup=False)
            yield TraceList(self.store, id="traces")
            yield Static(id="message", markup=False)
        yield Footer()

    @property
    def traces(self) -> TraceList:
        return self.query_one(TraceList)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.traces.marks = set(self._initial_marks)
        if self.store.rows:
            self.traces.refresh_rows()
        self.traces.focus()
        self._update_status()
        if self.follow and not (self.store.at_end and self.store.sealed):
            # the first screen first: the reader competes with the UI for the GIL.
            self.set_timer(LOAD_DELAY_S, self._load)

    def on_resize(self) -> None:
        self.query_one("#list-header", Static).update(TraceList.header(self.size.width))

    # --- background loading and live follow --------------------------------------------

    @work(thread=True, exclusive=True, group="load")
    def _load(self) -> None:
        worker = get_current_worker()
        last_paint = 0.0
        while not worker.is_cancelled:
            try:
                added = self.store.scan(budget_s=0.05)
            except EdgeTraceError as exc:
                self.post_message(self.Unreadable(exc))
                return
            now = time.monotonic()
            if added and now - last_paint > 0.25:
                last_paint = now
                self.app.call_from_thread(self._grown)
            if self.store.at_end:
                if added:
                    self.app.call_from_thread(self._grown)
                if self.store.sealed:
                    break
                time.sleep(0.5)  # a live writer: poll for what it appends next
        self.app.call_from_thread(self._grown)

    def _grown(self) -> None:
        lst = self.traces
        if lst.order is not None and not self.filter_query.empty:
            pass  # a filtered view is recomputed when the filter is applied again
        elif lst.order is not None:
            self._apply_sort()
        lst.refresh_rows()
        self._update_status()

    def _update_status(self) -> None:
        st = self.store
        m = st.manifest
        if st.at_end:
            state = "sealed" if st.sealed else "live: following"
        else:
            state = f"loading {st.progress:.0%}"
        shown = self.traces.count
        name = st.path.name
        view = f"{shown:,}/{len(st.rows):,} traces" if self.traces.order is not None else f"{len(st.rows):,} traces"
        text = (f"{name}  app {m.app or '-'}  {view}  {st.span_count:,} spans  [{state}]  "
                f"sort {self.sort_names[self.sort_at]}")
        if not self.filter_query.empty:
            text += f"  filter: {self.filter_query.text}"
        if self.filter_note:
            text += f"  {self.filter_note}"
        self.query_one("#status", Static).update(text)

    def say(self, text: str) -> None:
        self.query_one("#message", Static).update(text)

    # --- actions ------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.filter_query.text
        box.focus()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            self.traces.focus()
            return
        if not self.filter_query.empty:
            self.apply_filter("")

    def action_sort(self) -> None:
        self.sort_at = (self.sort_at + 1) % len(self.sort_names)
        if self.filter_query.empty:
            self._apply_sort()
            self.traces.set_order(self.traces.order)
        else:
            self.apply_filter(self.filter_query.text)
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
        if hasattr(self.app, "open_diff"):
            self.app.open_diff(row.trace if row else None)

    @on(Input.Submitted, "#filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.traces.focus()
        self.apply_filter(event.value)

    def apply_filter(self, text: str) -> None:
        """Parse and run a filter; a bad query leaves the list as it was and says why."""
        try:
            query = parse_query(text)
        except QueryError as exc:
            self.say(f"filter error: {exc}")
            return
        self.say("")
        self.filter_query = query
        self.post_message(self.FilterChanged(query))
        self._filter_serial += 1
        if query.empty:
            self.filter_note = ""
            self._apply_sort()
            self.traces.set_order(self.traces.order)
            self._update_status()
            return
        if self.store.span_count <= SYNC_FILTER_SPANS:
            found = array("i", (row for row, g in self.store.iter_rows_graphs() if query.matches_trace(g)))
            self.filter_note = f"{len(found)} match"
            self.traces.set_order(self._sorted(_as_order(found)))
            self._update_status()
        else:
            self.filter_note = "filtering…"
            self.traces.set_order(_as_order(array("i")))
            self._update_status()
            self._filter_big(query, self._filter_serial)

    @work(thread=True, exclusive=True, group="filter")
    def _filter_big(self, query: Query, serial: int) -> None:
        worker = get_current_worker()
        found = array("i")
        last = time.monotonic()
        graphs = self.store.iter_rows_graphs(stop=lambda: worker.is_cancelled or serial != self._filter_serial)
        for seen, (row, g) in enumerate(graphs, 1):
            if query.matches_trace(g):
                found.append(row)
            if time.monotonic() - last > 0.3:
                last = time.monotonic()
                pct = seen / max(1, self.store.count)
                self.app.call_from_thread(self._filter_progress, serial, _as_order(found),
                                          f"filtering {pct:.0%}…")
        if serial == self._filter_serial and not worker.is_cancelled:
            self.app.call_from_thread(self._filter_progress, serial, self._sorted(_as_order(found)),
                                      f"{len(found)} match", True)

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


def _as_order(rows: array[int]) -> np.ndarray:
    """A copy of row numbers as the list's order array (the source may keep growing)."""
    import numpy as np

    return np.frombuffer(rows[:], dtype=np.int32) if len(rows) else np.zeros(0, np.int32)
