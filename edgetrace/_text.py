"""Text from a session, made safe for a terminal (recorded → stored → *shown*).

Every string in a session — trace ids, node names, attribute values, error texts, the
manifest — came from an agent, or from whoever wrote the file. Printed raw, `ESC[2J` in a
trace id clears the reader's screen, and an OSC sequence can retitle the window or plant a
link; a right-to-left override makes text read differently from what it is. `printable()` is
the one place that turns such characters into visible escapes (`\\x1b`, `\\u202e`); every
human-readable output of edgetrace (`show`, `diff`, the replay and sweep reports, `query`'s
table, CLI error lines) passes session text through it (`printable_text()` for a whole
report). The explorer does not yet: its screens draw session text as it is. JSON output needs nothing: its encoder escapes control
characters already.
"""

from __future__ import annotations

import re

__all__ = ["printable", "printable_text"]

# C0 controls (newline and tab too: one value, one line), DEL, C1 controls, and the invisible
# or direction-changing format characters (zero-width, bidi embeddings/overrides/isolates, BOM)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, *, limit: int | None = None) -> str:
    """`value` as text with every control or invisible format character shown as an escape.

    `limit` cuts the result to that many characters (with `…`), for one-line messages.
    """
    text = value if isinstance(value, str) else str(value)
    if _UNSAFE.search(text):
        text = _UNSAFE.sub(_escape, text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def printable_text(text: str) -> str:
    """A multi-line report made safe as `printable()` makes a value, keeping its own line breaks."""
    return "\n".join(printable(line) for line in text.split("\n"))
