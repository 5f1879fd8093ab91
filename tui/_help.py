"""The help screen: every key binding of every screen, the marks, and the filter language.

Built from the screens' own `BINDINGS`, so the help cannot drift from the keys, and laid out
for the width it is shown at: at 80 columns an example and its explanation no longer fit on
one line, so the explanation goes under its example, wrapped with a hanging indent.
"""

from __future__ import annotations

import re
import textwrap
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from edgetrace.tui._query import QUERY_HELP
from edgetrace.tui._ranges import RANGE_HELP

__all__ = ["HelpScreen", "help_text"]

_GAP = re.compile(r"(.*?\S)\s{3,}(\S.*)")

_NAMES = {"slash": "/", "question_mark": "?", "right_square_bracket": "]", "left_square_bracket": "[",
          "equals_sign": "=", "plus": "+", "minus": "-", "space": "space", "backspace": "backspace"}


def _keys(bindings: list[BindingType]) -> list[tuple[str, str]]:
    out = []
    for b in bindings:
        if isinstance(b, Binding):
            keys = ",".join(_NAMES.get(k.strip(), k.strip()) for k in b.key.split(","))
            out.append((keys, b.description or b.action))
    return out


def _entries(text: str) -> list[tuple[str, str]]:
    """(example, explanation) pairs of a two-column help text; continuation lines join the last."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        body = line[2:] if line.startswith("  ") else line
        if line.startswith("  ") and body.startswith(" "):  # a continuation of the explanation
            if out:
                ex, expl = out[-1]
                out[-1] = (ex, f"{expl} {body.strip()}".strip())
            continue
        m = _GAP.match(body)
        out.append((m.group(1).strip(), m.group(2).strip()) if m else (body.strip(), ""))
    return out


def _two_columns(entries: list[tuple[str, str]], width: int, left: int) -> list[str]:
    lines: list[str] = []
    for ex, expl in entries:
        if not expl:
            lines += textwrap.wrap(ex, width - 2, initial_indent="  ", subsequent_indent="    ") or [""]
        elif len(ex) < left and width - left - 4 >= 30:
            wrapped = textwrap.wrap(expl, width - left - 4) or [""]
            lines.append(f"  {ex:<{left}}  {wrapped[0]}")
            lines += [" " * (left + 4) + w for w in wrapped[1:]]
        else:  # the example on its own line, the explanation under it
            lines.append(f"  {ex}")
            lines += textwrap.wrap(expl, width - 6, initial_indent="      ", subsequent_indent="      ")
    return lines


def help_text(width: int = 100) -> str:
    """The whole help, laid out for `width` columns."""
    from edgetrace.tui._app import ExplorerApp
    from edgetrace.tui._causal_view import CAUSAL_LEGEND, CausalChart, CausalViewScreen
    from edgetrace.tui._detail import DetailScreen
    from edgetrace.tui._diff import DiffScreen, DiffTable
    from edgetrace.tui._fleet_view import FleetScreen, FleetTable
    from edgetrace.tui._list_screen import TraceListScreen
    from edgetrace.tui._scatter import CHART_LEGEND, DurationChart
    from edgetrace.tui._span_chart import LEGEND, SpanChart
    from edgetrace.tui._trace_list import TraceList
    from edgetrace.tui._trace_view import TraceViewScreen

    width = max(40, width)
    groups = [
        ("everywhere", ExplorerApp.BINDINGS),
        ("trace list", TraceListScreen.BINDINGS + TraceList.BINDINGS),
        ("duration chart (h in the list)", DurationChart.BINDINGS),
        ("trace view", TraceViewScreen.BINDINGS + SpanChart.BINDINGS),
        ("causal view (x)", CausalViewScreen.BINDINGS + CausalChart.BINDINGS),
        ("fleet view (f)", FleetScreen.BINDINGS + FleetTable.BINDINGS),
        ("span detail", DetailScreen.BINDINGS),
        ("diff (--against)", DiffScreen.BINDINGS + DiffTable.BINDINGS),
    ]
    lines: list[str] = []
    for title, bindings in groups:
        lines.append(f"[{title}]")
        lines += _two_columns(_keys(bindings), width, 18)
        lines.append("")
    lines.append("[marks]")
    for name, legend in (("waterfall", LEGEND["waterfall"]), ("space-time", LEGEND["spacetime"]),
                         ("causal view", CAUSAL_LEGEND), ("chart", CHART_LEGEND),
                         ("trace list", "E errors · F faults · ≠ diverged from the replay · red: errors")):
        lines += _two_columns([(name, legend)], width, 18)
    lines.append("")
    lines.append("[time range (t)]")
    lines += _two_columns([("t", f"traces by start (from the session's start) and duration: {RANGE_HELP}")],
                          width, 18)
    lines.append("")
    lines.append("[filter language (/)]")
    lines += _two_columns(_entries(QUERY_HELP), width, 26)
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Modal list of bindings; any of Esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "close help"),
        Binding("j,down", "scroll(1)", "scroll", show=False),
        Binding("k,up", "scroll(-1)", "scroll", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-scroll"):
            yield Static(id="help", markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def on_resize(self) -> None:
        box = self.query_one("#help-scroll", VerticalScroll)
        inner = box.content_size.width or max(40, self.size.width - 6)
        self.query_one("#help", Static).update(help_text(inner))

    def action_scroll(self, delta: int) -> None:
        box = self.query_one("#help-scroll", VerticalScroll)
        box.scroll_to(y=box.scroll_y + delta, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
