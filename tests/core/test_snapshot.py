"""Snapshot documents: only plain data goes in, and it comes back as itself."""

from __future__ import annotations

import random

import pytest

from edgetrace._records import Span, SpanKind
from edgetrace._snapshot import SNAPSHOT, SnapshotState, is_snapshot, plain_data_problem
from edgetrace._stepkey import step_keys


@pytest.mark.parametrize(("value", "problem"), [
    ({"n": 1, "xs": [1.5, "a", None, True, b"\x00"], "m": {"k": {"deep": []}}}, ""),
    ({"pair": (1, 2)}, "ctx.local['pair'] is a tuple"),
    ({"seen": {1.5: "x"}}, "ctx.local['seen'] has a float key 1.5"),
    ({"s": {1, 2}}, "ctx.local['s'] is a set"),
    ({"o": object()}, "ctx.local['o'] is a object"),
    ({"big": 2**70}, "ctx.local['big'] is an integer too large"),
    ({"xs": [1, [2, (3,)]]}, "ctx.local['xs'][1][1] is a tuple"),
])
def test_plain_data_problem_names_where_and_what(value: object, problem: str) -> None:
    found = plain_data_problem(value, "ctx.local")
    assert found.startswith(problem) if problem else found == ""


def test_a_state_document_round_trips() -> None:
    rng = random.Random("3/rover-1")
    rng.random()
    state = SnapshotState(node="rover-1", round=7, local={"n": 3, "h": [1, 2]}, store=None,
                          rng=rng.getstate(), next_call=12)
    again = SnapshotState.decode(*state.encode())
    assert again == state
    restored = random.Random()
    restored.setstate(again.rng)
    assert restored.random() == rng.random()


def test_a_snapshot_record_is_not_a_step() -> None:
    spans = [Span(node="a", seq=1, kind=SpanKind.LOG, name="log", trace="t"),
             Span(node="a", seq=2, kind=SpanKind.LOG, name=SNAPSHOT),
             Span(node="a", seq=3, kind=SpanKind.LOG, name="log", trace="t")]
    assert is_snapshot(spans[1]) and not is_snapshot(spans[0])
    assert step_keys(spans) == {"a:1": ("t", "a", "log", "log", 1), "a:3": ("t", "a", "log", "log", 2)}
