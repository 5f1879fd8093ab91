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


def _good() -> tuple[bytes, bytes]:
    rng = random.Random("0/hub")
    return SnapshotState(node="hub", round=1, local={"n": 1}, store={"k": 2}, rng=rng.getstate(),
                         next_call=0).encode()


@pytest.mark.parametrize(("rng", "says"), [
    ([3, [1, 2, 3], None], "rng position"),  # a state vector of the wrong size
    ([3, [2**40] * 625, None], "rng position"),  # words wider than 32 bits
    (7, "does not hold"),
    ([3, "words", None], "does not hold"),
])
def test_a_bad_rng_position_is_refused_when_read_not_when_restored(rng: object, says: str) -> None:
    from edgetrace._codec import encode

    doc, _ = _good()
    with pytest.raises(ValueError, match=says):
        SnapshotState.decode(doc, encode(rng))


@pytest.mark.parametrize("change", [{"local": [1, 2]}, {"store": 3}, {"next_call": "x"}, {"node": None},
                                    {"extra": 1}, {"local": {"k": 1}, "round": 1.5}])
def test_a_document_with_wrong_fields_is_refused(change: dict[str, object]) -> None:
    from edgetrace._codec import decode_any, encode

    doc, rng = _good()
    with pytest.raises(ValueError, match="does not hold"):
        SnapshotState.decode(encode({**decode_any(doc), **change}), rng)


def test_the_snapshot_decoder_refuses_any_bytes_with_a_value_error() -> None:
    """Fuzzed: whatever the blobs hold, reading them gives a state `restore` can use or a ValueError."""
    from hypothesis import given
    from hypothesis import strategies as st

    from edgetrace._codec import decode_any, encode

    doc, rng = _good()
    plain = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
                         lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                         max_leaves=12)

    @given(st.one_of(st.binary(max_size=64), plain.map(encode),
                     st.dictionaries(st.sampled_from(["v", "node", "round", "local", "store", "next_call"]), plain)
                     .map(lambda d: encode({**decode_any(doc), **d}))),
           st.one_of(st.binary(max_size=64), plain.map(encode), st.just(rng)))
    def check(data: bytes, position: bytes) -> None:
        try:
            state = SnapshotState.decode(data, position)
        except ValueError:
            return
        random.Random().setstate(state.rng)
        assert isinstance(state.local, dict) and isinstance(state.next_call, int)

    check()
