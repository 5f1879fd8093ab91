"""Executors: a sweep's report is the same bytes whatever runs its seeds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgetrace import UsageError
from edgetrace.replay._executor import (
    InlineExecutor,
    ProcessExecutor,
    SweepTask,
    batches,
    make_executor,
    ship,
    unpack,
)
from edgetrace.replay._sweep import sweep

HERE = Path(__file__).resolve().parent
CHECK = "every act(spray) after input where payload.weed == true"
PLAN = ["drop(op=state.*, p=0.05)", "jitter(amount=2ms, p=0.9)"]
APP = str(HERE / "toyapp.py") + ":app"  # the app, as --app names it


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    import toyapp

    from edgetrace.replay.testing import GridHarness

    grid = GridHarness(toyapp.app, toyapp.NODES, profile={"default": {"latency": "10ms"}}, seed=1)
    grid.inputs(toyapp.inputs(30))
    return grid.run(until="60s").save(tmp_path_factory.mktemp("executor") / "toy.ets")


def _report(toy, executor, **kw):
    report = sweep(toy, range(12), faults=PLAN, checks=[CHECK], executor=executor, app=APP, **kw)
    return json.dumps(report.to_dict(), sort_keys=True)


def test_batches_are_about_a_hundred_seeds_and_keep_every_worker_busy():
    assert [len(b) for b in batches(list(range(1000)), 2)] == [100] * 10
    small = batches(list(range(40)), 2)
    assert len(small) == 8 and [s for b in small for s in b] == list(range(40))
    assert batches([7], 16) == [[7]]


def test_inline_and_process_pool_agree(toy):
    inline = _report(toy, "inline")
    assert inline == _report(toy, "process", jobs=2)
    with ProcessExecutor(2) as pool:  # an executor given by the caller is reused, not closed
        assert _report(toy, pool) == inline
        assert _report(toy, pool, reexecute=True) == inline  # and the memo changes nothing
    assert _report(toy, InlineExecutor()) == inline


def test_shipped_tasks_carry_their_files(toy, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('[[fault]]\nkind = "drop"\nop = "state.*"\np = 0.05\n')
    task = SweepTask(str(toy), fault_files=(str(plan),), checks=(CHECK,))
    shipped = ship(task)
    assert dict(shipped.files)[str(plan)] == plan.read_bytes()
    there = unpack(shipped, Path(toy).read_bytes())
    assert Path(there.session).read_bytes() == Path(toy).read_bytes() and there.session != str(toy)
    assert Path(there.fault_files[0]).read_bytes() == plan.read_bytes() and not there.files


def test_bad_executor_is_a_usage_error():
    with pytest.raises(UsageError, match="expected one of: inline, process, ray"):
        make_executor("dask")
    with pytest.raises(UsageError, match="--address is for --executor ray"):
        make_executor("process", address="ray://x:10001")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_ray_agrees_with_the_process_pool(toy):
    ray = pytest.importorskip("ray")
    # the workers import the toy app the session names, as a cluster's would import an installed app
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        got = _report(toy, "ray")
    finally:
        ray.shutdown()
    assert got == _report(toy, "process", jobs=2)


def test_ray_missing_is_a_usage_error(monkeypatch):
    import importlib

    real = importlib.import_module

    def no_ray(name, *args):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_ray)
    with pytest.raises(UsageError, match=r"pip install 'edgetrace\[ray\]'"):
        make_executor("ray")
