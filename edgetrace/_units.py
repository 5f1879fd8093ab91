"""Durations: the one parser and formatter of `2s`, `150ms`, `1.5m` everywhere.

Fault specs, grid profiles, invariants, explorer queries and test harnesses all take
durations; they used to parse them three ways with different units. Time inside edgetrace is
integer nanoseconds (the virtual loop's unit), so every duration becomes an int here. A number
without a unit means what the caller says it means (`bare`): seconds in TOML files and
profiles, nanoseconds in explorer queries; callers that require a unit pass `bare=None`.
Errors are `ValueError` with the reason alone; each caller re-raises them as its own error
type, naming the value and where it stood.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Final, Literal

__all__ = ["UNITS", "format_duration", "parse_duration"]

#: Unit → nanoseconds.
UNITS: Final[dict[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
UNIT_NAMES: Final = "ns, us (µs), ms, s, m, h"

_TEXT = re.compile(r"^\s*(-?(?:\d+(?:\.\d*)?|\.\d+))\s*(ns|us|µs|ms|s|m|h)?\s*$")

Bare = Literal["s", "ns"] | None


def parse_duration(value: object, *, bare: Bare = None, bare_text: bool = False, signed: bool = False) -> int:
    """`'2s'`, `'150ms'`, `'500us'`, `'1.5m'`, `'2h'` → ns.

    A number (int or float) is in `bare` units; text without a unit is too, but only with
    `bare_text` (explorer queries, where `duration>500` is typed by hand and means ns).
    """
    unit_name: str
    if isinstance(value, bool):
        raise ValueError("expected a duration, not a boolean")
    if isinstance(value, int | float):
        if bare is None:
            raise ValueError(f"no unit; expected a number with {UNIT_NAMES}, e.g. 2s or 150ms")
        if not math.isfinite(value):
            raise ValueError("not a finite duration")
        number, unit_name = Fraction(value), bare
    elif isinstance(value, str):
        m = _TEXT.match(value)
        if m is None:
            raise ValueError(f"expected a number with {UNIT_NAMES}, e.g. 2s or 150ms")
        number = Fraction(m.group(1))
        unit_text = m.group(2)
        if unit_text is None:
            if bare is None or not bare_text:
                raise ValueError(f"no unit; expected a number with {UNIT_NAMES}, e.g. 2s or 150ms")
            unit_text = bare
        unit_name = unit_text
    else:
        raise ValueError(f"expected a duration such as 2s, got {type(value).__name__}")
    if number < 0 and not signed:
        raise ValueError("negative; expected a duration of 0 or more")
    ns = round(number * UNITS[unit_name])
    if abs(ns) >= 1 << 63:
        raise ValueError("too long a duration (over 292 years)")
    return ns


def format_duration(ns: int) -> str:
    """The shortest exact spelling: 2000000000 → '2s', 1500000 → '1500us'; inverse of parse."""
    if ns < 0:
        return "-" + format_duration(-ns)
    for unit in ("h", "m", "s", "ms", "us"):
        size = UNITS[unit]
        if ns and ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"
