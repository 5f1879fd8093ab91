"""Replay from a cut on the agri fleet (ONNX extractor, Rego policy, state on the hub over 4G)."""

from __future__ import annotations

import pytest

from edgetrace._records import Span
from edgetrace.agents._scenario import load_scenario
from edgetrace.replay import Replayer
from edgetrace.replay._cuts import Cut
from edgetrace.replay.faults import FaultPlan
from edgetrace.replay.testing import GridHarness
from edgetrace.scenarios.agri.scenario import inputs


@pytest.fixture(scope="module")
def replayer(tmp_path_factory: pytest.TempPathFactory) -> Replayer:
    scenario = load_scenario("agri")
    nodes = scenario.nodes(3)
    grid = GridHarness(scenario.app, nodes, profile=scenario.profile("good"), seed=2, snapshot_every="5s")
    grid.inputs(inputs(2, 3, duration_s=40.0))
    path = grid.run(until="60s").save(tmp_path_factory.mktemp("agri") / "agri.ets")
    return Replayer(path, app=scenario.app)


def suffix(spans: list[Span], cut: Cut) -> list[Span]:
    return sorted((s for s in spans if s.seq > cut.seqs.get(s.node, 0)), key=lambda s: (s.node, s.seq))


def test_the_fleet_has_cuts_and_each_replays_as_the_full_replays_suffix(replayer: Replayer) -> None:
    cuts = replayer.cuts.cuts()
    assert len(cuts) >= 3
    full_report, full = replayer.run()
    assert full_report.fidelity == 1.0
    for cut in cuts:
        report, run = replayer.run(start=cut)
        assert sorted(run.spans, key=lambda s: (s.node, s.seq)) == suffix(full.spans, cut), cut.id
        assert report.fidelity == 1.0 and report.invariants == full_report.invariants


def test_the_state_latency_plan_from_a_cut_equals_the_full_replay_after_it(replayer: Replayer) -> None:
    cut = replayer.cuts.cuts()[1]
    plan = FaultPlan.parse([f"latency(op=state.*, link=tractor-*->hub, delay=2s, at={cut.at_ns + 1}ns)"])
    full_report, full = replayer.run(plan=plan)
    report, run = replayer.run(plan=plan, start=cut)
    assert full.faults_applied > 0
    assert sorted(run.spans, key=lambda s: (s.node, s.seq)) == suffix(full.spans, cut)
    # the motivating bug shows from the cut as it does in the full replay: the same violations after it
    after = {s.ref for s in run.spans}
    assert [v.span for v in report.violations] == [v.span for v in full_report.violations if v.span in after]


def test_the_fixed_policy_from_a_cut_gives_the_full_replays_verdicts_after_it(replayer: Replayer) -> None:
    from edgetrace.scenarios.agri.scenario import FOLDER

    cut = replayer.cuts.cuts()[1]
    plan = FaultPlan.parse([f"latency(op=state.*, link=tractor-*->hub, delay=2s, at={cut.at_ns + 1}ns)"])
    fixed = {"spray_policy": FOLDER / "policies" / "spray_policy_fixed.rego"}
    full_report, _ = replayer.run(plan=plan, policies=fixed, invariants=list(replayer.app.invariants.values()))
    report, _ = replayer.run(plan=plan, policies=fixed, invariants=list(replayer.app.invariants.values()), start=cut)
    assert report.counterfactual is not None and full_report.counterfactual is not None
    assert report.counterfactual["verdicts"]["fixed"] == full_report.counterfactual["verdicts"]["fixed"] > 0
    assert not report.violations


def test_a_sweep_from_a_cut_replays_each_seed_from_it_and_says_so_in_its_commands(
        replayer: Replayer, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import shlex

    from edgetrace.cli import main
    from edgetrace.replay._sweep import sweep

    cut = replayer.cuts.cuts()[1]
    spec = f"latency(op=state.*, link=tractor-*->hub, delay=2s, p=0.5, at={cut.at_ns + 1}ns)"
    app = "edgetrace.scenarios.agri.scenario:app"
    report = sweep(replayer.session.path, [0, 1, 2, 3], faults=[spec], app=app, start=cut.id,
                   executor="inline", do_minimise=False)
    again = sweep(replayer.session.path, [0, 1, 2, 3], faults=[spec], app=app, start=cut.id,
                  executor="inline", do_minimise=False)
    assert report.failing and [r.to_dict() for r in report.results] == [r.to_dict() for r in again.results]
    seed = report.failing[0]
    command = report.command(seed)
    assert f"--from {cut.id}" in command
    assert main([*shlex.split(command)[1:], "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["from_cut"]["id"] == cut.id
    assert len(out["violations"]) == next(r.violations for r in report.results if r.seed == seed)
