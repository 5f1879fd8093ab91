"""Literal values as the span languages write them: numbers, durations, flags, null.

A number with a unit is a duration in integer nanoseconds, read by `edgetrace._units` (the one
duration parser), so `duration > 500ms` means the same to an invariant and to the explorer.
A number without a unit is what it says: compared with `duration` it is nanoseconds.
"""

from __future__ import annotations

import re
from typing import Any, Final

from edgetrace import _units as units

__all__ = ["KEYWORD_VALUES", "NUMBER", "number"]

_UNITS: Final = "|".join(sorted(units.UNITS, key=lambda u: (-len(u), u)))

#: A number literal, with an optional duration unit: `3`, `-0.5`, `150ms`, `2s`.
NUMBER: Final = rf"-?\d+(?:\.\d+)?(?:{_UNITS})?"

#: Words that are values.
KEYWORD_VALUES: Final[dict[str, Any]] = {"true": True, "false": False, "null": None}


_NUMBER_PARTS: Final = re.compile(rf"(-?\d+(?:\.\d+)?)({_UNITS})?")


def number(text: str) -> int | float:
    """`3` → 3, `0.5` → 0.5, `150ms` → 150_000_000 (ns). Raises ValueError on anything else."""
    m = _NUMBER_PARTS.fullmatch(text)
    if m is None:
        raise ValueError(f"expected a number such as 3, 0.5 or 150ms, found {text!r}")
    if m.group(2):
        return units.parse_duration(text, signed=True)
    return float(text) if "." in text else int(text)
