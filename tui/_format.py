"""How the explorer spells times, durations and the input a trace started from.

Every screen formats these the same way, so they live here: `format_duration` (the length
of a span or a trace), `format_at` (a time on the common axis, from the session's start),
and `root_label` (a trace's root named by its input: the topic and the frame's id, caption
or payload, so a list of traces can be told apart by eye).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from edgetrace import _attrs as attr

__all__ = ["format_at", "format_duration", "payload_summary", "root_label"]

#: Keys of an input payload that name it, most telling first.
_ID_KEYS = ("frame", "frame_id", "id", "name", "key", "topic")
_TEXT_KEYS = ("caption", "text", "message", "description", "label")
_PAIR = re.compile(r"""["'](\w+)["']\s*:\s*["']([^"']{1,200})""")


def format_duration(ns: int) -> str:
    if ns < 0:
        return "-" + format_duration(-ns)
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.0f}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f}ms"
    if ns < 100_000_000_000:
        return f"{ns / 1e9:.2f}s"
    return f"{ns / 6e10:.1f}m"


def format_at(ns: int) -> str:
    """A time since the session's start: +1.234s, +12.34s, +2m03.4s, +1h02m."""
    sign = "-" if ns < 0 else "+"
    s = abs(ns) / 1e9
    if s < 10:
        return f"{sign}{s:.3f}s"
    if s < 100:
        return f"{sign}{s:.2f}s"
    if s < 3600:
        m, rest = divmod(s, 60)
        return f"{sign}{int(m)}m{rest:04.1f}s"
    h, rest = divmod(s, 3600)
    return f"{sign}{int(h)}h{int(rest // 60):02d}m"


def payload_summary(value: Any, trace: str = "") -> str:
    """A few words that tell one input from another: its id, caption, or its fields."""
    if isinstance(value, Mapping):
        for key in _ID_KEYS:
            v = value.get(key)
            if isinstance(v, str | int) and str(v) != trace:
                return f"{key} {v}"
        for key in _TEXT_KEYS:
            v = value.get(key)
            if isinstance(v, str) and v:
                return f'"{v}"'
        return " ".join(f"{k}={v}" for k, v in list(value.items())[:4])
    if isinstance(value, str):  # a preview cut to text: pick the pairs out of it
        pairs = dict(_PAIR.findall(value))
        if pairs:
            return payload_summary(pairs, trace)
        return value
    return "" if value is None else str(value)


def root_label(kind: str, name: str, node: str, attrs: Mapping[str, Any] | None, trace: str = "") -> str:
    """A trace's root as the list shows it: `frame "row 37 shows wilting…"`, `checkout: GET /cart`."""
    attrs = attrs or {}
    if kind == "input":
        summary = payload_summary(attrs.get(attr.PAYLOAD), trace)
        return f"{name} {summary}".strip()
    if kind == "otel":
        service = attrs.get(attr.SERVICE_NAME) or node.removeprefix("otel:")
        return f"{service}: {name}"
    if kind == "recv":
        sender = attrs.get(attr.FROM)
        return f"recv {name}" + (f" from {sender}" if sender else "")
    return f"{kind} {name}"
