"""The session picker: shown when `edgetrace explore` is run without a session.

Lists session files in the data directory (`$EDGETRACE_DATA`, else
~/.local/share/edgetrace) and the current directory, newest first.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

__all__ = ["PickerScreen"]


class PickerScreen(Screen[None]):
    """Choose a session file to explore."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor(1)", "down", show=False),
        Binding("k", "cursor(-1)", "up", show=False),
    ]

    class Picked(Message):
        """A session was chosen."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, sessions: list[Path], searched: list[Path]) -> None:
        super().__init__()
        self.sessions = sessions
        self.searched = searched

    def compose(self) -> ComposeResult:
        where = ", ".join(str(p) for p in self.searched)
        if self.sessions:
            yield Static(f"choose a session ({len(self.sessions)} found in {where}); Enter opens it",
                         id="picker-title", markup=False)
        else:
            yield Static(f"no sessions (*.ets) in {where}.\nRecord one with `edgetrace demo` or "
                         "`edgetrace record`, or run `edgetrace explore SESSION`.", id="picker-title", markup=False)
        options = []
        for p in self.sessions:
            try:
                st = p.stat()
                when = _dt.datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M")
                size = f"{st.st_size / 1e6:.1f} MB"
            except OSError:
                when, size = "?", "?"
            options.append(Option(f"{p.name:<36} {size:>9}  {when}  {p.parent}", id=str(p)))
        yield OptionList(*options, id="picker")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def action_cursor(self, delta: int) -> None:
        box = self.query_one(OptionList)
        box.action_cursor_down() if delta > 0 else box.action_cursor_up()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.post_message(self.Picked(Path(event.option.id)))
