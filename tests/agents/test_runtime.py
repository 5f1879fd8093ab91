"""The node runtime records one span per Context operation with correct causality."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgetrace import CausalIndex, ConfigError, SpanKind
from edgetrace.agents import App
from edgetrace.replay import SimGrid

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))
import toyapp


@pytest.fixture(scope="module")
def toy_run():
    grid = SimGrid(toyapp.app, toyapp.NODES, seed=1, profile=toyapp.PROFILE)
    return grid.run(toyapp.inputs(12), until_ns=30_000_000_000)


def test_every_chain_is_causally_ordered(toy_run):
    index = CausalIndex(toy_run.spans)
    for span in toy_run.spans:
        if span.kind is SpanKind.ACT:
            chain = [s for s in index.causal_past(span, trace=span.trace)]
            kinds = [s.kind for s in chain]
            assert kinds[0] is SpanKind.INPUT
            assert SpanKind.DECIDE in kinds
            decide = next(s for s in reversed(chain) if s.kind is SpanKind.DECIDE)
            assert index.happens_before(decide, span)


def test_served_state_is_caused_by_the_request(toy_run):
    by_ref = {s.ref: s for s in toy_run.spans}
    index = CausalIndex(toy_run.spans)
    served = [s for s in toy_run.spans if s.node == "hub" and s.kind is SpanKind.STATE_PUT]
    assert served
    for s in served:
        request = by_ref[s.cause]
        assert request.kind is SpanKind.STATE_PUT and request.node != "hub"
        assert index.happens_before(request, s)


def test_own_clock_entry_equals_seq(toy_run):
    index = CausalIndex(toy_run.spans)
    for s in toy_run.spans:
        assert index.clock(s)[s.node] == s.seq


def test_handler_errors_are_recorded_not_raised():
    app = App("boom")

    @app.on("go")
    async def go(ctx, payload):
        raise RuntimeError("kaboom")

    run = SimGrid(app, ["n"], seed=0).run([_input("n", "go")], until_ns=10**9)
    errors = [s for s in run.spans if s.kind is SpanKind.LOG and s.error]
    assert errors and "kaboom" in errors[0].error


def test_unhandled_topic_is_recorded():
    app = App("empty")
    run = SimGrid(app, ["n"], seed=0).run([_input("n", "nobody")], until_ns=10**9)
    assert any(s.name == "unhandled" for s in run.spans)


def test_sync_handlers_are_refused():
    app = App("x")
    with pytest.raises(ConfigError, match="async"):
        app.on("t")(lambda ctx, p: None)


def test_rng_is_seeded_per_node():
    app = App("dice")
    seen = {}

    @app.on("roll")
    async def roll(ctx, payload):
        seen.setdefault(ctx.node, []).append(ctx.rng.random())

    for _ in range(2):
        SimGrid(app, ["a", "b"], seed=9).run([_input("a", "roll"), _input("b", "roll")], until_ns=10**9)
    assert seen["a"][0] == seen["a"][1] and seen["a"][0] != seen["b"][0]


def _input(node, topic):
    from edgetrace.agents._scenario import ScheduledInput

    return ScheduledInput(0, node, topic, f"{node}-{topic}", {})


def test_missing_artifact_stops_the_run_before_recording(tmp_path):
    # a wheel built without its data files used to record every decide as an error;
    # now the run refuses to start and names the file
    app = App("broken", state_host="hub")
    app.policy("p", tmp_path / "policies" / "gone.rego")
    with pytest.raises(ConfigError, match=r"gone\.rego"):
        app.artifact_hashes()


def test_installed_scenarios_ship_their_data_files():
    from edgetrace.scenarios.agri.scenario import SCENARIO

    models, policies = SCENARIO.app.artifact_hashes()
    assert all(len(h) == 64 for h in [*models.values(), *policies.values()])
    assert (SCENARIO.folder / "faults" / "state-latency.toml").is_file()
