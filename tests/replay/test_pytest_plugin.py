"""The pytest plugin, tested the way users meet it: test files run by pytester."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# A user's pipeline and tests, as they would write them. The policy sprays on timeout:
# under enough state latency the invariant breaks, and only for some seeds.
USER_APP = '''
from edgetrace.agents import App, CallTimeout, StateUnavailable

app = App("sprayer", state_host="hub")
app.policy("spray", func=lambda d: {"decision": "spray" if d["weed"] or d["timeout"] else "hold",
                                    "fired": ["on-timeout"] if d["timeout"] else []})
app.invariant("no-spray-without-weed", "every act(spray) after input where payload.weed == true")

@app.on("frame", nodes="t-*")
async def on_frame(ctx, frame):
    timeout = False
    try:
        await ctx.state.put("seen/" + ctx.node, frame["n"], timeout=1.0)
    except (CallTimeout, StateUnavailable):
        timeout = True
    d = await ctx.decide("spray", {"weed": frame["weed"], "timeout": timeout})
    if d.value == "spray":
        await ctx.act("spray", n=frame["n"])

NODES = ["hub", "t-0", "t-1"]
PROFILE = {"links": [{"from": "*", "to": "*", "latency_min": "5ms", "latency_max": "900ms"}]}

def feed(grid, count=12):
    for i in range(count):
        grid.input(f"t-{i % 2}", "frame", {"n": i, "weed": i % 3 == 0}, at=i * 0.5)
    return grid
'''

USER_TESTS = '''
import pytest
from pipeline import app, NODES, PROFILE, feed

@pytest.mark.edgetrace_seeds(4)
def test_holds_on_a_good_link(edgetrace_grid):
    run = feed(edgetrace_grid(app, NODES)).run(until="20s")
    run.assert_invariants()
    assert run.acts("spray")

@pytest.mark.edgetrace_faults("latency(op=state.put, delay=0.6s)")
def test_breaks_under_state_latency(edgetrace_grid, edgetrace_seed):
    run = feed(edgetrace_grid(app, NODES, profile=PROFILE)).run(until="20s")
    run.assert_invariants("no-spray-without-weed")
'''


def _setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pipeline=USER_APP, test_user=USER_TESTS)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")


def test_passing_and_failing_user_tests(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _setup(pytester)
    save = tmp_path / "failures"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--edgetrace-save={save}", "-rf")
    result.assert_outcomes(passed=4, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*reproduce this failure*",
        "seed: 0",
        "rerun:   pytest */test_user.py::test_breaks_under_state_latency --edgetrace-seed 0",
        f"session: {save}/*.ets",
        "replay:  edgetrace replay *",
        "explore: edgetrace explore *",
    ])
    # the failure message shows the chain that led to the bad spray, not just `assert False`
    assert re.search(r"t-\d:\d+\s+decide\s+spray", out), out
    assert next(save.glob("*.ets"))
    # the printed replay command reproduces the violation from the saved session (it names the
    # app with --app: a session file's own app_ref is never imported on its say-so)
    printed = next(line for line in out.splitlines() if line.startswith("replay:  edgetrace replay "))
    assert " --app " in printed, printed
    argv = shlex.split(printed.removeprefix("replay:  edgetrace "))
    cli = subprocess.run([sys.executable, "-m", "edgetrace", *argv, "--json"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 1, cli.stderr
    violations = json.loads(cli.stdout)["violations"]
    assert violations and {v["invariant"] for v in violations} == {"no-spray-without-weed"}


ADHOC_TESTS = '''
from pipeline import app, NODES, PROFILE, feed

def test_adhoc_check(edgetrace_grid):
    grid = edgetrace_grid(app, NODES, profile=PROFILE, faults=["latency(op=state.put, delay=0.6s)"], seed=0)
    run = feed(grid).run(until="20s")
    run.assert_invariants("never act(spray) where args.n == 1")
'''


def test_printed_lines_work_from_where_pytest_was_run(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """`--edgetrace-save DIR` as two arguments (docs/pytest.md's table) once moved pytest's rootdir
    and broke the printed rerun; the printed replay also dropped the test's own check."""
    pytester.makepyfile(pipeline=USER_APP, test_adhoc=ADHOC_TESTS)
    save = tmp_path / "saved"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--edgetrace-save", str(save), "test_adhoc.py")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    rerun = next(line.split("rerun:", 1)[1].strip() for line in out.splitlines() if line.startswith("rerun:"))
    replay = next(line.split("replay:", 1)[1].strip() for line in out.splitlines() if line.startswith("replay:"))
    assert "--check 'never act(spray) where args.n == 1'" in replay
    again = subprocess.run([sys.executable, "-m", *shlex.split(rerun), "-p", "no:cacheprovider",
                            "--edgetrace-save", str(tmp_path / "again")], capture_output=True, text=True,
                           cwd=pytester.path)
    assert again.returncode == 1, again.stdout[-2000:]  # the failure again, not "no tests ran" (4)
    cli = subprocess.run([sys.executable, "-m", "edgetrace", *shlex.split(replay)[1:], "--json"],
                         capture_output=True, text=True, cwd=pytester.path)
    assert cli.returncode == 1, cli.stderr
    violated = {v["invariant"] for v in json.loads(cli.stdout)["violations"]}
    assert "never act(spray) where args.n == 1" in violated  # the test's own check, with the app's


def test_printed_seed_reproduces_the_same_failure(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _setup(pytester)
    outs = []
    for run in range(2):
        save = tmp_path / f"run{run}"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "test_user.py::test_breaks_under_state_latency",
            "--edgetrace-seed", "3", f"--edgetrace-save={save}")
        result.assert_outcomes(failed=1)
        outs.append(next(save.glob("*.ets")).read_bytes())
        assert "seed: 3" in result.stdout.str()
    from edgetrace import Session

    a, b = (Session(p) for p in sorted((tmp_path).glob("run*/*.ets")))
    assert [s.ref for s in a.spans] == [s.ref for s in b.spans]
    assert a.spans == b.spans


def test_seed_precedence_command_line_over_marker(pytester: pytest.Pytester) -> None:
    _setup(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "test_user.py::test_holds_on_a_good_link",
                                           "--edgetrace-seeds", "2")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "test_user.py::test_holds_on_a_good_link",
                                           "--edgetrace-seed", "9")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_holds_on_a_good_link?seed=9? PASSED*"])


def test_bad_marker_and_bad_fault_spec_are_clear(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pipeline=USER_APP, test_bad='''
import pytest
from pipeline import app, NODES, feed

@pytest.mark.edgetrace_seeds("many")
def test_bad_seeds(edgetrace_seed):
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "edgetrace_seeds: expected a count, range or list of ints" in result.stderr.str() + result.stdout.str()
    pytester.makepyfile(test_bad='''
from pipeline import app, NODES, feed

def test_bad_fault(edgetrace_grid):
    edgetrace_grid(app, NODES, faults=["latncy(delay=2s)"])
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FaultSpecError*latncy*"])


def test_importing_the_plugin_stays_light() -> None:
    code = ("import sys, edgetrace.replay.pytest_plugin as p; "
            "heavy = [m for m in ('onnxruntime', 'regopy', 'textual', 'numpy', 'edgetrace.agents') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.strip() == ""


SLOPPY_TESTS = '''
import time
from edgetrace.agents import App

app = App("sloppy", state_host="")

@app.on("tick", nodes="n")
async def on_tick(ctx, _):
    await ctx.send("n", "seen", {"at": time.time()})

def test_sloppy(edgetrace_grid):
    edgetrace_grid(app, ["n"]).input("n", "tick", None, at="1s").run(until="2s")

def test_tidy(edgetrace_grid):
    from pipeline import app as good, NODES, feed
    feed(edgetrace_grid(good, NODES)).run(until="20s")
'''


def test_auto_replay_fails_a_test_whose_run_does_not_replay(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pipeline=USER_APP, test_sloppy=SLOPPY_TESTS)
    pytester.makeini("[pytest]\nedgetrace_auto_replay = true\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*does not replay faithfully*", "*time.time() at test_sloppy.py:8*"])
    off = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "edgetrace_auto_replay=false")
    off.assert_outcomes(passed=2)
