"""The cut finder's answer is a consistent cut, and the latest one, for random histories."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edgetrace._index import CausalIndex
from edgetrace._records import Span, SpanKind
from edgetrace._snapshot import RNG_BLOB, SNAPSHOT, STATE_BLOB
from edgetrace.agents._recorder import Recorder
from edgetrace.agents._sink import MemorySink
from edgetrace.replay._cuts import Cut, CutFinder

NODES = ["a", "b", "c", "d"]

# an action: (node, what, other) with what 0 = local step, 1 = send to other, 2 = receive, 3 = snapshot
actions = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=80)


def history(steps: list[tuple[int, int, int]], size: int) -> list[Span]:
    sink = MemorySink()
    nodes = NODES[:size]
    recorders = {n: Recorder(n, sink) for n in nodes}
    queues: dict[str, list[tuple[dict[str, int], str]]] = {n: [] for n in nodes}
    for t, (i, what, j) in enumerate(steps):
        node, other = nodes[i % size], nodes[j % size]
        rec = recorders[node]
        if what == 1 and other != node:
            span = rec.record(SpanKind.SEND, "m", start=t)
            queues[other].append((rec.clock_dict(), span.ref))
        elif what == 2 and queues[node]:
            vc, cause = queues[node].pop(j % len(queues[node]))
            rec.record(SpanKind.RECV, "m", start=t, cause=cause, merge=vc)
        elif what == 3:
            rec.record(SpanKind.LOG, SNAPSHOT, start=t, blobs={STATE_BLOB: "s", RNG_BLOB: "r"})
        else:
            rec.record(SpanKind.LOG, "log", start=t)
    return list(sink.spans)


def consistent(cut: Cut, index: CausalIndex) -> bool:
    for b, sb in cut.seqs.items():
        if sb:
            clock = index.clock(f"{b}:{sb}")
            if any(clock.get(a, 0) > sa for a, sa in cut.seqs.items() if a != b):
                return False
    return True


@settings(max_examples=300, deadline=None)
@given(actions, st.integers(2, 4), st.integers(0, 80))
def test_the_cut_at_or_before_a_time_is_consistent_and_the_latest(steps: list[tuple[int, int, int]], size: int,
                                                                   until: int) -> None:
    spans = history(steps, size)
    index = CausalIndex(spans)
    finder = CutFinder(spans, index, NODES[:size])
    cut = finder.latest(lambda _node, s: s.start <= until, "t")
    snapshots = {n: [s for s in spans if s.node == n and s.name == SNAPSHOT and s.start <= until] for n in NODES[:size]}
    if cut is None:
        return
    assert consistent(cut, index)
    firsts = {n: min((s.start for s in spans if s.node == n), default=cut.start_ns) for n in NODES[:size]}
    for node, seq in cut.seqs.items():
        if seq:
            assert any(s.seq == seq for s in snapshots[node])  # an allowed snapshot
        else:
            assert firsts[node] >= cut.start_ns  # a node starting afresh did nothing before the start
    # the latest: moving any one node on to a later allowed snapshot breaks consistency
    for node, seq in cut.seqs.items():
        for later in (s for s in snapshots[node] if s.seq > seq):
            moved = Cut("m", cut.at_ns, cut.start_ns, {**cut.seqs, node: later.seq})
            assert not consistent(moved, index)


@settings(max_examples=100, deadline=None)
@given(actions, st.integers(2, 4))
def test_every_listed_cut_is_consistent(steps: list[tuple[int, int, int]], size: int) -> None:
    spans = history(steps, size)
    index = CausalIndex(spans)
    for cut in CutFinder(spans, index, NODES[:size]).cuts():
        assert consistent(cut, index)


def test_a_receiver_whose_snapshot_holds_a_message_sent_after_the_senders_backs_off() -> None:
    # a: snapshot, send m; b: snapshot, receive m, snapshot — b's second snapshot holds m, sent after a's
    spans = history([(0, 3, 0), (1, 3, 0), (0, 1, 1), (1, 2, 0), (1, 3, 0)], 2)
    index = CausalIndex(spans)
    cut = CutFinder(spans, index, ["a", "b"]).latest(lambda _n, _s: True, "t")
    assert cut is not None and cut.seqs == {"a": 1, "b": 1}
    assert consistent(Cut("t", 0, 0, {"a": 2, "b": 3}), index)  # a's send in its prefix: fine again
