"""The test harness users get from the plugin: runs, selectors, and assertions that explain."""

from __future__ import annotations

import pytest
import toyapp

from edgetrace import FaultSpecError, Session, UsageError
from edgetrace.replay.testing import CausalAssertionError, GridHarness


def _grid(**kw):
    grid = GridHarness(toyapp.app, toyapp.NODES, profile=toyapp.PROFILE, **kw)
    for i in range(9):
        grid.input(f"t-{i % 3}", "frame", {"n": i, "weed": i % 3 == 0}, at=i * 0.4)
    return grid


def test_same_seed_same_spans_and_seed_changes_timings():
    a, b, c = _grid(seed=4).run(), _grid(seed=4).run(), _grid(seed=5).run()
    assert a.spans == b.spans
    assert [s.start for s in a.spans] != [s.start for s in c.spans]


def test_stop_when_a_selector_matches():
    run = _grid().run(until="60s", stop_when="act(spray)")
    assert run.stopped_by == "condition"
    assert len(run.acts("spray")) >= 1
    full = _grid().run(until="60s")
    assert len(full.acts("spray")) > len(run.acts("spray"))
    assert full.stopped_by == "idle"


def test_causal_assertions_pass_and_fail_with_the_chain():
    run = _grid().run()
    spray = run.acts("spray")[0]
    decide = next(s for s in run.find("decide(spray)") if s.trace == spray.trace)
    run.assert_happens_before(decide, spray)
    with pytest.raises(CausalAssertionError, match=r"but A is after B") as err:
        run.assert_happens_before(spray.ref, decide.ref)
    assert "causal chain" in str(err.value) and "decide" in str(err.value)
    other = next(s for s in run.find("input") if s.node != spray.node)
    first_inputs = run.find("input at t-0")[0], run.find("input at t-1")[0]
    run.assert_concurrent(*first_inputs)
    with pytest.raises(CausalAssertionError, match="concurrent"):
        run.assert_concurrent(decide, spray)
    assert other.node != spray.node
    run.assert_every_preceded("act(spray)", "decide(spray)")
    with pytest.raises(CausalAssertionError, match=r"violation\(s\) of every act\(spray\) after infer"):
        run.assert_every_preceded("act(spray)", "infer")


def test_one_refuses_ambiguous_selectors():
    run = _grid().run()
    with pytest.raises(CausalAssertionError, match=r"matches \d+ steps, expected exactly one"):
        run.one("act(spray)")


def test_invariant_failure_names_seed_and_faults():
    run = _grid(seed=2, faults=["latency(op=state.*, delay=2s)"]).run()
    with pytest.raises(CausalAssertionError) as err:
        run.assert_invariants("every act(spray) after input where payload.weed == true")
    text = str(err.value)
    assert "seed 2" in text and "latency(" in text and "timeout after 1s" in text


def test_bad_inputs_are_clear():
    with pytest.raises(FaultSpecError, match="latncy"):
        _grid(faults=["latncy(delay=1s)"])
    with pytest.raises(UsageError, match="unknown node 'nope'"):
        _grid().input("nope", "frame", {})
    with pytest.raises(UsageError, match="needs an edgetrace App"):
        GridHarness(object(), ["a"])  # type: ignore[arg-type]


def test_saved_run_opens_as_a_session_that_names_its_app(tmp_path):
    run = _grid(faults=["latency(op=state.*, delay=2s)"]).run()
    path = run.save(tmp_path / "run.ets")
    session = Session(path)
    assert session.spans == run.spans
    assert session.manifest.app_ref.endswith("toyapp.py:app")
    assert session.manifest.meta["faults"] == run.faults
