"""Interned strings and attribute maps of a scanned session: values once, spans hold codes.

Node ids, span names, error texts, decisions and act names repeat across millions of spans,
so the scan keeps each once and stores a small integer per span (`Strings`; code 0 is "").
Attribute maps are kept as their raw MessagePack bytes, also once each (`AttrsArena`), and
decoded only when a filter, a column or the screen asks for one: a query such as
`decision=spray` then tests each distinct map once, not each span. The arena has a byte
budget; spans whose map arrives after it is spent get `UNKNOWN`, and a filter reads those
spans' records from the file instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

__all__ = ["ATTRS_BUDGET", "UNKNOWN", "AttrsArena", "Strings"]

#: Bytes of distinct attribute maps kept in memory.
ATTRS_BUDGET = 96 * 1024 * 1024
#: The attribute code of a span whose map was not kept.
UNKNOWN = 0xFFFF_FFFF
_EMPTY_MAP = b"\x80"


class Strings:
    """A table of distinct strings; `code(s)` interns, `text[code]` reads back."""

    def __init__(self) -> None:
        self.text: list[str] = [""]
        self.codes: dict[str, int] = {"": 0}

    def code(self, s: str) -> int:
        c = self.codes.get(s)
        if c is None:
            c = self.codes[s] = len(self.text)
            self.text.append(s)
        return c

    def codes_of(self, values: Iterable[str]) -> list[int]:
        """Codes of distinct `values` (interning the new ones), in their order."""
        values = values if isinstance(values, list) else list(values)
        try:  # every one known (a frame's node ids and names, nearly always): at C speed
            return list(map(self.codes.__getitem__, values))
        except KeyError:
            get, code = self.codes.get, self.code
            return [c if (c := get(v)) is not None else code(v) for v in values]

    def find(self, s: str) -> int | None:
        return self.codes.get(s)

    def __len__(self) -> int:
        return len(self.text)


class AttrsArena:
    """Distinct raw attribute maps; code 0 is the empty map."""

    def __init__(self, budget: int = ATTRS_BUDGET) -> None:
        self.raw: list[bytes] = [_EMPTY_MAP]
        self.codes: dict[bytes, int] = {_EMPTY_MAP: 0}
        self.budget = budget
        self.used = 0
        self.full = False  # some span's map was not kept
        self._decoder = msgspec.msgpack.Decoder(dict[str, Any])
        self._decoded: dict[int, dict[str, Any]] = {0: {}}

    def codes_of(self, blobs: Iterable[bytes]) -> list[int]:
        """Codes of distinct raw maps (interning new ones while the budget lasts)."""
        out = []
        get = self.codes.get
        for b in blobs:
            c = get(b)
            if c is None:
                if self.used + len(b) > self.budget:
                    self.full = True
                    c = UNKNOWN
                else:
                    c = self.codes[b] = len(self.raw)
                    self.raw.append(b)
                    self.used += len(b)
            out.append(c)
        return out

    def decode(self, code: int) -> dict[str, Any] | None:
        """The map of a code (cached), or None for `UNKNOWN` or a map that does not decode."""
        hit = self._decoded.get(code)
        if hit is not None or code == UNKNOWN:
            return hit
        try:
            value = self._decoder.decode(self.raw[code])
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if len(self._decoded) >= 4096:  # a small cache: a filter decodes each map once anyway
            self._decoded = {0: {}}
        self._decoded[code] = value
        return value

    def __len__(self) -> int:
        return len(self.raw)
