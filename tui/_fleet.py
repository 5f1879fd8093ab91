"""The fleet as the recording saw it: per node and per link, from the scanned columns.

Per node: spans, errors, timeouts (calls that gave up, rule engines that ran out of time),
messages sent and received, and its clock offset (`edgetrace._clock_offsets`) with how it
was found. Per link (sender → receiver): messages, one-way latency percentiles on the common
axis (offsets applied), round trips of the calls made over it (one clock, so exact), error
replies, the calls over it that timed out, and how far apart its two clocks are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edgetrace import _attrs as attr
from edgetrace.tui._span_columns import ERROR, KIND_CODE, TIMEOUT
from edgetrace.tui._store import TraceStore

__all__ = ["Fleet", "LinkStats", "NodeStats", "fleet"]

_RECV = KIND_CODE["recv"]
_REQUESTS = (KIND_CODE["send"], KIND_CODE["state.get"], KIND_CODE["state.put"])


@dataclass
class NodeStats:
    node: str
    spans: int = 0
    errors: int = 0
    timeouts: int = 0
    sent: int = 0
    received: int = 0
    offset: str = ""
    method: str = ""


@dataclass
class LinkStats:
    src: str
    dst: str
    messages: int = 0
    p50: int = 0
    p90: int = 0
    p99: int = 0
    rtt_p50: int | None = None
    rtt_p99: int | None = None
    errors: int = 0
    timeouts: int = 0
    #: how far the receiver's clock reads ahead of the sender's (ns; the two estimated offsets)
    clock_delta: int = 0


@dataclass
class Fleet:
    nodes: list[NodeStats] = field(default_factory=list)
    links: list[LinkStats] = field(default_factory=list)
    reference: str = ""
    unknown_timeouts: int = 0  # calls that timed out whose destination the recording does not say


def _percentiles(values: npt.NDArray[np.int64], group: npt.NDArray[np.int64]) -> dict[int, tuple[int, int, int]]:
    """(p50, p90, p99) of `values` per group id (nearest-rank)."""
    if not len(values):
        return {}
    order = np.lexsort((values, group))
    g, v = group[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    ends = np.concatenate((starts[1:], [len(g)]))
    out: dict[int, tuple[int, int, int]] = {}
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        n = b - a
        pick = [v[a + min(n - 1, int(np.ceil(q * n)) - 1)] for q in (0.5, 0.9, 0.99)]
        out[int(g[a])] = (int(pick[0]), int(pick[1]), int(pick[2]))
    return out


def _timeout_targets(store: TraceStore) -> tuple[dict[tuple[int, int], int], int]:
    """Timed-out calls per (caller, callee) node codes, and how many had no known callee."""
    t = store.table
    sp = t.spans
    m = t.span_count
    timed = np.flatnonzero(((sp.flags[:m] & TIMEOUT) > 0) & (sp.kind[:m] == _RECV))
    found: dict[tuple[int, int], int] = {}
    unknown = 0
    if not len(timed):
        return found, 0
    requests = np.flatnonzero(np.isin(sp.kind[:m], _REQUESTS) & (sp.cause_node[:m] == 0))
    # a call's request is the latest request of the same node and trace before its timeout
    key_req = (sp.trace[requests].astype(np.int64) << 16 | sp.node[requests]) << 32 | sp.seq[requests]
    order = np.argsort(key_req)
    key_req, requests = key_req[order], requests[order]
    key_t = (sp.trace[timed].astype(np.int64) << 16 | sp.node[timed]) << 32 | sp.seq[timed]
    pos = np.searchsorted(key_req, key_t) - 1
    for i, p, kt in zip(timed.tolist(), pos.tolist(), key_t.tolist(), strict=True):
        if p < 0 or (int(key_req[p]) >> 32) != (kt >> 32):
            unknown += 1
            continue
        req = int(requests[p])
        attrs = t.arena.decode(int(sp.attrs[req])) or {}
        dst = t.nodes.find(str(attrs.get(attr.TO, "")))
        if dst is None:
            unknown += 1
            continue
        key = (int(sp.node[i]), dst)
        found[key] = found.get(key, 0) + 1
    return found, unknown


def fleet(store: TraceStore) -> Fleet:
    """The fleet of the spans scanned so far."""
    t = store.table
    sp = t.spans
    m = t.span_count
    names = t.nodes.text
    clock = store.estimate_clocks()
    nodes_col = sp.node[:m]
    n_codes = len(names)
    spans = np.bincount(nodes_col, minlength=n_codes)
    errors = np.bincount(nodes_col[(sp.flags[:m] & ERROR) > 0], minlength=n_codes)
    timeouts = np.bincount(nodes_col[(sp.flags[:m] & TIMEOUT) > 0], minlength=n_codes)
    msgs = store.messages()
    sent = np.bincount(msgs.src_node, minlength=n_codes)
    received = np.bincount(msgs.dst_node, minlength=n_codes)
    result = Fleet(reference=clock.reference)
    for code in range(1, n_codes):
        name = names[code]
        if not name or not (spans[code] or sent[code] or received[code]):
            continue
        result.nodes.append(NodeStats(
            name, int(spans[code]), int(errors[code]), int(timeouts[code]), int(sent[code]),
            int(received[code]), clock.describe(name) if name in clock.offsets else "",
            clock.method.get(name, "")))
    if len(msgs):
        off = t.node_offsets(n_codes)
        latency = (msgs.arr + off[msgs.dst_node]) - (msgs.dep + off[msgs.src_node])
        link = msgs.src_node.astype(np.int64) << 16 | msgs.dst_node.astype(np.int64)
        uniq, inverse, counts = np.unique(link, return_inverse=True, return_counts=True)
        pct = _percentiles(latency.astype(np.int64), inverse.astype(np.int64))
        # round trips: a reply's receive spans the call, on the caller's one clock
        replies = np.array([c for c, text in enumerate(t.names.text) if text.endswith(":reply")], np.uint32)
        is_reply = (sp.kind[msgs.dst] == _RECV) & np.isin(sp.name[msgs.dst], replies)
        rtt = (sp.end[msgs.dst] - sp.start[msgs.dst])[is_reply]
        caller_link = (msgs.dst_node.astype(np.int64) << 16 | msgs.src_node.astype(np.int64))[is_reply]
        rtt_group = np.searchsorted(uniq, caller_link)
        ok = (rtt_group < len(uniq))
        ok[ok] &= uniq[rtt_group[ok]] == caller_link[ok]
        rtt_pct = _percentiles(rtt[ok].astype(np.int64), rtt_group[ok].astype(np.int64))
        failed = (sp.flags[msgs.dst] & ERROR) > 0
        err = np.bincount(inverse[failed], minlength=len(uniq))
        timed, unknown = _timeout_targets(store)
        result.unknown_timeouts = unknown
        for k, key in enumerate(uniq.tolist()):
            a, b = key >> 16, key & 0xFFFF
            p50, p90, p99 = pct.get(k, (0, 0, 0))
            r = rtt_pct.get(k)
            result.links.append(LinkStats(
                names[a], names[b], int(counts[k]), p50, p90, p99, r[0] if r else None, r[2] if r else None,
                int(err[k]), timed.get((a, b), 0), int(off[a] - off[b])))
        for (a, b), n in timed.items():  # calls that never got through appear as links too
            if not any(ls.src == names[a] and ls.dst == names[b] for ls in result.links):
                result.links.append(LinkStats(names[a], names[b], 0, timeouts=n))
    result.nodes.sort(key=lambda s: (s.node != clock.reference, -(s.sent + s.received), s.node))
    result.links.sort(key=lambda ls: (-ls.messages - ls.timeouts, ls.src, ls.dst))
    return result
