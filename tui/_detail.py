"""Span detail: everything recorded about one step, with its payloads decoded.

Payload blobs are stored by content hash; the recorder writes bytes as they are, JSON for
rule inputs and results, and MessagePack for everything else (model tensors, inputs), so
decoding tries JSON, then MessagePack, then shows the bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from edgetrace import _attrs as attr
from edgetrace._codec import decode_any
from edgetrace._records import Span
from edgetrace.tui._footer import KeyFooter
from edgetrace.tui._format import format_duration
from edgetrace.tui._graph import TraceGraph
from edgetrace.tui._text import printable

__all__ = ["DetailScreen", "decode_blob", "describe_span"]

_SECTIONS = {
    "rule": (attr.POLICY, attr.POLICY_SHA256, attr.POLICY_ENGINE, attr.DECISION,
             attr.RULES_FIRED, attr.TIMED_OUT),
    "model": (attr.MODEL_SHA256, attr.OUTPUT, attr.OUTPUT_TEXT),
}


def decode_blob(data: bytes, limit: int = 1200) -> str:
    """A readable rendering of a payload blob, cut at `limit` characters."""
    value: Any
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        try:
            value = decode_any(data)
        except Exception:
            return f"{len(data)} bytes: {data[:48].hex()}{'…' if len(data) > 48 else ''}"
    text = json.dumps(value, sort_keys=True, default=_describe, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + f"… ({len(text)} chars)"


def _describe(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    return repr(value)


def describe_span(span: Span, graph: TraceGraph, clock: dict[str, int] | None,
                  blob: Callable[[str], bytes | None]) -> str:
    """The detail text of a span (plain text, so tests and snapshots can read it)."""
    i = graph.index_of(span.ref)
    offset = graph.offsets.get(span.node, 0)
    at = f"+{format_duration(graph.t_start[i] - graph.t0)} into the trace" if i is not None else ""
    sign = "+" if offset >= 0 else "-"
    shift = (f"offset to the common axis {sign}{format_duration(abs(offset))}" if offset
             else "no offset: this clock agrees with the reference")
    lines = [
        f"{span.kind.value} {span.name}",
        f"  node {span.node}   seq {span.seq}   ref {span.ref}   trace {span.trace}",
        f"  start {at} on the common axis   duration {format_duration(span.duration)}",
        f"  local clock of {span.node}: start {span.start} ns, end {span.end} ns   ({shift})",
    ]
    if i is not None and i in graph.moved:
        lines.append(f"  drawn {format_duration(graph.moved[i])} later than its clock says, so that it does "
                     "not receive a message before it was sent")
    lines.append(f"  status {span.status.value}" + (f"   error: {span.error}" if span.error else ""))
    if span.parent:
        lines.append(f"  parent {span.parent}")
    if span.cause:
        lines.append(f"  caused by {span.cause}")
    merges = f"merges clock of {span.merged}" if span.merged else ""
    if clock is not None:
        lines.append("  vector clock  " + " ".join(f"{k}:{v}" for k, v in sorted(clock.items()))
                     + (f"   ({merges})" if merges else ""))
    else:
        delta = " ".join(f"{k}:{v}" for k, v in sorted(span.vc.items())) or "-"
        how = f"{merges} + {delta}" if merges else f"+ changes {delta}"
        lines.append(f"  vector clock  {span.node}:{span.seq} ({how}; full clock needs the "
                     "session index, skipped for very large sessions)")
    if i is not None:
        lines.append(f"  causal past {bin(graph.past[i]).count('1')} spans, future "
                     f"{bin(graph.future[i]).count('1')} spans in this trace"
                     + ("; on the critical path" if i in graph.critical_set else ""))
    for title, keys in _SECTIONS.items():
        found = [(k, span.attrs[k]) for k in keys if k in span.attrs]
        if found:
            lines.append("")
            lines.append(f"{title}:")
            lines.extend(f"  {k} = {_short(v)}" for k, v in found)
    shown = {k for keys in _SECTIONS.values() for k in keys}
    rest = [(k, v) for k, v in sorted(span.attrs.items()) if k not in shown]
    if rest:
        lines.append("")
        lines.append("attributes:")
        lines.extend(f"  {k} = {_short(v)}" for k, v in rest)
    if span.blobs:
        lines.append("")
        lines.append("payloads:")
        for role, sha in sorted(span.blobs.items()):
            data = blob(sha)
            body = decode_blob(data) if data is not None else "(blob not in this session)"
            lines.append(f"  {role} [{sha[:12]}]  {body}")
    return "\n".join(printable(line) for line in lines)


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, sort_keys=True, default=_describe, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DetailScreen(Screen[None]):
    """Detail of one span; `p` steps back along its provenance."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "back"),
        Binding("p", "provenance", "provenance"),
        Binding("j,down", "scroll(1)", "scroll", show=False),
        Binding("k,up", "scroll(-1)", "scroll", show=False),
    ]

    class Jump(Message):
        """Show the detail of another span of the same trace."""

        def __init__(self, graph: TraceGraph, index: int) -> None:
            super().__init__()
            self.graph = graph
            self.index = index

    def __init__(self, graph: TraceGraph, index: int, text: str) -> None:
        super().__init__()
        self.graph = graph
        self.index = index
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-scroll"):
            yield Static(self.text, id="detail", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#detail-scroll").focus()

    def action_scroll(self, delta: int) -> None:
        box = self.query_one("#detail-scroll", VerticalScroll)
        box.scroll_to(y=box.scroll_y + delta, animate=False)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_provenance(self) -> None:
        facts = self.graph.provenance(self.index)
        if facts:
            self.post_message(self.Jump(self.graph, facts[0]))
        else:
            self.notify("no facts or model outputs in this span's causal past")
