"""Time and duration ranges that narrow the trace list (the `t` box and the chart's selection).

A range selects traces by when they started on the common time axis — counted from the
session's first span, as the list's start column shows it — and by how long they lasted:

    10s..20s                 started between 10 s and 20 s into the session
    ..1m                     started in the first minute
    dur 500ms..              lasted 500 ms or more (also dur>500ms, dur<2s)
    5s..10s dur>100ms        both

Durations are spelled as everywhere else (`edgetrace._units`: ns us ms s m h).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgetrace import _units as units
from edgetrace._errors import UsageError
from edgetrace.tui._format import format_at, format_duration

__all__ = ["RANGE_HELP", "Ranges", "parse_ranges"]

RANGE_HELP = "e.g. 10s..20s   ..1m   dur>500ms   5s..10s dur 100ms..2s"

_TOKEN = re.compile(r"\s*(dur(?:ation)?\b|\.\.|>=|<=|>|<|[^\s.<>=]+(?:\.\d+)?[a-zµ]*)")


@dataclass(frozen=True)
class Ranges:
    """Bounds in ns, inclusive; None is open. Start bounds count from the session's start."""

    start_lo: int | None = None
    start_hi: int | None = None
    dur_lo: int | None = None
    dur_hi: int | None = None

    @property
    def empty(self) -> bool:
        return self == Ranges()

    def mask(self, start: npt.NDArray[np.int64], dur: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of these traces (start from the session's start, duration) are inside."""
        keep = np.ones(len(start), bool)
        for values, lo, hi in ((start, self.start_lo, self.start_hi), (dur, self.dur_lo, self.dur_hi)):
            if lo is not None:
                keep &= values >= lo
            if hi is not None:
                keep &= values <= hi
        return keep

    def describe(self) -> str:
        parts = []
        if self.start_lo is not None or self.start_hi is not None:
            lo = format_at(self.start_lo) if self.start_lo is not None else ""
            hi = format_at(self.start_hi) if self.start_hi is not None else ""
            parts.append(f"started {lo}..{hi}")
        if self.dur_lo is not None or self.dur_hi is not None:
            lo = format_duration(self.dur_lo) if self.dur_lo is not None else ""
            hi = format_duration(self.dur_hi) if self.dur_hi is not None else ""
            parts.append(f"lasted {lo}..{hi}")
        return ", ".join(parts)


def _ns(text: str, what: str) -> int:
    try:
        return units.parse_duration(text.lstrip("+"), bare="s", bare_text=True)
    except (ValueError, UsageError) as exc:
        raise UsageError(f"{what}: expected a time such as 10s or 1.5m, found {text!r} ({exc})") from None


def _bounds(tokens: list[str], what: str) -> tuple[int | None, int | None]:
    if not tokens:
        raise UsageError(f"{what}: expected a range such as 10s..20s")
    if tokens[0] in (">", ">=") and len(tokens) == 2:
        return _ns(tokens[1], what), None
    if tokens[0] in ("<", "<=") and len(tokens) == 2:
        return None, _ns(tokens[1], what)
    if ".." not in tokens:
        raise UsageError(f"{what}: expected LO..HI, ..HI, LO.., >T or <T; found {' '.join(tokens)!r}")
    at = tokens.index("..")
    left, right = tokens[:at], tokens[at + 1:]
    if len(left) > 1 or len(right) > 1:
        raise UsageError(f"{what}: expected one time each side of '..'; found {' '.join(tokens)!r}")
    lo = _ns(left[0], what) if left else None
    hi = _ns(right[0], what) if right else None
    if lo is not None and hi is not None and hi < lo:
        raise UsageError(f"{what}: the range ends before it starts ({left[0]}..{right[0]})")
    return lo, hi


def parse_ranges(text: str) -> Ranges:
    """Parse the range box; raises `UsageError` with what was expected where."""
    tokens = [t for t in _TOKEN.findall(text) if t.strip()]
    rest = "".join(_TOKEN.sub("", text).split())
    if rest:
        raise UsageError(f"time range: unexpected {rest!r}; {RANGE_HELP}")
    start_tokens: list[str] = []
    dur_tokens: list[str] = []
    target = start_tokens
    for tok in tokens:
        if tok.startswith("dur"):
            target = dur_tokens
            continue
        target.append(tok)
    if not start_tokens and not dur_tokens and "dur" not in text:
        return Ranges()
    start_lo, start_hi = _bounds(start_tokens, "time range") if start_tokens else (None, None)
    dur_lo, dur_hi = _bounds(dur_tokens, "duration range") if "dur" in text else (None, None)
    return Ranges(start_lo, start_hi, dur_lo, dur_hi)
