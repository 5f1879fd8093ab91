"""The trace view: one trace as a waterfall tree on the common time axis, or as space-time.

The title says how long the trace took, its critical path, the clock offsets applied and
how many spans had to be moved to keep causality; under the chart, the selected span and a
legend of every mark. From a span: its detail (Enter), provenance across traces (`p`), the
other end of its message (`m`, into another trace if that is where it went; Esc comes
back), and the causal view of the whole session around it (`x`).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from edgetrace.tui._footer import KeyFooter
from edgetrace.tui._format import format_duration
from edgetrace.tui._graph import TraceGraph
from edgetrace.tui._query import Query, parse_query
from edgetrace.tui._span_chart import LEGEND, SpanChart, span_line
from edgetrace.tui._store import TraceStore
from edgetrace.tui._text import printable

__all__ = ["SpanChart", "TraceViewScreen", "span_line"]


class TraceViewScreen(Screen[None]):
    """One trace: chart, a status line about the selected span, and the key hints."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "detail", "detail"),
        Binding("v,t", "toggle_view", "view"),
        Binding("p", "provenance", "provenance"),
        Binding("m", "follow", "message"),
        Binding("x", "causal", "causal"),
        Binding("n", "next_match(1)", "next match", show=False),
        Binding("N", "next_match(-1)", "prev match", show=False),
        Binding("escape", "back", "back"),
    ]

    class OpenDetail(Message):
        """The user asked for the detail of a span."""

        def __init__(self, graph: TraceGraph, index: int) -> None:
            super().__init__()
            self.graph = graph
            self.index = index

    class OpenSpan(Message):
        """Show span `ref` in its own trace (the other end of a message, a provenance step)."""

        def __init__(self, trace: str, ref: str) -> None:
            super().__init__()
            self.trace = trace
            self.ref = ref

    class OpenCausal(Message):
        """The causal view of the session around span `ref`."""

        def __init__(self, ref: str) -> None:
            super().__init__()
            self.ref = ref

    def __init__(self, graph: TraceGraph, *, store: TraceStore | None = None, query: Query | None = None,
                 mode: str = "waterfall", select: str | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.store = store
        self.filter = query or parse_query("")
        self.mode = mode
        self.initial = select
        self._note: tuple[int, str] = (-1, "")
        self._follow_target: tuple[str, str] | None = None  # where `m` goes after a provenance step

    def compose(self) -> ComposeResult:
        yield Static(id="trace-title", markup=False)
        yield SpanChart(self.graph, mode=self.mode, id="chart")
        yield Static(id="span-info", markup=False)
        yield KeyFooter()

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
        chart.select(start if start is not None else (chart.span_rows[0] if chart.span_rows else 0))
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
        where = f"  at +{format_duration(g.t_start[i] - g.t0)}"
        moved = f" (moved +{format_duration(g.moved[i])} to keep causality)" if i in g.moved else ""
        line = (f"{span_line(s)}{where}{moved}  past {bin(g.past[i]).count('1')} future "
                f"{bin(g.future[i]).count('1')}" + ("  on critical path" if i in g.critical_set else ""))
        self.query_one("#span-info", Static).update(printable(line) + "\n" + printable(note or LEGEND[self.chart.mode]))

    def action_toggle_view(self) -> None:
        chart = self.chart
        chart.set_mode("spacetime" if chart.mode == "waterfall" else "waterfall")
        self.mode = chart.mode
        self._title()
        self._info(chart.selected)

    def _title(self) -> None:
        g = self.graph
        clocks = ""
        shifted = {n: off for n, off in g.offsets.items() if off}
        if shifted:
            clocks = "  clock " + ", ".join(f"{n} {'+' if o >= 0 else '−'}{format_duration(abs(o))}"
                                            for n, o in sorted(shifted.items())[:3])
            if len(shifted) > 3:
                clocks += " …"
        moved = f"  {len(g.moved)} moved" if g.moved else ""
        self.query_one("#trace-title", Static).update(printable(
            f"{g.trace}  {len(g.spans)} spans {len(g.lanes)} nodes  {format_duration(g.duration)}  "
            f"critical path {len(g.critical)} spans {format_duration(g.critical_ns)}{clocks}{moved}"
        ))

    def action_detail(self) -> None:
        self.post_message(self.OpenDetail(self.graph, self.chart.selected))

    def action_provenance(self) -> None:
        """Step back from the selected span to what it rests on, across traces."""
        g = self.graph
        i = self.chart.selected
        span = g.spans[i]
        if self.store is None:
            facts = g.provenance(i)
            if facts:
                self._note = (facts[0], f"provenance of {span.ref}: {g.spans[facts[0]].kind.value}")
                self.chart.select(facts[0])
            return
        from edgetrace.tui._provenance import also_rests_on, chain

        steps = chain(self.store, span)
        if not steps:
            self._info(i, f"{span.ref} rests on nothing recorded before it (an input, or a first step)")
            return
        text = " ← ".join([f"{span.kind.value} {span.name}"] + [
            f"{st.span.kind.value} {st.span.name}" + (f" [{st.span.trace}]" if st.span.trace != g.trace else "")
            for st in steps[:5]])
        extra = also_rests_on(self.store, span)
        if extra:
            text += "   also read: " + ", ".join(f"{s.name} ({s.ref})" for s in extra[:2])
        first = steps[0]
        if first.span.trace == g.trace and g.index_of(first.ref) is not None:
            j = g.index_of(first.ref)
            assert j is not None
            self._note = (j, f"provenance: {text}")
            self.chart.select(j)
        else:
            self._info(i, f"provenance: {text}  — {first.why} {first.ref} in trace {first.span.trace}: m opens it")
            self._follow_target = (first.span.trace, first.ref)

    def action_follow(self) -> None:
        """To the other end of the selected span's message: its sender, or its receiver."""
        g = self.graph
        i = self.chart.selected
        span = g.spans[i]
        pending = self._follow_target
        if pending is not None:
            self._follow_target = None
            self.post_message(self.OpenSpan(*pending))
            return
        if self.store is None:
            return
        from edgetrace.tui._causality import counterparts

        at = self.store.span_index(span.ref)
        if at is None:
            return
        cause, kids = counterparts(self.store, at)
        target = cause if cause is not None else (kids[0] if kids else None)
        if target is None:
            self._info(i, f"{span.ref} sent and received no message")
            return
        (other,) = self.store.spans_at([target])
        if other.trace == g.trace and g.index_of(other.ref) is not None:
            j = g.index_of(other.ref)
            assert j is not None
            self._note = (j, f"{'sent by' if cause is not None else 'received by'} {other.ref}")
            self.chart.select(j)
        else:
            self.post_message(self.OpenSpan(other.trace, other.ref))

    def action_causal(self) -> None:
        self.post_message(self.OpenCausal(self.graph.spans[self.chart.selected].ref))

    def action_next_match(self, direction: int) -> None:
        chart = self.chart
        if not chart.matches:
            self._info(chart.selected, "no filter matches in this trace (set a filter with / in the list)")
            return
        order = chart.span_rows
        at = order.index(chart.selected) if chart.selected in order else 0
        for step in range(1, len(order) + 1):
            j = order[(at + direction * step) % len(order)]
            if j in chart.matches:
                chart.select(j)
                return

    def action_back(self) -> None:
        self.app.pop_screen()
