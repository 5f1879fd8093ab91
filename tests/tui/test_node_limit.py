"""A session naming more nodes than the explorer's 16-bit node codes hold is refused in one line.

The frame that would pass the limit is refused *before* any of its nodes is interned: the
codes never overflow (it was an OverflowError traceback, exit 3), and the node table is left
as it was, so with --salvage the later frames of known nodes still read.
"""

from __future__ import annotations

import pytest

from edgetrace import CorruptSessionError, Manifest, SessionWriter, Span, SpanKind
from edgetrace.tui._store import TraceStore

LIMIT = 2**16 - 1  # codes 1..65,534 name nodes; 0 is ""


def _spans(nodes: list[str], trace: str) -> list[Span]:
    return [Span(node=n, seq=1 if trace == "a" else 2, kind=SpanKind.LOG, name="x", trace=f"{trace}-{n}")
            for n in nodes]


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    path = tmp_path_factory.mktemp("nodes") / "crowded.ets"
    known = [f"n{i:05d}" for i in range(LIMIT - 1)]  # fills the table exactly
    with SessionWriter(path, Manifest(session_id="crowded", app="t")) as w:
        for i in range(0, len(known), 8192):
            w.append(_spans(known[i : i + 8192], "a"))
        w.append(_spans(["one-too-many", "and-another"], "a"))  # the frame past the limit
        w.append(_spans(known[:3], "b"))  # known nodes again
    return path


def test_the_frame_past_the_node_limit_is_one_corrupt_session_error(crowded):
    store = TraceStore(crowded)
    with pytest.raises(CorruptSessionError) as caught:
        store.scan()
    message = str(caught.value)
    assert "more than 65,535 nodes" in message and "\n" not in message.split("; ")[0]


def test_salvage_skips_that_frame_and_reads_the_known_nodes_after_it(crowded):
    store = TraceStore(crowded, salvage=True)
    store.scan()
    assert len(store.damage) == 1 and "nodes" in store.damage[0].reason
    assert store.span_count == (LIMIT - 1) + 3
    assert store.span("n00002:2") is not None
