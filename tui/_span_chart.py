"""The chart of one trace: a waterfall tree on the common time axis, or a space-time diagram.

Waterfall: one row per span of the trace's parent/child tree (collapsible), its bar placed
on one time axis for every node (clock offsets applied, see `TraceGraph`). Space-time: one
column per node and one row per event in causal order, messages drawn as arrows. Selecting a
span colours its causal past and future. Every marker reads without colour too:

    █ critical path   ▒ other span   ✗ error   ⚡ injected fault   ↦ moved later to keep
    causality   ▸ collapsed   ◀ ▶ message   I M D p g S R A l F o  the kinds in space-time
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from edgetrace._records import Span, SpanKind
from edgetrace.tui._format import format_duration
from edgetrace.tui._graph import TraceGraph
from edgetrace.tui._text import fit, printable
from edgetrace.tui._tree import TraceTree

__all__ = ["KIND_MARK", "LEGEND", "STYLES", "SpanChart", "span_line"]

KIND_MARK = {
    SpanKind.INPUT: "I", SpanKind.INFER: "M", SpanKind.DECIDE: "D", SpanKind.SEND: "S",
    SpanKind.RECV: "R", SpanKind.STATE_GET: "g", SpanKind.STATE_PUT: "p", SpanKind.ACT: "A",
    SpanKind.LOG: "l", SpanKind.FAULT: "F", SpanKind.OTEL: "o",
}

STYLES = {
    "plain": Style(),
    "dim": Style(dim=True),
    "lane": Style(bold=True, underline=True),
    "selected": Style(reverse=True, bold=True),
    "past": Style(color="cyan"),
    "future": Style(color="magenta"),
    "critical": Style(color="yellow", bold=True),
    "error": Style(color="red", bold=True),
    "match": Style(color="green", bold=True),
}

#: What every mark means (the trace view shows it under the chart).
LEGEND = {
    "waterfall": ("* █ critical path (yellow)  ▒ span  ✗ error (red)  ⚡ fault  ↦ moved for causality  "
                  "▸ folded · cyan past  magenta future  green match"),
    "spacetime": ("I input M infer D decide S send R recv g/p state get/put A act l log F fault o otel · "
                  "◀ ▶ message · * and yellow: critical path · ✗ error"),
}


def span_line(span: Span) -> str:
    """A one-line description of a span for status bars and lists."""
    status = f"  ERROR {span.error}" if span.failed else ""
    return printable(f"{span.ref} {span.kind.value} {span.name} {format_duration(span.duration)}{status}")


def _bad(span: Span) -> bool:
    return span.failed or span.kind is SpanKind.FAULT


class SpanChart(ScrollView, can_focus=True):
    """Waterfall tree or space-time rendering of a `TraceGraph`, with a selected span."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "fold", "fold"),
        Binding("j,down", "move(1)", "next span", show=False),
        Binding("k,up", "move(-1)", "prev span", show=False),
        Binding("g,home", "jump(0)", "first", show=False),
        Binding("G,end", "jump(-1)", "last", show=False),
        Binding("left,h", "collapse", "collapse", show=False),
        Binding("right,l", "expand", "expand", show=False),
        Binding("minus", "collapse_all", "collapse all", show=False),
        Binding("plus,equals_sign", "expand_all", "expand all", show=False),
    ]

    class Selected(Message):
        """The selected span changed."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, graph: TraceGraph, *, mode: str = "waterfall", id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph = graph
        self.span_tree = TraceTree(graph)
        self.mode = mode
        self.selected = 0
        self.matches: set[int] = set()
        self._rows: list[tuple[str, int, str]] = []
        self._build_rows()

    # --- layout -------------------------------------------------------------------------

    def _build_rows(self) -> None:
        g = self.graph
        if self.mode == "waterfall":
            self._rows = [("span", i, lead) for i, lead in self.span_tree.rows()]
        else:
            self._rows = [("head", 0, "")] + [("span", i, "") for i in range(len(g.spans))]
        self.virtual_size = Size(self.size.width, len(self._rows))

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self._build_rows()
        self.scroll_to_selected()
        self.refresh()

    @property
    def span_rows(self) -> list[int]:
        return [i for kind, i, _ in self._rows if kind == "span"]

    def row_of(self, index: int) -> int:
        return next((r for r, (kind, i, _) in enumerate(self._rows) if kind == "span" and i == index), 0)

    # --- selection ----------------------------------------------------------------------

    def select(self, index: int) -> None:
        if not self.graph.spans:
            return
        self.selected = max(0, min(len(self.graph.spans) - 1, index))
        if self.mode == "waterfall" and self.selected not in self.span_rows:
            self.span_tree.reveal(self.selected)
            self._build_rows()
        self.scroll_to_selected()
        self.refresh()
        self.post_message(self.Selected(self.selected))

    def scroll_to_selected(self) -> None:
        row = self.row_of(self.selected)
        height = max(1, self.size.height)
        top = int(self.scroll_offset.y)
        if row < top:
            self.scroll_to(y=max(0, row - 1), animate=False)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False)

    def action_move(self, delta: int) -> None:
        rows = self.span_rows
        if not rows:
            return
        at = rows.index(self.selected) if self.selected in rows else 0
        self.select(rows[max(0, min(len(rows) - 1, at + delta))])

    def action_jump(self, where: int) -> None:
        rows = self.span_rows
        if rows:
            self.select(rows[-1] if where < 0 else rows[0])

    def _refold(self) -> None:
        self._build_rows()
        if self.selected not in self.span_rows:
            self.selected = self.span_tree.visible_ancestor(self.selected)
        self.scroll_to_selected()
        self.refresh()
        self.post_message(self.Selected(self.selected))

    def action_fold(self) -> None:
        if self.mode == "waterfall":
            self.span_tree.toggle(self.selected)
            self._refold()

    def action_collapse(self) -> None:
        if self.mode != "waterfall":
            return
        i = self.selected
        if self.span_tree.has_children(i) and i not in self.span_tree.collapsed:
            self.span_tree.collapse(i)
            self._refold()
        elif self.graph.parent_of[i] >= 0:  # already folded, or a leaf: go to the parent
            self.select(self.graph.parent_of[i])

    def action_expand(self) -> None:
        if self.mode == "waterfall" and self.selected in self.span_tree.collapsed:
            self.span_tree.expand(self.selected)
            self._refold()

    def action_collapse_all(self) -> None:
        if self.mode == "waterfall":
            self.span_tree.collapse_all()
            self._refold()

    def action_expand_all(self) -> None:
        if self.mode == "waterfall":
            self.span_tree.expand_all()
            self._refold()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self._rows))

    # --- drawing ------------------------------------------------------------------------

    def _style_of(self, i: int) -> Style:
        g = self.graph
        if i == self.selected:
            return STYLES["selected"]
        sel = self.selected
        if g.past[sel] >> i & 1:
            return STYLES["past"]
        if g.future[sel] >> i & 1:
            return STYLES["future"]
        if _bad(g.spans[i]):
            return STYLES["error"]
        if i in self.matches:
            return STYLES["match"]
        return STYLES["plain"]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        row = int(self.scroll_offset.y) + y
        if not 0 <= row < len(self._rows):
            return Strip.blank(width, STYLES["plain"])
        kind, i, lead = self._rows[row]
        segs = self._waterfall(i, lead, width) if self.mode == "waterfall" else self._spacetime(kind, i, width)
        return Strip(segs, width).crop(0, width)

    def _mark(self, i: int) -> str:
        s = self.graph.spans[i]
        if s.kind is SpanKind.FAULT:
            return "⚡"
        if s.failed:
            return "✗"
        if i in self.graph.moved:
            return "↦"
        return " "

    def bar_columns(self, i: int, bar_w: int) -> tuple[int, int]:
        """The cells [lo, hi) span i's bar covers in a bar area `bar_w` wide: both grow with
        the span's common-axis start and end, so drawn order is time order."""
        g = self.graph
        extent = max(1, g.t1 - g.t0)
        lo = min(bar_w - 1, int((g.t_start[i] - g.t0) / extent * bar_w))
        hi = min(bar_w, int((g.t_end[i] - g.t0) / extent * bar_w) + 1)
        return lo, max(lo + 1, hi)

    def _waterfall(self, i: int, lead: str, width: int) -> list[Segment]:
        g = self.graph
        s = g.spans[i]
        times_w = 17
        label_w = min(48, max(22, width * 2 // 5))
        bar_w = max(4, width - label_w - times_w - 2)
        fold = "▸" if i in self.span_tree.collapsed else " "
        node = s.node if len(g.lanes) > 1 else ""
        text = f"{lead}{fold}{node + ' ' if node else ''}{s.kind.value} {s.name}"
        style = self._style_of(i)
        crit = i in g.critical_set
        lo, hi = self.bar_columns(i, bar_w)
        if i == self.selected:
            bar_style = STYLES["selected"]
        elif _bad(s):
            bar_style = STYLES["error"]
        elif crit:
            bar_style = STYLES["critical"]
        else:
            bar_style = style
        times = f"+{format_duration(g.t_start[i] - g.t0):>8} {format_duration(s.duration):>7}"
        mark_style = STYLES["error"] if _bad(s) else style
        return [
            Segment("*" if crit else " ", STYLES["critical"] if crit and i != self.selected else style),
            Segment(self._mark(i), mark_style),
            Segment(fit(text, label_w - 2), style),
            Segment(" ", STYLES["plain"]),
            Segment("·" * lo, STYLES["dim"]),
            Segment(("█" if crit else "▒") * (hi - lo), bar_style),
            Segment(" " * (bar_w - hi), STYLES["plain"]),
            Segment(" " + fit(times, times_w), STYLES["dim"] if style is STYLES["plain"] else style),
        ]

    def _spacetime(self, kind: str, i: int, width: int) -> list[Segment]:
        g = self.graph
        n = max(1, len(g.lanes))
        lane_w = max(3, min(14, (width - 22) // n))
        lanes_w = lane_w * n
        label_w = max(0, width - lanes_w - 1)
        if kind == "head":
            text = "".join(fit(node, lane_w - 1).center(lane_w)[:lane_w] for node in g.lanes)
            return [Segment(text, STYLES["lane"]), Segment(" " + fit("event (causal order)", label_w), STYLES["lane"])]
        s = g.spans[i]
        centre = [k * lane_w + lane_w // 2 for k in range(n)]
        cells = [" "] * lanes_w
        styles: list[Style] = [STYLES["dim"]] * lanes_w
        for c in centre:
            cells[c] = "│"
        me = g.lanes.index(s.node)
        style = self._style_of(i)
        cause = g.get(s.cause) if s.cause else None
        if cause is not None and cause.node != s.node:
            src = g.lanes.index(cause.node)
            a, b = sorted((centre[src], centre[me]))
            arrow_style = STYLES["critical"] if (i in g.critical_set and g.pos[cause.ref] in g.critical_set) else style
            for x in range(a + 1, b):
                cells[x], styles[x] = "─", arrow_style
            cells[centre[src]], styles[centre[src]] = "┼" if src != me else "│", arrow_style
            if src < me:
                cells[centre[me] - 1], styles[centre[me] - 1] = "▶", arrow_style
            else:
                cells[centre[me] + 1], styles[centre[me] + 1] = "◀", arrow_style
        cells[centre[me]] = KIND_MARK.get(s.kind, "?")
        mark_style = style
        if style is STYLES["plain"] and i in g.critical_set:
            mark_style = STYLES["critical"]
        styles[centre[me]] = mark_style
        segs = [Segment(c, st) for c, st in zip(cells, styles, strict=True)]
        crit = "*" if i in g.critical_set else " "
        label = fit(f"{crit}{self._mark(i).strip()}{s.kind.value} {s.name} {s.ref}", label_w)
        segs.append(Segment(" ", STYLES["plain"]))
        segs.append(Segment(label, style))
        return segs
