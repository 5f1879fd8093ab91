"""The diff view: a recording and its replay side by side, aligned by causal position.

Steps are matched by (trace, node, kind, name, occurrence) with the replayer's own
`step_keys` and `compare`, so the explorer marks exactly the divergences `edgetrace diff`
and `edgetrace replay` report. Injected FAULT spans exist only on the replayed side and are
shown there, next to the step they hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from edgetrace import _attrs as attr
from edgetrace._records import Span, SpanKind
from edgetrace._session import Session
from edgetrace.tui._footer import KeyFooter
from edgetrace.tui._text import fit, printable

if TYPE_CHECKING:
    from edgetrace._stepkey import StepKey
    from edgetrace.replay._divergence import Divergence

__all__ = ["DiffModel", "DiffRow", "DiffScreen"]


@dataclass(frozen=True)
class DiffRow:
    """One aligned step: `state` is same, changed, missing, extra or fault."""

    recorded: Span | None
    replayed: Span | None
    state: str
    first: bool = False
    note: str = ""


class DiffModel:
    """Divergences between two sessions, and the aligned rows of any trace."""

    def __init__(self, recorded: str | Path, replayed: str | Path, *, salvage: bool = False) -> None:
        from edgetrace._stepkey import step_keys
        from edgetrace.replay._divergence import compare

        self.a, self.b = Session(recorded, salvage=salvage), Session(replayed, salvage=salvage)
        self.keys_a, self.keys_b = step_keys(self.a.spans), step_keys(self.b.spans)
        found = compare(self.a.spans, self.keys_a, self.a.index, self.b.spans, self.keys_b, self.b.index)
        self.by_key = {d.key: d for d in found}
        self.first: dict[str, Divergence] = {}
        for d in found:
            self.first.setdefault(d.trace, d)
        self.by_trace_a, self.by_trace_b = self.a.traces(), self.b.traces()
        self.traces = sorted(set(self.by_trace_a) | set(self.by_trace_b))
        self.diverged = [t for t in self.traces if t in self.first]

    def describe_first(self, trace: str) -> str:
        d = self.first.get(trace)
        return d.describe() if d is not None else "no divergence: every step matches"

    def rows(self, trace: str) -> list[DiffRow]:
        rec = self.by_trace_a.get(trace, [])
        rep = self.by_trace_b.get(trace, [])
        first = self.first.get(trace)
        first_key = first.key if first is not None else None
        slots: list[tuple[float, DiffRow]] = []
        pos_of_key: dict[StepKey, float] = {}
        for n, s in enumerate(rec):
            key = self.keys_a.get(s.ref)
            if key is not None:
                pos_of_key[key] = float(n)
        matched: dict[StepKey, Span] = {}
        extra: list[tuple[float, Span, str]] = []
        last = -1.0
        bump = 0.0
        for s in rep:
            key = self.keys_b.get(s.ref)
            if key is not None and key in pos_of_key:
                matched[key] = s
                last, bump = pos_of_key[key], 0.0
            else:
                bump += 0.001
                extra.append((last + 0.5 + bump, s, "fault" if s.kind is SpanKind.FAULT else "extra"))
        for n, s in enumerate(rec):
            key = self.keys_a.get(s.ref)
            other = matched.get(key) if key is not None else None
            d = self.by_key.get(key) if key is not None else None
            state = "same" if d is None else d.kind
            note = ""
            if d is not None and d.fields:
                note = "; ".join(f"{k}: {_short(a)} → {_short(b)}" for k, (a, b) in sorted(d.fields.items()))
            slots.append((float(n), DiffRow(s, other, state, key == first_key and key is not None, note)))
        for at, s, state in extra:
            key = self.keys_b.get(s.ref)
            note = str(s.attrs.get(attr.FAULT, s.attrs.get(attr.FAULT_SPEC, ""))) if state == "fault" else ""
            slots.append((at, DiffRow(None, s, state, key == first_key and key is not None, note)))
        slots.sort(key=lambda item: item[0])
        return [row for _, row in slots]


def _value(value: object, limit: int) -> str:
    """A produced value, compact: a model output map as `type=weed_detected confidence=0.99`."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k != "type", str(k)))
        text = " ".join(f"{k}={value[k]}" for k in keys)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    return _short(value, limit)


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_MARK = {"same": " ", "changed": "≠", "missing": "−", "extra": "+", "fault": "⚡"}
_STYLE = {
    "same": Style(),
    "changed": Style(color="yellow", bold=True),
    "missing": Style(color="red"),
    "extra": Style(color="green"),
    "fault": Style(color="red", bold=True),
}


def _cell(span: Span | None, width: int) -> str:
    """A step in one column: kind, name, the value it produced, its ref — the value is cut
    last (a diff of `'hold'` against `'spray'` must read whole at 80 columns)."""
    if span is None:
        return "".ljust(width)
    value = ""
    for key in (attr.DECISION, attr.OUTPUT):
        if key in span.attrs:
            value = _value(span.attrs[key], max(8, width // 2))
            break
    head = f"{span.kind.value} "
    tail = f" {span.ref}"
    room = width - len(head) - (len(value) + 3 if value else 0)
    name = span.name
    if room - len(name) >= len(tail):
        text = f"{head}{name}{' = ' + value if value else ''}{tail}"
    else:
        keep = max(1, room)
        name = name if len(name) <= keep else name[: max(0, keep - 1)] + "…"
        text = f"{head}{name}{' = ' + value if value else ''}"
    return fit(text, width)


class DiffTable(ScrollView, can_focus=True):
    """Aligned rows of one trace, drawn line by line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "down", show=False),
        Binding("k,up", "move(-1)", "up", show=False),
        Binding("g,home", "move(-100000)", "first", show=False),
        Binding("G,end", "move(100000)", "last", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[DiffRow] = []
        self.cursor = 0

    def show(self, rows: list[DiffRow]) -> None:
        self.rows = rows
        self.cursor = next((i for i, r in enumerate(rows) if r.first), 0)
        self.virtual_size = Size(self.size.width, len(rows))
        self.scroll_to(y=max(0, self.cursor - 2), animate=False)
        self.refresh()

    def action_move(self, delta: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))
        top, height = int(self.scroll_offset.y), max(1, self.size.height)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        i = int(self.scroll_offset.y) + y
        if not 0 <= i < len(self.rows):
            return Strip.blank(width, Style())
        row = self.rows[i]
        half = max(10, (width - 5) // 2)  # mark (2), space, cell, " │", cell
        mark = ("▶" if row.first else " ") + _MARK.get(row.state, "?")
        style = _STYLE.get(row.state, Style())
        if i == self.cursor:
            style = style + Style(reverse=True)
        text = f"{mark} {_cell(row.recorded, half)} │{_cell(row.replayed, half)}"
        return Strip([Segment(fit(text, width), style)], width)


class DiffScreen(Screen[None]):
    """Recorded (left) against replayed (right), one trace at a time."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "trace(1, True)", "next diverged"),
        Binding("N", "trace(-1, True)", "prev diverged"),
        Binding("right_square_bracket", "trace(1, False)", "next trace", show=False),
        Binding("left_square_bracket", "trace(-1, False)", "prev trace", show=False),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, model: DiffModel, trace: str | None = None) -> None:
        super().__init__()
        self.model = model
        if trace is None or trace not in model.traces:
            trace = model.diverged[0] if model.diverged else (model.traces[0] if model.traces else "")
        self.trace = trace

    def compose(self) -> ComposeResult:
        yield Static(id="diff-title", markup=False)
        yield Static(id="diff-header", markup=False)
        yield DiffTable(id="diff-table")
        yield Static(id="diff-note", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._show()
        self.query_one(DiffTable).focus()

    def _show(self) -> None:
        m = self.model
        table = self.query_one(DiffTable)
        rows = m.rows(self.trace) if self.trace else []
        table.show(rows)
        status = "DIVERGED" if self.trace in m.first else "identical"
        self.query_one("#diff-title", Static).update(printable(
            f"trace {self.trace}  [{status}]  {len(m.diverged)}/{len(m.traces)} traces diverge  "
            f"{m.a.path.name} → {m.b.path.name}"
        ))
        self._header()
        first = next((r for r in rows if r.first), None)
        note = printable(f"first divergence: {m.describe_first(self.trace)}")
        if first is not None and first.note:
            note += f"\n  {printable(first.note)}"  # a line of its own, not an escaped newline
        self.query_one("#diff-note", Static).update(note)

    def _header(self) -> None:
        half = max(10, (self.size.width - 5) // 2)
        self.query_one("#diff-header", Static).update(f"   {'recorded'.ljust(half)} │replayed")

    def on_resize(self) -> None:
        self._header()

    def action_trace(self, direction: int, diverged: bool) -> None:
        pool = self.model.diverged if diverged else self.model.traces
        if not pool:
            self.notify("no diverged traces" if diverged else "no traces")
            return
        later = [t for t in pool if (t > self.trace if direction > 0 else t < self.trace)]
        if later:
            self.trace = later[0] if direction > 0 else later[-1]
        else:
            self.trace = pool[0] if direction > 0 else pool[-1]
        self._show()

    def action_back(self) -> None:
        self.app.pop_screen()
