"""The trace list: one row per trace, drawn line by line.

`TraceList` is a Line-API widget (`ScrollView.render_line`): it formats only the rows on
screen, so a session of a million spans costs the same to draw as one of ten. Rows come
from a `TraceStore` that a background thread keeps filling. Each row shows when the trace
started on the common time axis, its root named by its input, and how long it took; rows
with errors are red and marked `E` (so they read without colour too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from edgetrace.tui._format import format_at, format_duration, root_label
from edgetrace.tui._store import TraceStore
from edgetrace.tui._text import fit, fit_right
from edgetrace.tui._trace_table import TraceRow

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ROW_STYLES", "TraceList", "format_duration", "list_header", "list_line", "row_label"]

ROW_STYLES = {
    "row": Style(),
    "cursor": Style(reverse=True, bold=True),
    "error": Style(color="red"),
    "mark": Style(color="yellow", bold=True),
}


def row_label(store: TraceStore, row: TraceRow) -> str:
    """The root of a trace named by its input (see `root_label`)."""
    attrs = store.table.arena.decode(row.root_attrs)
    return root_label(row.root_kind, row.root_name, row.node, attrs, row.trace)


def _columns(width: int) -> tuple[int, int, bool, bool]:
    """Widths of the trace and root columns, and whether nodes and acts fit."""
    show_nodes = width >= 100
    show_acts = width >= 72
    parts = 6 + show_nodes + show_acts  # flag start trace root spans duration decision [nodes] [acts]
    fixed = 3 + 8 + 5 + 8 + 8 + (3 if show_nodes else 0) + (8 if show_acts else 0) + parts
    rest = max(16, width - fixed)
    trace_w = min(28, max(10, rest // 2))
    return trace_w, max(6, min(72, rest - trace_w)), show_nodes, show_acts


def list_line(width: int, flag: str, start: str, trace: str, root: str, nodes: str, spans: str,
              dur: str, decision: str, acts: str) -> str:
    trace_w, root_w, show_nodes, show_acts = _columns(width)
    parts = [f"{flag:<3}", fit_right(start, 8), fit(trace, trace_w), fit(root, root_w)]
    if show_nodes:
        parts.append(fit_right(nodes, 3))
    parts += [fit_right(spans, 5), fit_right(dur, 8), fit(decision, 8)]
    if show_acts:
        parts.append(fit(acts, 8))
    return fit(" ".join(parts), width)


def list_header(width: int) -> str:
    return list_line(width, "", "start", "trace", "root (input)", "nod", "spans", "duration", "decision",
                     "acts")


class TraceList(ScrollView, can_focus=True):
    """A virtual list of trace rows with a cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "open"),
        Binding("j,down", "cursor(1)", "down", show=False),
        Binding("k,up", "cursor(-1)", "up", show=False),
        Binding("g,home", "jump(0)", "first", show=False),
        Binding("G,end", "jump(-1)", "last", show=False),
        Binding("pagedown,ctrl+f,space", "page(1)", "page down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "page up", show=False),
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

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.size.width
        row = self.row_at(index)
        if row is None:
            return Strip.blank(width, ROW_STYLES["row"])
        flag = row.flags + ("≠" if row.trace in self.marks else " ")
        text = list_line(width, flag, format_at(row.start - self.store.t0),
                         row.trace, row_label(self.store, row), str(len(row.nodes)), str(row.spans),
                         format_duration(row.duration), row.decision or "-", row.acts or "-")
        if index == self.cursor:
            style = ROW_STYLES["cursor"]
        elif row.trace in self.marks:
            style = ROW_STYLES["mark"]
        elif row.errors:
            style = ROW_STYLES["error"]
        else:
            style = ROW_STYLES["row"]
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
