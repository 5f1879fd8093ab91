"""Synthetic sessions for benchmarks, with real delta clocks.

Two topologies, because vector-clock cost depends on how causality spreads:
- `fleet` (the shape edgetrace is for): regions of one gateway and its tractors; tractors
  call their gateway (state reads/writes, request + reply); gateways sync with a central
  node now and then. Causality stays mostly regional.
- `mesh`: every message goes to a uniformly random node. Clocks become dense: the worst
  case for vector clocks, reported for honesty.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from edgetrace._records import Span, SpanKind

LOCAL_KINDS = [SpanKind.INFER, SpanKind.DECIDE, SpanKind.ACT, SpanKind.LOG]


class _Node:
    __slots__ = ("clock", "name", "now", "seq")

    def __init__(self, name: str) -> None:
        self.name = name
        self.clock: dict[str, int] = {}
        self.seq = 0
        self.now = 0


def synth_spans(records: int, nodes: int, *, seed: int = 0, topology: str = "fleet",
                p_message: float = 0.2, region_size: int = 25, parents: bool = False) -> Iterator[Span]:
    """`parents`: fill in `parent` as the runtime does (a served request's parent is the request,
    a reply's is the handler's root step), for benchmarks that walk handler program order."""
    rng = random.Random(seed)
    grid = [_Node(f"node-{i:04d}") for i in range(nodes)]
    produced = 0
    trace_no = 0

    def emit(n: _Node, kind: SpanKind, name: str, trace: str, cause: _Node | None, attrs: dict,
             parent: str = "") -> Span:
        changes: dict[str, int] = {}
        if cause is not None:
            for k, v in cause.clock.items():
                if k != n.name and v > n.clock.get(k, 0):
                    n.clock[k] = v
                    changes[k] = v
            if cause.seq > n.clock.get(cause.name, 0):
                n.clock[cause.name] = cause.seq
                changes[cause.name] = cause.seq
        n.seq += 1
        start = n.now
        n.now += rng.randint(50_000, 5_000_000)
        return Span(node=n.name, seq=n.seq, kind=kind, name=name, trace=trace, parent=parent if parents else "",
                    cause=f"{cause.name}:{cause.seq}" if cause else "", start=start, end=n.now,
                    vc=dict(sorted(changes.items())), attrs=attrs)

    def local(n: _Node, trace: str) -> Span:
        kind = rng.choice(LOCAL_KINDS)
        attrs = ({"edgetrace.output": {"type": "weed_detected", "confidence": 0.91}} if kind is SpanKind.INFER
                 else {"edgetrace.decision": "hold", "edgetrace.rules_fired": ["zone_clear"]}
                 if kind is SpanKind.DECIDE else {})
        return emit(n, kind, kind.value, trace, None, attrs)

    while produced < records:
        trace_no += 1
        trace = f"t{trace_no:08d}"
        i = rng.randrange(nodes)
        n = grid[i]
        if rng.random() >= p_message or produced + 4 > records:
            yield local(n, trace)
            produced += 1
            continue
        if topology == "mesh":
            j = rng.randrange(nodes - 1)
            peer = grid[j + (j >= i)]
        else:
            region = i // region_size
            gateway = grid[region * region_size]
            if n is gateway:  # a gateway syncs with the central node (node 0) or a neighbour region
                peer = grid[0] if rng.random() < 0.5 else grid[rng.randrange(0, nodes, region_size)]
                if peer is n:
                    peer = grid[(i + region_size) % nodes]
            else:
                peer = gateway
        op = SpanKind.STATE_GET if parents and rng.random() < 0.5 else SpanKind.STATE_PUT
        req = emit(n, op, "zones/row-12", trace, None, {"edgetrace.to": peer.name})
        yield req
        served_cause = _Node(n.name)
        served_cause.clock, served_cause.seq = n.clock, n.seq
        served = emit(peer, op, "zones/row-12", trace, served_cause,
                      {"edgetrace.state.key": "zones/row-12"}, parent=req.ref)
        yield served
        reply_cause = _Node(peer.name)
        reply_cause.clock, reply_cause.seq = peer.clock, peer.seq
        yield emit(n, SpanKind.RECV, "state.put:reply", trace, reply_cause, {}, parent=req.ref)
        produced += 3
