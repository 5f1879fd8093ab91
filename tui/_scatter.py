"""Trace start time against duration, as Jaeger's search draws it, in a few terminal rows.

`DurationChart` bins the traces of the list (x: start on the common time axis, y: duration
on a log scale) and draws each cell by how many traces fall in it (`·` `•` `●` `█`; `x`
where one of them has errors, in red). A cursor cell moves with the arrow keys; `space`
drops an anchor, and Enter selects the box between anchor and cursor: the chart posts
`Selected` with the `Ranges` of that box, which the list screen applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from edgetrace.tui._format import format_at, format_duration
from edgetrace.tui._ranges import Ranges
from edgetrace.tui._text import fit

__all__ = ["CHART_LEGEND", "ChartData", "DurationChart"]

_LEVELS = " ·•●█"
_AXIS = 9  # columns of duration labels on the left
CHART_LEGEND = "· • ● █ more traces  x with errors  ░ box  ←→↑↓ move  space anchor  ⏎ select  esc close"

_STYLE = {
    "plain": Style(),
    "dim": Style(dim=True),
    "error": Style(color="red", bold=True),
    "cursor": Style(reverse=True),
    "box": Style(underline=True),
}


@dataclass
class ChartData:
    """What the chart bins: each trace's start (from the session's start), duration, errors."""

    start: npt.NDArray[np.int64]
    dur: npt.NDArray[np.int64]
    errors: npt.NDArray[np.bool_]


class DurationChart(Widget, can_focus=True):
    """A start × duration scatter of the listed traces with a selectable box of cells."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "select box"),
        Binding("space", "anchor", "anchor", show=False),
        Binding("left,h", "move(-1, 0)", "left", show=False),
        Binding("right,l", "move(1, 0)", "right", show=False),
        Binding("up,k", "move(0, 1)", "longer", show=False),
        Binding("down,j", "move(0, -1)", "shorter", show=False),
    ]

    class Closed(Message):
        """Escape: put the chart away."""

    class Selected(Message):
        """The user selected a box of cells: traces inside these ranges."""

        def __init__(self, ranges: Ranges) -> None:
            super().__init__()
            self.ranges = ranges

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data = ChartData(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
        self.cursor = (0, 0)  # (column, row from the bottom)
        self.box_anchor: tuple[int, int] | None = None
        self._grid: npt.NDArray[np.int64] = np.zeros((1, 1), np.int64)
        self._errs: npt.NDArray[np.int64] = np.zeros((1, 1), np.int64)
        self._x: npt.NDArray[np.float64] = np.zeros(2)
        self._y: npt.NDArray[np.float64] = np.zeros(2)

    # --- binning ---------------------------------------------------------------------------

    @property
    def plot_size(self) -> tuple[int, int]:
        return max(4, self.size.width - _AXIS - 1), max(2, self.size.height - 1)

    def show(self, data: ChartData) -> None:
        self.data = data
        self._bin()
        self.refresh()

    def _bin(self) -> None:
        w, h = self.plot_size
        d = self.data
        if not len(d.start):
            self._grid = np.zeros((w, h), np.int64)
            self._errs = np.zeros((w, h), np.int64)
            self._x, self._y = np.linspace(0, 1, w + 1), np.linspace(0, 1, h + 1)
            return
        x0, x1 = int(d.start.min()), int(d.start.max())
        ly = np.log10(np.maximum(d.dur, 1).astype(np.float64))
        y0, y1 = float(ly.min()), float(ly.max())
        self._x = np.linspace(x0, x1 + 1, w + 1)
        self._y = np.linspace(y0, y1 + 1e-9, h + 1)
        xi = np.clip(np.searchsorted(self._x, d.start, side="right") - 1, 0, w - 1)
        yi = np.clip(np.searchsorted(self._y, ly, side="right") - 1, 0, h - 1)
        self._grid = np.zeros((w, h), np.int64)
        np.add.at(self._grid, (xi, yi), 1)
        self._errs = np.zeros((w, h), np.int64)
        if d.errors.any():
            np.add.at(self._errs, (xi[d.errors], yi[d.errors]), 1)
        cx, cy = self.cursor
        self.cursor = (min(cx, w - 1), min(cy, h - 1))

    def on_resize(self) -> None:
        self._bin()

    # --- what a box of cells means ---------------------------------------------------------

    def _box(self) -> tuple[int, int, int, int]:
        a = self.box_anchor or self.cursor
        (x0, y0), (x1, y1) = a, self.cursor
        return min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)

    def ranges(self) -> Ranges:
        """The ranges of the selected box (the cursor cell when no anchor is down)."""
        xa, xb, ya, yb = self._box()
        return Ranges(int(self._x[xa]), int(math.ceil(self._x[xb + 1])) - 1,
                      int(10 ** self._y[ya]), int(math.ceil(10 ** self._y[yb + 1])))

    def count_in_box(self) -> int:
        xa, xb, ya, yb = self._box()
        return int(self._grid[xa:xb + 1, ya:yb + 1].sum())

    # --- drawing -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        w, h = self.plot_size
        if self._grid.shape != (w, h):  # resized since binned
            self._bin()
        width = self.size.width
        if y == h:  # the time axis
            if len(self.data.start):
                left, right = format_at(int(self._x[0])), format_at(int(self._x[-1]))
                axis = " " * _AXIS + "└" + fit(f" {left}", w - len(right) - 1) + right + " start"
            else:
                axis = " " * _AXIS + "└ no traces to chart"
            return Strip([Segment(fit(axis, width), _STYLE["dim"])], width)
        row = h - 1 - y  # row 0 is the shortest duration, drawn at the bottom
        label = ""
        if y == 0 and len(self.data.start):
            label = format_duration(int(10 ** self._y[-1]))
        elif row == 0 and len(self.data.start):
            label = format_duration(int(10 ** self._y[0]))
        segs = [Segment(f"{label:>{_AXIS - 1}} │", _STYLE["dim"])]
        peak = max(1, int(self._grid.max()))
        xa, xb, ya, yb = self._box()
        boxed = self.box_anchor is not None
        for x in range(w):
            n = int(self._grid[x, row])
            if n == 0:
                char, style = " ", _STYLE["plain"]
            elif self._errs[x, row]:
                char, style = "x", _STYLE["error"]
            else:
                level = 1 + min(3, int(3 * math.log1p(n) / math.log1p(peak)))
                char, style = _LEVELS[level], _STYLE["plain"]
            if self.has_focus and (x, row) == self.cursor:
                style = style + _STYLE["cursor"]
                char = char if char != " " else "+"
            elif boxed and xa <= x <= xb and ya <= row <= yb:
                style = style + _STYLE["box"]
                char = char if char != " " else "░"
            segs.append(Segment(char, style))
        return Strip(segs, width).crop(0, width)

    # --- keys ----------------------------------------------------------------------------

    def action_move(self, dx: int, dy: int) -> None:
        w, h = self.plot_size
        if self._grid.shape != (w, h):
            self._bin()
        x, y = self.cursor
        self.cursor = (max(0, min(w - 1, x + dx)), max(0, min(h - 1, y + dy)))
        self.refresh()

    def key_escape(self) -> None:
        # (a key method, not a binding: the screen's own escape handling would take it first)
        self.post_message(self.Closed())

    def action_anchor(self) -> None:
        self.box_anchor = None if self.box_anchor is not None else self.cursor
        self.refresh()

    def action_select(self) -> None:
        self.post_message(self.Selected(self.ranges()))
        self.box_anchor = None
        self.refresh()
