"""Minimisation that finds the cause: ddmin is 1-minimal, judges plans across failing seeds,
and takes failures apart occurrence by occurrence (where greedy on one seed keeps an
irrelevant jitter, ddmin drops it)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetrace.replay._ddmin import ddmin, find_cause
from edgetrace.replay._executor import SweepTask, run_one
from edgetrace.replay._sweep import minimise, minimise_failure, sweep

CHECK = "every act(spray) after input where payload.weed == true"
APP = str(Path(__file__).resolve().parent / "toyapp.py") + ":app"  # the app, as --app names it
DROP, JITTER = "drop(op=state.*, p=0.05)", "jitter(amount=2ms, p=0.9)"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    import toyapp

    from edgetrace.replay.testing import GridHarness

    grid = GridHarness(toyapp.app, toyapp.NODES, profile={"default": {"latency": "10ms"}}, seed=1)
    grid.inputs(toyapp.inputs(30))
    return grid.run(until="60s").save(tmp_path_factory.mktemp("ddmin") / "toy.ets")


def test_ddmin_finds_exactly_what_is_needed():
    got, tries, complete = ddmin(list("abcdefgh"), lambda s: {"c", "f"} <= set(s))
    assert got == ["c", "f"] and complete and tries < 2 ** 8
    assert ddmin(list("abc"), lambda s: True)[0] == []  # the empty plan already fails
    assert ddmin(["x"], lambda s: "x" in s)[0] == ["x"]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10), st.sets(st.frozensets(st.integers(0, 9), min_size=1, max_size=3), max_size=4),
       st.integers(0, 2 ** 16))
def test_ddmin_is_one_minimal(n, causes, salt):
    """Whatever the predicate (even not monotone), the result fails and dropping any one of its
    elements passes."""
    items = list(range(n))

    def fails(subset):
        chosen = set(subset)
        return chosen == set(items) or any(c <= chosen for c in causes) or hash((salt, tuple(subset))) % 7 == 0

    got, _, complete = ddmin(items, fails)
    assert complete and fails(got) and got == sorted(got)
    for i in range(len(got)):
        assert not fails(got[:i] + got[i + 1:])


def test_greedy_keeps_an_irrelevant_jitter_and_ddmin_drops_it(toy):
    seeds = range(6, 12)
    report = sweep(toy, seeds, faults=[DROP, JITTER], checks=[CHECK], executor="inline", app=APP)
    first = report.failing[0]
    task = SweepTask(str(toy), checks=(CHECK,), extra=(("app", APP),))

    def fails(plan):
        return run_one(task, first, faults=plan, fault_files=[])[0].violations > 0

    # greedy on the first failing seed: without the jitter the drops draw differently and that
    # seed passes, so the jitter looks needed
    assert minimise([DROP, JITTER], fails)[0] == [DROP, JITTER]
    # ddmin judged across the failing seeds: the drop alone still breaks the invariant
    assert report.minimal == [DROP]
    cause = report.cause
    assert cause is not None and cause.complete and cause.occurrences
    assert all(occ.spec == DROP and "dropped" in occ.text for _, occ in cause.occurrences)
    # judged on that one seed, the plan keeps the jitter, but its occurrences go: re-applied as
    # logged, nothing is re-drawn, so the drop that mattered stays the drop that mattered
    one = minimise_failure(task, [DROP, JITTER], [first], seeds=1)
    assert one.plan == [DROP, JITTER]
    assert one.occurrences and all(occ.spec == DROP for _, occ in one.occurrences)
    assert len(one.occurrences) < one.logged


def test_the_occurrences_found_are_one_minimal(toy):
    task = SweepTask(str(toy), checks=(CHECK,), extra=(("app", APP),))
    report = sweep(toy, range(12), faults=[DROP, JITTER], checks=[CHECK], executor="inline", app=APP)
    cause = report.cause
    assert cause is not None and cause.plan

    from edgetrace.replay.faults import FaultPlan, OccurrenceInjector

    def fails(chosen):
        def make():
            return OccurrenceInjector(FaultPlan.parse(cause.plan), chosen)

        return run_one(task, cause.seed, faults=cause.plan, fault_files=[], make_injector=make)[0].violations > 0

    chosen = [occ for _, occ in cause.occurrences]
    assert fails(chosen)
    for i in range(len(chosen)):
        assert not fails(chosen[:i] + chosen[i + 1:])


def test_find_cause_with_scripted_runs():
    """The two phases, with a fake replayer: fault b is needed on seed 2 only, occurrence 1 of it."""
    from edgetrace.replay.faults import Occurrence

    occs = [Occurrence(0, "b", "message", ("link", i), (0, (), True), f"drop {i}") for i in range(4)]

    def run(plan, seed, chosen):
        if chosen is not None:
            return any(o.where == ("link", 1) for o in chosen), {"seed": seed}
        return "b" in plan and seed == 2, {"seed": seed}

    cause = find_cause(["a", "b", "c"], [1, 2, 5], run, lambda plan, seed: occs, seeds=3)
    assert cause.plan == ["b"] and cause.seed == 2 and cause.first == {"seed": 2}
    assert cause.numbers == [1] and cause.logged == 4


def test_every_printed_cause_command_shows_its_violation(toy, tmp_path):
    report = sweep(toy, range(12), faults=[DROP, JITTER], checks=[CHECK], executor="inline", app=APP)
    data = report.to_dict()["cause"]
    assert "--occurrences" in data["reproduce"]
    argv = shlex.split(data["reproduce"])
    import toyapp

    env_path = str(__import__("pathlib").Path(toyapp.__file__).parent)
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([env_path, os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "edgetrace", *argv[1:], "--json"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300, env=env)
    got = json.loads(r.stdout)["violations"][0]
    want = data["violation"]
    assert (got["span"], got["trace"], got["invariant"]) == (want["span"], want["trace"], want["invariant"])
    assert "the injected events that still break it" in report.render_text()
