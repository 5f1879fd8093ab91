"""Random message histories between real recorders, with every span's full clock kept on the
side: the definition the causal index and clock references are checked against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from edgetrace import SpanKind
from edgetrace.agents import MemorySink, Recorder


def histories(nodes: Sequence[str], *, steps: int, actions: Sequence[str],
              self_sends: bool) -> st.SearchStrategy[tuple[list[Any], dict[str, Any]]]:
    """Runs of up to `steps` records: each a local step, a send, or the receive of a message in
    flight (delivered in any order), drawn from `actions` (repeat one to weight it). A send goes
    to any node, itself included when `self_sends`. Returns (spans, full clock by ref)."""

    @st.composite
    def draw_history(draw: Any) -> tuple[list[Any], dict[str, Any]]:
        sink = MemorySink()
        recorders = {n: Recorder(n, sink) for n in nodes}
        full = {}
        in_flight: list[tuple[dict[str, int], str, str]] = []
        for _ in range(draw(st.integers(1, steps))):
            node = draw(st.sampled_from(list(nodes)))
            action = draw(st.sampled_from(list(actions)))
            if action == "recv" and in_flight:
                clock, cause, dst = in_flight.pop(draw(st.integers(0, len(in_flight) - 1)))
                span = recorders[dst].record(SpanKind.RECV, "m", cause=cause, merge=clock)
                full[span.ref] = recorders[dst].clock
            else:
                rec = recorders[node]
                span = rec.record(SpanKind.SEND if action == "send" else SpanKind.LOG, "x")
                full[span.ref] = rec.clock
                if action == "send":
                    to = list(nodes) if self_sends else [n for n in nodes if n != node]
                    in_flight.append((rec.clock_dict(), span.ref, draw(st.sampled_from(to))))
        return sink.spans, full

    return draw_history()
