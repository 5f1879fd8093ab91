"""The causal cut of a finding: what, across every node and trace, bears on one step.

A distributed bug's cause is rarely in the trace where the symptom shows. The full causal past
of a step (everything that happened before it, by vector clock) answers "what could have
mattered" but is most of the session; the cut answers "what did": starting at the finding, it
walks back along the edges that carry influence —

- **program order**: the handler's previous step (its own trigger, for the first one);
- **messages**: a receive, a served state operation or a reply, back to the step that sent it;
- **state**: a read back to the last write of that key before it (on the state host);
- **node memory**: a handler's first step after it used `ctx.local`, back to the last step of
  another handler on that node that used it (what handlers keep there carries over);

— and adds the injected faults on the paths it walked (a delayed or dropped message, a crash or
a restart of a node it passes through). Each line says why it is there; lines are in causal
order. A pair of findings (two acts that must not both happen) gets both cuts, their causal
relation, the step where they split, and the messages that would have ordered them but never
arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edgetrace import _attrs as attr
from edgetrace._index import CausalIndex
from edgetrace._records import Span, SpanKind

__all__ = ["CutStep", "PairCut", "Why"]

_STATE = (SpanKind.STATE_GET, SpanKind.STATE_PUT)
_LOOKBACK = 4096  # how far back a node's stream is searched for a handler's previous step


@dataclass(frozen=True)
class CutStep:
    """One step of a cut and why it is there (`depth`: edges walked from the finding)."""

    span: Span
    reason: str
    depth: int

    def to_dict(self) -> dict[str, object]:
        s = self.span
        return {"ref": s.ref, "node": s.node, "trace": s.trace, "kind": s.kind.value, "name": s.name,
                "status": s.status.value, "error": s.error, "why": self.reason, "depth": self.depth}


@dataclass
class PairCut:
    """Two steps that must not both happen: how each came about, and why nothing ordered them."""

    first: Span
    second: Span
    relation: str  # "concurrent", "first happened before second", …
    first_cut: list[CutStep]
    second_cut: list[CutStep]
    split: Span | None  # the latest step both came from
    lost: list[CutStep] = field(default_factory=list)  # messages that would have ordered them

    def to_dict(self) -> dict[str, object]:
        return {"first": self.first.ref, "second": self.second.ref, "relation": self.relation,
                "split": self.split.ref if self.split else None,
                "first_cut": [c.to_dict() for c in self.first_cut],
                "second_cut": [c.to_dict() for c in self.second_cut],
                "lost": [c.to_dict() for c in self.lost]}


class Why:
    """Cuts over one run's spans and causal index (built lazily, once per run)."""

    def __init__(self, spans: Iterable[Span], index: CausalIndex | None = None) -> None:
        self.spans = list(spans)
        self.index = index if index is not None else CausalIndex(self.spans)
        self._by_ref = {s.ref: s for s in self.spans}
        self._streams: dict[str, list[Span]] | None = None
        self._puts: dict[tuple[str, str], list[Span]] | None = None
        self._faults_on: dict[str, list[Span]] | None = None
        self._node_faults: dict[str, list[Span]] | None = None

    # --- lazily built lookups ---------------------------------------------------------------

    def _stream(self, node: str) -> list[Span]:
        if self._streams is None:
            streams: dict[str, list[Span]] = {}
            for s in self.spans:
                streams.setdefault(s.node, []).append(s)
            for items in streams.values():
                items.sort(key=lambda s: s.seq)
            self._streams = streams
        return self._streams.get(node, [])

    def _writes(self, node: str, key: str) -> list[Span]:
        if self._puts is None:
            puts: dict[tuple[str, str], list[Span]] = {}
            for s in self.spans:  # per (node, key): a host's served and local writes
                if s.kind is SpanKind.STATE_PUT:
                    puts.setdefault((s.node, s.name), []).append(s)
            for items in puts.values():
                items.sort(key=lambda s: s.seq)
            self._puts = puts
        return self._puts.get((node, key), [])

    def _faults(self) -> tuple[dict[str, list[Span]], dict[str, list[Span]]]:
        if self._faults_on is None or self._node_faults is None:
            on: dict[str, list[Span]] = {}
            nodes: dict[str, list[Span]] = {}
            for s in self.spans:
                if s.kind is not SpanKind.FAULT:
                    continue
                target = s.attrs.get(attr.FAULT_MESSAGE)
                if isinstance(target, str):
                    on.setdefault(target, []).append(s)
                elif s.name in ("crash", "restart", "pause"):
                    nodes.setdefault(s.node, []).append(s)
            self._faults_on, self._node_faults = on, nodes
        return self._faults_on, self._node_faults

    # --- the edges ------------------------------------------------------------------------------

    def _previous_step(self, span: Span) -> Span | None:
        """The handler's step before `span` (same invocation), else the step that triggered it."""
        if not span.parent or (span.cause and span.parent == span.cause):
            return None  # a trigger: it came by message (or from outside)
        stream = self._stream(span.node)
        i = _seq_index(stream, span.seq)
        for j in range(i - 1, max(-1, i - 1 - _LOOKBACK), -1):
            s = stream[j]
            if s.parent == span.parent and s.kind is not SpanKind.FAULT:
                return s
        return self._by_ref.get(span.parent)

    def _causes(self, span: Span) -> list[tuple[Span, str]]:
        found: list[tuple[Span, str]] = []
        prev = self._previous_step(span)
        if prev is not None:
            found.append((prev, "the handler's previous step" if prev.ref != span.parent else "what started the handler"))
        if span.cause:
            sender = self._by_ref.get(span.cause)
            if sender is not None:
                found.append((sender, f"sent it ({sender.kind.value} {sender.name} on {sender.node})"))
        if span.kind is SpanKind.STATE_GET and span.cause:
            write = self._last_write(span)
            if write is not None:
                found.append((write, f"the last write of {span.name} before this read"))
        if span.attrs.get(attr.LOCAL) and (prev is None or not prev.attrs.get(attr.LOCAL)):
            earlier = self._earlier_local(span)
            if earlier is not None:
                found.append((earlier, f"the last step on {span.node} of another handler that used ctx.local"))
        return found

    def _last_write(self, read: Span) -> Span | None:
        writes = self._writes(read.node, read.name)
        i = _seq_index(writes, read.seq)
        return writes[i - 1] if i > 0 else None

    def _earlier_local(self, span: Span) -> Span | None:
        """What another handler last did with the node's memory before `span` read it."""
        stream = self._stream(span.node)
        i = _seq_index(stream, span.seq)
        for j in range(i - 1, max(-1, i - 1 - _LOOKBACK), -1):
            s = stream[j]
            if s.parent != span.parent and s.attrs.get(attr.LOCAL):
                return s
        return None

    # --- cuts -----------------------------------------------------------------------------------

    def cut(self, target: Span | str, *, depth: int | None = 12) -> list[CutStep]:
        """The pruned causal past of `target` (itself last); `depth=None` is the whole causal past."""
        span = self._by_ref[target] if isinstance(target, str) else target
        if depth is None:
            return [CutStep(s, "in its causal past", 0) for s in self.index.causal_past(span)] \
                + [CutStep(span, "the finding", 0)]
        seen: dict[str, CutStep] = {span.ref: CutStep(span, "the finding", 0)}
        frontier = [span]
        for level in range(1, depth + 1):
            nxt: list[Span] = []
            for s in frontier:
                for cause, reason in self._causes(s):
                    if cause.ref not in seen:
                        seen[cause.ref] = CutStep(cause, reason, level)
                        nxt.append(cause)
            if not nxt:
                break
            frontier = nxt
        self._add_faults(seen, span)
        order = self.index.causal_sort(c.span for c in seen.values())
        return [seen[s.ref] for s in order]

    def _add_faults(self, seen: dict[str, CutStep], target: Span) -> None:
        on, nodes = self._faults()
        for step in list(seen.values()):
            for fault in on.get(step.span.ref, ()):
                seen.setdefault(fault.ref, CutStep(fault, f"injected on the message {step.span.ref} sent", step.depth))
        walked = {s.span.node for s in seen.values()}
        for node in sorted(walked):
            before = [f for f in nodes.get(node, ()) if f.ref != target.ref and self.index.happens_before(f, target)]
            for fault in before[-2:]:  # the latest crash/restart of a node the cut passes through
                seen.setdefault(fault.ref, CutStep(fault, f"{fault.name} of {node}, a node on the path", 0))

    def pair(self, first: Span | str, second: Span | str, *, depth: int | None = 12) -> PairCut:
        """Both sides of a pairwise finding."""
        a = self._by_ref[first] if isinstance(first, str) else first
        b = self._by_ref[second] if isinstance(second, str) else second
        if self.index.happens_before(a, b):
            relation = f"{a.ref} happened before {b.ref}"
        elif self.index.happens_before(b, a):
            relation = f"{b.ref} happened before {a.ref}"
        else:
            relation = "concurrent: neither could have known of the other"
        past_a = {s.ref for s in self.index.causal_past(a)}
        common = [s for s in self.index.causal_past(b) if s.ref in past_a and s.kind is not SpanKind.FAULT]
        split = common[-1] if common else None
        return PairCut(a, b, relation, self.cut(a, depth=depth), self.cut(b, depth=depth), split,
                       self._lost_between(a, b) + self._lost_between(b, a))

    def _lost_between(self, a: Span, b: Span) -> list[CutStep]:
        """Messages `a`'s node sent after `a` that never arrived, to a node on `b`'s side:
        had one arrived, it could have ordered the two."""
        if self.index.happens_before(a, b):
            return []
        on, _ = self._faults()
        b_nodes = {s.node for s in self.index.causal_past(b)} | {b.node}
        found = []
        for s in self._stream(a.node):
            if s.seq <= a.seq or (s.kind is not SpanKind.SEND and s.kind not in _STATE):
                continue
            if self.index.happens_before(s, b):
                continue
            for fault in on.get(s.ref, ()):
                dst = fault.attrs.get(attr.FAULT_TO)
                if "dropped" in str(fault.attrs.get(attr.FAULT, "")) and dst in b_nodes:
                    found.append(CutStep(s, f"sent after {a.ref}, lost on the way to {dst}", 1))
                    found.append(CutStep(fault, f"dropped {s.ref}", 1))
        return found


def _seq_index(stream: list[Span], seq: int) -> int:
    """Position of the first span with seq ≥ `seq` in a seq-ordered stream."""
    lo, hi = 0, len(stream)
    while lo < hi:
        mid = (lo + hi) // 2
        if stream[mid].seq < seq:
            lo = mid + 1
        else:
            hi = mid
    return lo

