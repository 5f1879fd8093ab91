"""Sweeps: seeds that fail are the seeds that fail alone, and the minimal plan keeps only what matters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgetrace.replay import replay_session
from edgetrace.replay._sweep import minimise, sweep

CHECK = "every act(spray) after input where payload.weed == true"
APP = str(Path(__file__).resolve().parent / "toyapp.py") + ":app"  # as --app names it


@pytest.fixture(scope="module")
def toy_session(tmp_path_factory):
    """The toy fleet on a lossless 10 ms LAN: the recording keeps CHECK, faults can break it."""
    import toyapp

    from edgetrace.replay.testing import GridHarness

    grid = GridHarness(toyapp.app, toyapp.NODES, profile={"default": {"latency": "10ms"}}, seed=1)
    grid.inputs(toyapp.inputs(30))
    run = grid.run(until="60s")
    assert not run.violations(CHECK)
    return run.save(tmp_path_factory.mktemp("sweep") / "toy.ets")
PLAN = ["drop(op=state.*, p=0.03)", "skew(node=t-0, offset=1s)"]


def test_sweep_agrees_with_single_replays_and_minimises(toy_session):
    report = sweep(toy_session, range(8), faults=PLAN, checks=[CHECK], jobs=2, app=APP)
    assert [r.seed for r in report.results] == list(range(8))
    assert report.failing and len(report.failing) < 8, "the plan should break some seeds, not all"
    for r in report.results:
        single, _, _ = replay_session(toy_session, faults=PLAN, checks=[CHECK], seed=r.seed, app=APP)
        assert len(single.violations) == r.violations
    # the skew is irrelevant to the violation: the minimal plan is the drop alone
    assert report.minimal == ["drop(op=state.*, p=0.03)"] and report.minimal_seed == report.failing[0]
    again = sweep(toy_session, range(8), faults=PLAN, checks=[CHECK], jobs=1, app=APP)
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(report.to_dict(), sort_keys=True)


def test_minimise_keeps_every_needed_fault():
    needed = {"a", "c"}
    plan, tries = minimise(["a", "b", "c", "d"], lambda p: needed <= set(p))
    assert plan == ["a", "c"] and tries > 0


def test_cli_sweep_json_and_errors(toy_session, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "edgetrace", "sweep", str(toy_session), *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)

    r = cli("--app", APP, "--fault", PLAN[0], "--check", CHECK, "--seeds", "4", "--jobs", "1", "--json")
    assert r.returncode in (0, 1), r.stderr
    data = json.loads(r.stdout)
    assert data["seeds"] == 4 and (r.returncode == 1) == bool(data["failing_seeds"])
    bad = cli("--fault", "drop(p=2)", "--seeds", "2")
    assert bad.returncode == 2 and "bad probability" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("--seed-range", "5:1")
    assert bad.returncode == 2 and "--seed-range" in bad.stderr


@pytest.mark.parametrize("seeds", [[]])
def test_no_seeds_is_a_usage_error(toy_session, seeds):
    from edgetrace import UsageError

    with pytest.raises(UsageError):
        sweep(toy_session, seeds)


def test_every_printed_repro_command_shows_the_violation_it_is_printed_with(toy_session, tmp_path):
    import shlex

    report = sweep(toy_session, range(8), faults=PLAN, checks=[CHECK], jobs=1, app=APP)
    data = report.to_dict()
    shown = [(r["reproduce"], r["first_violation"]) for r in data["results"] if r["reproduce"]]
    shown.append((data["reproduce"], data["minimal_violation"]))
    assert len(shown) >= 2
    for command, first in shown:
        argv = shlex.split(command)
        assert argv[:2] == ["edgetrace", "replay"]
        r = subprocess.run([sys.executable, "-m", "edgetrace", *argv[1:], "--json"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=300)
        got = json.loads(r.stdout)["violations"][0]
        assert (got["span"], got["trace"], got["invariant"]) == (first["span"], first["trace"], first["invariant"])


def test_a_sweep_says_in_how_many_seeds_it_reached_the_dangerous_state(toy_session):
    report = sweep(toy_session, range(6), faults=PLAN, checks=[CHECK, "sometimes recv where error ~ \"timeout*\""],
                   jobs=1, do_minimise=False, app=APP)
    (cov,) = report.coverage()
    assert cov["seeds"] == 6 and 0 < cov["seeds_reached"] <= 6
    assert f"reached in {cov['seeds_reached']} of 6 seeds" in report.render_text()
