"""The trace view: one trace as a waterfall per node lane or as a space-time diagram.

The waterfall draws each node's spans against that node's own clock (local times can be
skewed between nodes, so bars of different lanes are not compared). The space-time view
orders events by the trace's happens-before graph — one row per event, one column per node,
arrows for messages — which is true whatever the clocks say. Selecting a span highlights its
causal past and future; the critical path is marked in both views.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Static

from edgetrace._records import Span, SpanKind
from edgetrace.tui._graph import TraceGraph
from edgetrace.tui._query import Query, parse_query
from edgetrace.tui._trace_list import format_duration

__all__ = ["SpanChart", "TraceViewScreen", "span_line"]

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


def span_line(span: Span) -> str:
    """A one-line description of a span for status bars and lists."""
    status = f"  ERROR {span.error}" if span.failed else ""
    return f"{span.ref} {span.kind.value} {span.name} {format_duration(span.duration)}{status}"


def _fit(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


class SpanChart(ScrollView, can_focus=True):
    """Waterfall or space-time rendering of a `TraceGraph`, with a selected span."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "next span", show=False),
        Binding("k,up", "move(-1)", "prev span", show=False),
        Binding("g,home", "jump(0)", "first", show=False),
        Binding("G,end", "jump(-1)", "last", show=False),
    ]

    class Selected(Message):
        """The selected span changed."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, graph: TraceGraph, *, mode: str = "waterfall", id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph = graph
        self.mode = mode
        self.selected = 0
        self.matches: set[int] = set()
        self._rows: list[tuple[str, int]] = []
        self._build_rows()

    # --- layout -------------------------------------------------------------------------

    def _build_rows(self) -> None:
        g = self.graph
        if self.mode == "waterfall":
            rows: list[tuple[str, int]] = []
            for lane_no, node in enumerate(g.lanes):
                rows.append(("lane", lane_no))
                mine = sorted((i for i, s in enumerate(g.spans) if s.node == node), key=lambda i: g.spans[i].seq)
                rows.extend(("span", i) for i in mine)
            self._rows = rows
        else:
            self._rows = [("head", 0)] + [("span", i) for i in range(len(g.spans))]
        self.virtual_size = Size(self.size.width, len(self._rows))

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self._build_rows()
        self.scroll_to_selected()
        self.refresh()

    def row_of(self, index: int) -> int:
        return next((r for r, (kind, i) in enumerate(self._rows) if kind == "span" and i == index), 0)

    # --- selection ----------------------------------------------------------------------

    def select(self, index: int) -> None:
        if not self.graph.spans:
            return
        self.selected = max(0, min(len(self.graph.spans) - 1, index))
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
        spans_rows = [i for kind, i in self._rows if kind == "span"]
        if not spans_rows:
            return
        at = spans_rows.index(self.selected) if self.selected in spans_rows else 0
        self.select(spans_rows[max(0, min(len(spans_rows) - 1, at + delta))])

    def action_jump(self, where: int) -> None:
        spans_rows = [i for kind, i in self._rows if kind == "span"]
        if spans_rows:
            self.select(spans_rows[-1] if where < 0 else spans_rows[0])

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
        if g.spans[i].failed or g.spans[i].kind is SpanKind.FAULT:
            return STYLES["error"]
        if i in self.matches:
            return STYLES["match"]
        return STYLES["plain"]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        row = int(self.scroll_offset.y) + y
        if not 0 <= row < len(self._rows):
            return Strip.blank(width)
        kind, i = self._rows[row]
        segs = self._waterfall(kind, i, width) if self.mode == "waterfall" else self._spacetime(kind, i, width)
        return Strip(segs, width).crop(0, width)

    def _waterfall(self, kind: str, i: int, width: int) -> list[Segment]:
        g = self.graph
        if kind == "lane":
            node = g.lanes[i]
            count = sum(1 for s in g.spans if s.node == node)
            return [Segment(_fit(f"{node}  ({count} spans, local clock)", width), STYLES["lane"])]
        s = g.spans[i]
        origin = g.origin[s.node]
        extent = max(1, max((sp.end - g.origin[sp.node] for sp in g.spans), default=1))
        label_w = min(34, max(16, width // 2 - 4))
        times_w = 19
        bar_w = max(4, width - label_w - times_w - 2)
        crit = "*" if i in g.critical_set else " "
        label = _fit(f"{crit}{s.seq:>4} {s.kind.value:<9} {s.name}", label_w)
        lo = int((s.start - origin) / extent * bar_w)
        hi = max(lo + 1, int((s.end - origin) / extent * bar_w))
        lo = min(lo, bar_w - 1)
        hi = min(hi, bar_w)
        style = self._style_of(i)
        bar_style = STYLES["critical"] if (i in g.critical_set and style is STYLES["plain"]) else style
        if i == self.selected:
            bar_style = STYLES["selected"]
        times = f"+{format_duration(s.start - origin):>8} {format_duration(s.duration):>8} "
        return [
            Segment(label, style),
            Segment(" "),
            Segment(" " * lo, STYLES["dim"]),
            Segment("█" * (hi - lo), bar_style),
            Segment(" " * (bar_w - hi)),
            Segment(" " + times[: times_w]),
        ]

    def _spacetime(self, kind: str, i: int, width: int) -> list[Segment]:
        g = self.graph
        n = max(1, len(g.lanes))
        lane_w = max(3, min(14, (width - 22) // n))
        lanes_w = lane_w * n
        label_w = max(0, width - lanes_w - 1)
        if kind == "head":
            text = "".join(_fit(node, lane_w - 1).center(lane_w)[:lane_w] for node in g.lanes)
            return [Segment(text, STYLES["lane"]), Segment(" " + _fit("event (causal order)", label_w), STYLES["lane"])]
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
        label = _fit(f"{crit}{s.kind.value} {s.name} {s.ref}", label_w)
        segs.append(Segment(" "))
        segs.append(Segment(label, style))
        return segs


class TraceViewScreen(Screen[None]):
    """One trace: chart, a status line about the selected span, and the key hints."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v,t", "toggle_view", "waterfall/space-time"),
        Binding("enter", "detail", "span detail"),
        Binding("p", "provenance", "provenance"),
        Binding("n", "next_match(1)", "next match"),
        Binding("N", "next_match(-1)", "prev match"),
        Binding("escape", "back", "back"),
    ]

    class OpenDetail(Message):
        """The user asked for the detail of a span."""

        def __init__(self, graph: TraceGraph, index: int) -> None:
            super().__init__()
            self.graph = graph
            self.index = index

    def __init__(self, graph: TraceGraph, *, query: Query | None = None, mode: str = "waterfall",
                 select: str | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.filter = query or parse_query("")
        self.mode = mode
        self.initial = select
        self._note: tuple[int, str] = (-1, "")

    def compose(self) -> ComposeResult:
        yield Static(id="trace-title", markup=False)
        yield SpanChart(self.graph, mode=self.mode, id="chart")
        yield Static(id="span-info", markup=False)
        yield Footer()

    @property
    def chart(self) -> SpanChart:
        return self.query_one(SpanChart)

    def on_mount(self) -> None:
        g = self.graph
        chart = self.chart
        if not self.filter.empty:
            chart.matches = {i for i, s in enumerate(g.spans) if self.filter.matches_span(s, g)}
        self._title()
        start = g.index_of(self.initial) if self.initial else None
        chart.select(start if start is not None else 0)
        chart.focus()

    def on_span_chart_selected(self, event: SpanChart.Selected) -> None:
        # a provenance step selects a span and explains why; keep that note on screen.
        index, note = self._note
        self._info(event.index, note if index == event.index else "")
        self._note = (-1, "")

    def _info(self, i: int, note: str = "") -> None:
        g = self.graph
        if not g.spans:
            self.query_one("#span-info", Static).update("this trace has no spans")
            return
        s = g.spans[i]
        line = (f"{span_line(s)}  past {bin(g.past[i]).count('1')} future {bin(g.future[i]).count('1')}"
                + ("  on critical path" if i in g.critical_set else ""))
        legend = "cyan past · magenta future · yellow * critical path · green filter match"
        self.query_one("#span-info", Static).update(line + "\n" + (note or legend))

    def action_toggle_view(self) -> None:
        chart = self.chart
        chart.set_mode("spacetime" if chart.mode == "waterfall" else "waterfall")
        self.mode = chart.mode
        self._title()

    def _title(self) -> None:
        g = self.graph
        crit_ns = sum(g.spans[i].duration for i in g.critical)
        self.query_one("#trace-title", Static).update(
            f"trace {g.trace}  {len(g.spans)} spans on {len(g.lanes)} nodes  "
            f"critical path {len(g.critical)} spans {format_duration(crit_ns)}  [{self.chart.mode}]"
        )

    def action_detail(self) -> None:
        self.post_message(self.OpenDetail(self.graph, self.chart.selected))

    def action_provenance(self) -> None:
        """Step back from a decision or action to what caused it."""
        g = self.graph
        i = self.chart.selected
        facts = g.provenance(i)
        if not facts:
            self._info(i, f"{g.spans[i].ref} has no recorded facts or model outputs in its past")
            return
        chain = " ← ".join(f"{g.spans[j].kind.value} {g.spans[j].name}" for j in facts[:4])
        self._note = (facts[0], f"provenance of {g.spans[i].ref}: {chain}")
        self.chart.select(facts[0])

    def action_next_match(self, direction: int) -> None:
        chart = self.chart
        if not chart.matches:
            self._info(chart.selected, "no filter matches in this trace (set a filter with / in the list)")
            return
        order = [i for kind, i in chart._rows if kind == "span"]
        at = order.index(chart.selected) if chart.selected in order else 0
        for step in range(1, len(order) + 1):
            j = order[(at + direction * step) % len(order)]
            if j in chart.matches:
                chart.select(j)
                return

    def action_back(self) -> None:
        self.app.pop_screen()
