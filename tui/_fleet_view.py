"""The fleet view: every node and every link of the session, to see where it hurts.

One table of nodes (spans, errors, timeouts, messages out and in, clock offset against the
reference node and how it was estimated) and one of links, drawn `sender ─▶ receiver`
(messages, one-way latency p50/p90/p99 on the common axis, call round trips, error replies,
timed-out calls). Enter on a node lists its traces (`node=NAME`), on a link the traces
with a message over it (`from=SENDER node=RECEIVER`).
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
from textual.widgets import Static

from edgetrace.tui._fleet import Fleet, LinkStats, NodeStats, fleet
from edgetrace.tui._footer import KeyFooter
from edgetrace.tui._format import format_duration
from edgetrace.tui._store import TraceStore
from edgetrace.tui._text import fit, printable

__all__ = ["FleetScreen", "FleetTable"]

_STYLE = {
    "plain": Style(),
    "head": Style(bold=True, underline=True),
    "cursor": Style(reverse=True, bold=True),
    "bad": Style(color="red"),
}

Row = tuple[str, object]


def _dur(ns: int | None) -> str:
    return "-" if ns is None else format_duration(ns)


def node_line(s: NodeStats, width: int) -> str:
    name_w = max(10, min(24, width - 62))
    clock = s.offset or "-"
    if s.method:
        clock += f" ({s.method})"
    return fit(f"  {fit(s.node, name_w)} {s.spans:>8,} {s.errors:>6,} {s.timeouts:>6,} {s.sent:>7,} "
               f"{s.received:>7,}  {clock}", width)


def node_head(width: int) -> str:
    name_w = max(10, min(24, width - 62))
    return fit(f"  {fit('NODE', name_w)} {'spans':>8} {'errors':>6} {'t/outs':>6} {'sent':>7} {'recvd':>7}  "
               f"clock offset (vs reference)", width)


#: Terminals at least this wide also show each link's clock difference (at 80 columns the
#: names keep the room; the nodes' offsets above say the same).
CLOCK_COLUMN_WIDTH = 100


def _delta(ns: int) -> str:
    return "0" if not ns else ("+" if ns > 0 else "-") + format_duration(abs(ns))


def link_line(s: LinkStats, width: int) -> str:
    link_w = max(14, min(40, width - 58 - (10 if width >= CLOCK_COLUMN_WIDTH else 0)))
    clock = f" {_delta(s.clock_delta):>9}" if width >= CLOCK_COLUMN_WIDTH else ""
    return fit(f"  {fit(f'{s.src} ─▶ {s.dst}', link_w)} {s.messages:>7,} {_dur(s.p50):>7} {_dur(s.p90):>7} "
               f"{_dur(s.p99):>7} {_dur(s.rtt_p50):>7} {s.errors:>5,} {s.timeouts:>5,}{clock}", width)


def link_head(width: int) -> str:
    link_w = max(14, min(40, width - 58 - (10 if width >= CLOCK_COLUMN_WIDTH else 0)))
    clock = f" {'rx clock':>9}" if width >= CLOCK_COLUMN_WIDTH else ""
    return fit(f"  {fit('LINK sender ─▶ receiver', link_w)} {'msgs':>7} {'p50':>7} {'p90':>7} {'p99':>7} "
               f"{'rtt p50':>7} {'errs':>5} {'t/out':>5}{clock}", width)


class FleetTable(ScrollView, can_focus=True):
    """Nodes, then links, with a cursor on one of them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "pick", "list its traces"),
        Binding("j,down", "move(1)", "down", show=False),
        Binding("k,up", "move(-1)", "up", show=False),
        Binding("g,home", "move(-1000000)", "first", show=False),
        Binding("G,end", "move(1000000)", "last", show=False),
        Binding("pagedown,space", "page(1)", "page down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
    ]

    class Picked(Message):
        """A node or a link was chosen: list the traces of this query."""

        def __init__(self, query: str) -> None:
            super().__init__()
            self.query = query

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[Row] = []
        self.cursor = 0

    def show(self, data: Fleet) -> None:
        rows: list[Row] = [("nodes", None)]
        rows += [("node", s) for s in data.nodes]
        rows += [("gap", None), ("links", None)]
        rows += [("link", s) for s in data.links]
        if not data.links:
            rows.append(("note", "no messages between nodes in this session"))
        self.rows = rows
        self.cursor = next((k for k, (kind, _) in enumerate(rows) if kind in ("node", "link")), 0)
        self.virtual_size = Size(self.size.width, len(rows))
        self.refresh()

    @property
    def current(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def _selectable(self, k: int) -> bool:
        return self.rows[k][0] in ("node", "link")

    def action_move(self, delta: int) -> None:
        if not self.rows:
            return
        step = 1 if delta > 0 else -1
        k = max(0, min(len(self.rows) - 1, self.cursor + delta))
        while 0 <= k < len(self.rows) and not self._selectable(k):
            k += step
        if not 0 <= k < len(self.rows):
            k = self.cursor
        self.cursor = k
        height, top = max(1, self.size.height), int(self.scroll_offset.y)
        if k < top:
            self.scroll_to(y=max(0, k - 1), animate=False)
        elif k >= top + height:
            self.scroll_to(y=k - height + 1, animate=False)
        self.refresh()

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.size.height - 1))

    def action_pick(self) -> None:
        row = self.current
        if row is None:
            return
        _kind, data = row
        if isinstance(data, NodeStats):
            self.post_message(self.Picked(f"node={data.node}"))
        elif isinstance(data, LinkStats):
            self.post_message(self.Picked(f"from={data.src} node={data.dst}"))

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        k = int(self.scroll_offset.y) + y
        if not 0 <= k < len(self.rows):
            return Strip.blank(width, _STYLE["plain"])
        kind, data = self.rows[k]
        if kind == "nodes":
            text, style = node_head(width), _STYLE["head"]
        elif kind == "links":
            text, style = link_head(width), _STYLE["head"]
        elif kind == "gap":
            text, style = "", _STYLE["plain"]
        elif kind == "note":
            text, style = f"  {data}", _STYLE["plain"]
        elif isinstance(data, NodeStats):
            text = node_line(data, width)
            style = _STYLE["bad"] if data.errors or data.timeouts else _STYLE["plain"]
        else:
            assert isinstance(data, LinkStats)
            text = link_line(data, width)
            style = _STYLE["bad"] if data.errors or data.timeouts else _STYLE["plain"]
        if k == self.cursor:
            style = _STYLE["cursor"]
        return Strip([Segment(fit(printable(text), width), style)], width)


class FleetScreen(Screen[None]):
    """Nodes and links of one session."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back"),
    ]

    def __init__(self, store: TraceStore) -> None:
        super().__init__()
        self.store = store
        self.data = Fleet()

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-title", markup=False)
        yield FleetTable(id="fleet")
        yield Static(id="fleet-note", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.data = fleet(self.store)
        links = [ls for ls in self.data.links if ls.messages]
        msgs = sum(ls.messages for ls in links)
        self.query_one("#fleet-title", Static).update(printable(
            f"fleet of {self.store.path.name}  {len(self.data.nodes)} nodes  {len(links)} links  {msgs:,} messages  "
            f"clock reference {self.data.reference or '-'}"))
        note = ("latency: one way, on the common time axis (clock offsets applied); rtt: a call's round trip "
                "on the caller's clock; ⏎ lists the traces of a node or link")
        if self.size.width >= CLOCK_COLUMN_WIDTH:
            note += "; rx clock: how far the receiver's clock reads ahead of the sender's"
        if self.data.unknown_timeouts:
            note += f"; {self.data.unknown_timeouts} timed-out calls name no destination"
        self.query_one("#fleet-note", Static).update(note)
        table = self.query_one(FleetTable)
        table.show(self.data)
        table.focus()

    def action_back(self) -> None:
        self.app.pop_screen()
