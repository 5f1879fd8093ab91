"""The session picker: shown when `edgetrace explore` is run without a session.

Lists the sessions opened lately, then the session files in the data folder the hub writes
to (`$EDGETRACE_DATA`, else ~/.local/share/edgetrace: `edgetrace._discovery`), the current
folder and the demo's folder (./edgetrace-demo), newest first.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from edgetrace.tui._footer import KeyFooter
from edgetrace.tui._text import fit, printable

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

    def __init__(self, sessions: list[Path], searched: list[Path], recent: list[Path] | None = None) -> None:
        super().__init__()
        self.recent = [p.resolve() for p in (recent or [])]
        self.sessions = self.recent + [p for p in sessions if p.resolve() not in self.recent]
        self.searched = searched

    def compose(self) -> ComposeResult:
        where = ", ".join(str(p) for p in self.searched)
        if self.sessions:
            yield Static(printable(f"choose a session ({len(self.sessions)} found: recent, then {where}); "
                                   "Enter opens it"), id="picker-title", markup=False)
        else:
            yield Static(printable(f"no sessions (*.ets) in {where}.\nRecord one with `edgetrace demo` or "
                                   "`edgetrace record`, or run `edgetrace explore SESSION`."),
                         id="picker-title", markup=False)
        options = []
        width = max(60, self.app.size.width - 6)
        for p in self.sessions:
            try:
                st = p.stat()
                when = _dt.datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M")
                size = f"{st.st_size / 1e6:.1f} MB"
            except OSError:
                when, size = "?", "?"
            tag = "recent " if p.resolve() in self.recent else "       "
            head = f"{tag}{fit(p.name, 30)} {size:>9}  {when}  "
            options.append(Option(fit(head + str(p.parent), width), id=str(p)))
        yield OptionList(*options, id="picker")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def action_cursor(self, delta: int) -> None:
        box = self.query_one(OptionList)
        box.action_cursor_down() if delta > 0 else box.action_cursor_up()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.post_message(self.Picked(Path(event.option.id)))
