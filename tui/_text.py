"""Text from a session made safe to draw, and fitted to its column: the explorer's last step
before the terminal.

A session file is data anyone can write (an agent, an OTel service, a damaged disk), and
node ids, span names, errors and attribute values reach the screen as they were recorded. A
control character in them would move the terminal's cursor, change its colours or clear it,
so every string the explorer draws passes through `printable` (the core's,
`edgetrace._text`: controls, DEL and invisible or direction-changing characters shown as
visible escapes such as `\\x1b`); `fit` and `fit_right` also pad or cut it to a width in cells.
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size

from edgetrace._text import printable

__all__ = ["fit", "fit_right", "printable"]


def fit(text: object, width: int) -> str:
    """Printable `text` padded or cut (with an ellipsis) to exactly `width` cells."""
    if width <= 0:
        return ""
    s = printable(text)
    if s.isascii():
        return s.ljust(width) if len(s) <= width else s[: width - 1] + "…"
    if cell_len(s) <= width:  # wide characters take two cells
        return set_cell_size(s, width)
    return set_cell_size(s, width - 1) + "…"


def fit_right(text: object, width: int) -> str:
    """Like `fit`, aligned right (numbers in columns)."""
    s = fit(text, width)
    stripped = s.rstrip(" ")
    return stripped.rjust(width) if not s.endswith("…") else s
