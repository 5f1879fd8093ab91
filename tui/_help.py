"""The help screen: every key binding of every screen, and the filter language."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from edgetrace.tui._query import QUERY_HELP

__all__ = ["HelpScreen", "help_text"]


def _keys(bindings: list[BindingType]) -> list[tuple[str, str]]:
    out = []
    for b in bindings:
        if isinstance(b, Binding):
            out.append((b.key.replace("slash", "/").replace("question_mark", "?")
                        .replace("right_square_bracket", "]").replace("left_square_bracket", "["),
                        b.description or b.action))
    return out


def help_text() -> str:
    """Built from the screens' own BINDINGS, so the help cannot drift from the keys."""
    from edgetrace.tui._app import ExplorerApp
    from edgetrace.tui._detail import DetailScreen
    from edgetrace.tui._diff import DiffScreen, DiffTable
    from edgetrace.tui._trace_list import TraceList, TraceListScreen
    from edgetrace.tui._trace_view import SpanChart, TraceViewScreen

    groups = [
        ("everywhere", ExplorerApp.BINDINGS),
        ("trace list", TraceListScreen.BINDINGS + TraceList.BINDINGS),
        ("trace view", TraceViewScreen.BINDINGS + SpanChart.BINDINGS),
        ("span detail", DetailScreen.BINDINGS),
        ("diff (--against)", DiffScreen.BINDINGS + DiffTable.BINDINGS),
    ]
    lines = []
    for title, bindings in groups:
        lines.append(f"[{title}]")
        lines.extend(f"  {keys:<22} {text}" for keys, text in _keys(bindings))
        lines.append("")
    lines.append("[filter language]")
    lines.extend("  " + line for line in QUERY_HELP.splitlines())
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
            yield Static(help_text(), id="help", markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_scroll(self, delta: int) -> None:
        box = self.query_one("#help-scroll", VerticalScroll)
        box.scroll_to(y=box.scroll_y + delta, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
