"""Text from a session made safe to draw: the explorer's last step before the terminal.

A session file is data anyone can write (an agent, an OTel service, a damaged disk), and
node ids, span names, errors and attribute values reach the screen as they were recorded. A
control character in them would move the terminal's cursor, change its colours or clear it,
so every string the explorer draws passes through `printable`: C0/C1 controls, DEL and the
bidirectional overrides are shown as visible escapes (`\\x1b`), nothing else changes.

(The explorer's own small version: the core helper for this, `edgetrace/_text.py`, was not on
main when the explorer needed it.)
"""

from __future__ import annotations

import re

from rich.cells import cell_len, set_cell_size

__all__ = ["fit", "fit_right", "printable"]

# C0 controls (tab and newline included: a cell is one line), DEL, C1 controls, and the
# Unicode bidi embeddings/overrides/isolates that reorder what follows them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` as a string with every control character shown as an escape."""
    s = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, s) if _UNSAFE.search(s) else s


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
