"""The causal view: a set of spans from every trace of a session, one lane per node.

Opened around a span (`x` in the list or a trace), it shows that span's causal past and
future across all traces within a time window, with the concurrent steps of the nodes they
touch; opened on a set of refs (`edgetrace explore SESSION --focus REF[,REF...]`, or
`CausalViewScreen(store, refs, focus=ref)` — the cut of a finding), it shows exactly those.
Rows are in causal order (a Lamport numbering of the session), messages between shown spans
are arrows, and relative to the focus each row is marked:

    ◆ focus   ◂ causal past (cyan)   ▸ causal future (magenta)   · concurrent
    ⚠ a race: a state write and another node's read or write of the same key, concurrent

Enter opens the selected span in its trace, `m` goes to the other end of its message (the
view re-centres when that is not shown), `c` makes the selected span the focus, `+`/`-`
widen or narrow the window, `r` jumps to the next race.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from edgetrace._errors import UsageError
from edgetrace.tui._causality import (
    Race,
    axis_times,
    counterparts,
    neighbourhood,
    races,
    relate,
    session_graph,
)
from edgetrace.tui._footer import KeyFooter
from edgetrace.tui._format import format_at, format_duration
from edgetrace.tui._span_chart import KIND_MARK
from edgetrace.tui._span_columns import KINDS
from edgetrace.tui._store import TraceStore
from edgetrace.tui._text import fit, printable

__all__ = ["CAUSAL_LEGEND", "CausalChart", "CausalViewScreen"]

CAUSAL_LEGEND = ("◆ focus  ◂ past (cyan)  ▸ future (magenta)  · concurrent  ─▶ message  ⚠ race  "
                 "I M D S R g p A l F o kinds")

_STYLE = {
    "plain": Style(),
    "dim": Style(dim=True),
    "lane": Style(bold=True, underline=True),
    "focus": Style(bold=True, underline=True),
    "selected": Style(reverse=True, bold=True),
    "past": Style(color="cyan"),
    "future": Style(color="magenta"),
    "race": Style(color="yellow", bold=True),
    "error": Style(color="red", bold=True),
}


def abbreviate(name: str, width: int) -> str:
    """A node id in `width` cells, keeping its end (tractor-07 → …r-07), where ids differ."""
    name = printable(name)
    if len(name) <= width:
        return name
    return "…" + name[-(width - 1):] if width > 1 else name[:width]


class CausalChart(ScrollView, can_focus=True):
    """Rows of spans in causal order across node lanes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "down", show=False),
        Binding("k,up", "move(-1)", "up", show=False),
        Binding("g,home", "jump(0)", "first", show=False),
        Binding("G,end", "jump(-1)", "last", show=False),
    ]

    class Selected(Message):
        def __init__(self, row: int) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[dict[str, object]] = []
        self.lanes: list[str] = []
        self.cursor = 0

    def show(self, rows: list[dict[str, object]], lanes: list[str], cursor: int) -> None:
        self.rows, self.lanes = rows, lanes
        self.cursor = max(0, min(cursor, len(rows) - 1))
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        row = self.cursor + 1
        height = max(1, self.size.height)
        top = int(self.scroll_offset.y)
        if row < top + 1:
            self.scroll_to(y=max(0, row - 1), animate=False)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False)

    def move_to(self, i: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, i))
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Selected(self.cursor))

    def action_move(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_jump(self, where: int) -> None:
        self.move_to(len(self.rows) - 1 if where < 0 else 0)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        at = int(self.scroll_offset.y) + y
        n = max(1, len(self.lanes))
        lane_w = max(3, min(12, (width - 34) // n))
        lanes_w = lane_w * n
        label_w = max(0, width - lanes_w - 1)
        if at == 0:
            head = "".join(abbreviate(node, lane_w - 1).center(lane_w)[:lane_w] for node in self.lanes)
            return Strip([Segment(head, _STYLE["lane"]),
                          Segment(" " + fit("span (causal order) · ref · time [other trace]", label_w),
                                  _STYLE["lane"])], width)
        k = at - 1
        if not 0 <= k < len(self.rows):
            return Strip.blank(width, _STYLE["plain"])
        r = self.rows[k]
        rel = str(r["rel"])
        style = _STYLE["selected"] if k == self.cursor else _STYLE.get(rel, _STYLE["plain"])
        if rel == "focus" and k != self.cursor:
            style = _STYLE["focus"]
        centre = [x * lane_w + lane_w // 2 for x in range(n)]
        cells = [" "] * lanes_w
        styles = [_STYLE["dim"]] * lanes_w
        for c in centre:
            cells[c] = "│"
        me = int(r["lane"])  # type: ignore[call-overload]
        src = r["from_lane"]
        if isinstance(src, int) and src != me:
            a, b = sorted((centre[src], centre[me]))
            for x in range(a + 1, b):
                cells[x], styles[x] = "─", style
            cells[centre[src]], styles[centre[src]] = "┼", style
            if src < me:
                cells[centre[me] - 1], styles[centre[me] - 1] = "▶", style
            else:
                cells[centre[me] + 1], styles[centre[me] + 1] = "◀", style
        cells[centre[me]] = str(r["mark"])
        styles[centre[me]] = _STYLE["error"] if r["failed"] and k != self.cursor else style
        segs = [Segment(c, st) for c, st in zip(cells, styles, strict=True)]
        glyph = {"focus": "◆", "past": "◂", "future": "▸"}.get(rel, "·")
        race = "⚠" if r["race"] else " "
        segs.append(Segment(" ", _STYLE["plain"]))
        segs.append(Segment(race, _STYLE["race"] if r["race"] and k != self.cursor else style))
        segs.append(Segment(fit(f"{glyph}{r['label']}", max(0, label_w - 1)), style))
        return Strip(segs, width).crop(0, width)


class CausalViewScreen(Screen[None]):
    """Spans of every trace around a focus (or exactly a given set), in causal order."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "open in trace"),
        Binding("m", "follow", "message"),
        Binding("c", "recentre", "focus here"),
        Binding("r", "next_race", "next race"),
        Binding("plus,equals_sign", "window(2)", "wider", show=False),
        Binding("minus", "window(0.5)", "narrower", show=False),
        Binding("backspace", "history_back", "previous focus", show=False),
        Binding("escape", "back", "back"),
    ]

    class OpenSpan(Message):
        """Show span `ref` in its trace."""

        def __init__(self, trace: str, ref: str) -> None:
            super().__init__()
            self.trace = trace
            self.ref = ref

    def __init__(self, store: TraceStore, refs: list[str] | None = None, *, focus: str | None = None,
                 window_ns: int | None = None) -> None:
        super().__init__()
        if not refs and not focus:
            raise UsageError("a causal view needs a focus span or a set of span refs")
        self.store = store
        self.given = list(refs) if refs else None
        self.focus_ref = focus or (refs[0] if refs else "")
        self.window_ns = window_ns
        self.spans: np.ndarray = np.zeros(0, np.int64)
        self.race_list: list[Race] = []
        self.history: list[tuple[int, list[str] | None, int]] = []  # earlier foci, for backspace
        self.focus_span = self._index(self.focus_ref)

    def _index(self, ref: str) -> int:
        i = self.store.span_index(ref)
        if i is None:
            raise UsageError(f"{self.store.path}: no span {ref!r} in this session (expected NODE:SEQ of a "
                             "recorded span)")
        return i

    def compose(self) -> ComposeResult:
        yield Static(id="causal-title", markup=False)
        yield CausalChart(id="causal")
        yield Static(id="causal-info", markup=False)
        yield KeyFooter()

    @property
    def chart(self) -> CausalChart:
        return self.query_one(CausalChart)

    def on_mount(self) -> None:
        self._build()
        self.chart.focus()

    def _build(self, cursor_span: int | None = None) -> None:
        store = self.store
        session_graph(store)  # built once per scan (a Lamport numbering of every span)
        if self.given is not None:
            from edgetrace.tui._causality import _order

            idx = np.array(sorted({self._index(r) for r in self.given} | {self.focus_span}), np.int64)
            self.spans = _order(store, idx)
            past, future = relate(store, self.focus_span, self.spans)
            window = ""
        else:
            hood = neighbourhood(store, self.focus_span, window_ns=self.window_ns)
            self.spans, past, future = hood.spans, hood.past, hood.future
            self.window_ns = (hood.window[1] - hood.window[0]) // 2
            window = f"  ±{format_duration(self.window_ns)}"
        self.race_list = races(store, self.spans)
        in_race = {i for r in self.race_list for i in (r.a, r.b)}
        sp = store.table.spans
        names, nodes = store.table.names.text, store.table.nodes.text
        node_codes = sp.node[self.spans].tolist()
        lanes_codes = list(dict.fromkeys([int(sp.node[self.focus_span]), *node_codes]))
        lane_of = {c: k for k, c in enumerate(lanes_codes)}
        pos = {int(s): k for k, s in enumerate(self.spans.tolist())}
        cause = session_graph(store).cause
        start, _ = axis_times(store, self.spans)
        t0 = store.t0
        focus_trace = store.trace_at(int(sp.trace[self.focus_span]))
        rows: list[dict[str, object]] = []
        for k, i in enumerate(self.spans.tolist()):
            c = int(cause[i])
            kind = KINDS[int(sp.kind[i])]
            trace = store.trace_at(int(sp.trace[i]))
            rel = "focus" if i == self.focus_span else "past" if past[k] else "future" if future[k] else "concurrent"
            if c >= 0 and c in pos:
                from_lane: object = lane_of[int(sp.node[c])]
            else:
                from_lane = None
            sender = f" ⇠{nodes[int(sp.node[c])]}" if c >= 0 and c not in pos else ""
            other_trace = f"  [{trace}]" if trace != focus_trace else ""
            rows.append({
                "lane": lane_of[int(sp.node[i])], "from_lane": from_lane, "mark": KIND_MARK.get(kind, "?"),
                "rel": rel, "race": i in in_race, "failed": bool(sp.flags[i] & 1),
                "label": printable(f"{kind.value} {names[int(sp.name[i])]}{sender}  "
                                   f"{nodes[int(sp.node[i])]}:{int(sp.seq[i])} {format_at(int(start[k]) - t0)}"
                                   f"{other_trace}"),
            })
        traces = len({int(sp.trace[i]) for i in self.spans.tolist()})
        what = "cut" if self.given is not None else "around"
        self.query_one("#causal-title", Static).update(printable(
            f"causal view {what} {self.focus_ref} (trace {focus_trace})  {len(rows)} spans on {len(lanes_codes)} "
            f"nodes across {traces} traces{window}  {len(self.race_list)} race{'s' if len(self.race_list) != 1 else ''}"))
        cursor = pos.get(cursor_span if cursor_span is not None else self.focus_span, 0)
        self.chart.show(rows, [nodes[c] for c in lanes_codes], cursor)
        self._info(cursor)

    def on_causal_chart_selected(self, event: CausalChart.Selected) -> None:
        self._info(event.row)

    def _info(self, k: int, note: str = "") -> None:
        if not len(self.spans):
            return
        i = int(self.spans[k])
        sp = self.store.table.spans
        names, nodes = self.store.table.names.text, self.store.table.nodes.text
        rel = self.chart.rows[k]["rel"] if self.chart.rows else ""
        partners = [r for r in self.race_list if i in (r.a, r.b)]
        race = ""
        if partners:
            r = partners[0]
            other = r.b if r.a == i else r.a
            race = (f"  ⚠ {r.kinds} race on {r.key} with {nodes[int(sp.node[other])]}:{int(sp.seq[other])}"
                    + (f" (+{len(partners) - 1} more)" if len(partners) > 1 else ""))
        text = (f"{nodes[int(sp.node[i])]}:{int(sp.seq[i])} {KINDS[int(sp.kind[i])].value} "
                f"{names[int(sp.name[i])]}  {rel}{race}")
        self.query_one("#causal-info", Static).update(printable(text) + "\n" + printable(note or CAUSAL_LEGEND))

    def _selected(self) -> int:
        return int(self.spans[self.chart.cursor])

    def action_open(self) -> None:
        i = self._selected()
        t = self.store.table
        self.post_message(self.OpenSpan(t.trace_at(int(t.spans.trace[i])),
                                        f"{t.nodes.text[int(t.spans.node[i])]}:{int(t.spans.seq[i])}"))

    def _ref(self, i: int) -> str:
        t = self.store.table
        return f"{t.nodes.text[int(t.spans.node[i])]}:{int(t.spans.seq[i])}"

    def action_follow(self) -> None:
        i = self._selected()
        cause, kids = counterparts(self.store, i)
        target = cause if cause is not None else (kids[0] if kids else None)
        if target is None:
            self._info(self.chart.cursor, "this step sent and received no message")
            return
        shown = {int(s): k for k, s in enumerate(self.spans.tolist())}
        if target in shown:
            self.chart.move_to(shown[target])
        else:  # not in view: centre the view on it
            self._refocus(target)

    def _refocus(self, i: int) -> None:
        self.history.append((self.focus_span, self.given, self._selected()))
        self.focus_span, self.focus_ref = i, self._ref(i)
        self.given = None
        self._build()

    def action_recentre(self) -> None:
        self._refocus(self._selected())

    def action_history_back(self) -> None:
        if not self.history:
            self.app.pop_screen()
            return
        focus, given, cursor = self.history.pop()
        self.focus_span, self.focus_ref, self.given = focus, self._ref(focus), given
        self._build(cursor_span=cursor)

    def action_next_race(self) -> None:
        if not self.race_list:
            self._info(self.chart.cursor, "no races among these spans")
            return
        shown = self.spans.tolist()
        flagged = sorted({shown.index(i) for r in self.race_list for i in (r.a, r.b) if i in shown})
        later = [k for k in flagged if k > self.chart.cursor]
        self.chart.move_to(later[0] if later else flagged[0])

    def action_window(self, factor: float) -> None:
        if self.given is not None:
            self._info(self.chart.cursor, "a cut shows exactly its spans; c re-centres on one to see around it")
            return
        self.window_ns = max(1_000_000, int((self.window_ns or 1_000_000_000) * factor))
        self._build(cursor_span=self._selected())

    def action_back(self) -> None:
        self.app.pop_screen()
