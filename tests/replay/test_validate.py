"""A plan or check that names something that does not exist is bad input, with a suggestion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgetrace import FaultSpecError, InvariantError
from edgetrace.cli import main
from edgetrace.replay import Replayer

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    return Replayer(DATA / "agri-demo.ets")


@pytest.mark.parametrize(("spec", "suggestion"), [
    ("crash(node=hbu, at=1s)", "did you mean 'hub'"),
    ("partition(nodes=tractor-99)", "matches no node"),
    ("drop(link=tractor-*->hbu)", "did you mean 'hub'"),
    ("model(name=event_extractr, fault=error)", "did you mean 'event_extractor'"),
    ("rule_timeout(policy=spray_polcy)", "did you mean 'spray_policy'"),
    ("drop(topic=frme)", "did you mean 'frame'"),
    ("latency(op=stat.get, delay=1s)", "did you mean 'state.get'"),
    ("state_unavailable(key=zone/row-*)", "matches no state key"),
    ("skew(node=tractor-1, offset=1s)", "did you mean 'tractor-01'"),
])
def test_a_misspelled_fault_target_is_refused_with_a_suggestion(replayer, spec, suggestion):
    from edgetrace.replay.faults import FaultPlan

    with pytest.raises(FaultSpecError, match=suggestion):
        replayer.run(plan=FaultPlan.parse([spec]))


@pytest.mark.parametrize(("check", "suggestion"), [
    ("never act(spray) at tractor-99", "matches no node"),
    ("every act(spray) after infer(event_extractr)", "did you mean 'event_extractor'"),
    ("never decide(spray_polcy)", "did you mean 'spray_policy'"),
])
def test_a_misspelled_check_is_refused_with_a_suggestion(replayer, check, suggestion):
    from edgetrace.replay._invariants import parse_invariant

    with pytest.raises(InvariantError, match=suggestion):
        replayer.run(invariants=[parse_invariant(check)])


def test_globs_that_match_something_are_fine(replayer):
    from edgetrace.replay.faults import FaultPlan

    report, _ = replayer.run(plan=FaultPlan.parse(["drop(link=tractor-0*->hub, p=0.1)", "latency(op=state.*, delay=1s)"]))
    assert report.faults_applied > 0


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    shutil.copy(DATA / "agri-demo.ets", tmp_path / "s.ets")
    monkeypatch.chdir(tmp_path)
    assert main(["replay", "s.ets", "--fault", "crash(node=hbu, at=1s)"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'hub'" in err
    assert main(["replay", "s.ets", "--check", "never act(spray) at tractor-99"]) == 2


def test_a_grid_harness_checks_its_faults_and_assertions_too():
    from edgetrace.agents import App, Context
    from edgetrace.replay.testing import GridHarness

    app = App("tiny")

    @app.on("ping", nodes="a")
    async def ping(ctx: Context, _: object) -> None:
        await ctx.act("pong")

    with pytest.raises(FaultSpecError, match="did you mean 'a'"):
        GridHarness(app, ["a", "b"]).fault("crash(node=aa, at=1s)").input("a", "ping", None).run(until="1s")
    run = GridHarness(app, ["a", "b"]).input("a", "ping", None).run(until="1s")
    with pytest.raises(InvariantError, match="matches no node"):
        run.assert_invariants("never act(pong) at c")
