"""pytest plugin (entry point `pytest11`): fault-injection fixtures for users' pipelines.

Fixtures:
    edgetrace_seed     the seed of this test run (an int)
    edgetrace_grid     factory: edgetrace_grid(app, nodes, profile=..., faults=[...]) -> GridHarness
    edgetrace_replay   edgetrace_replay(session, faults=[...], policies={...}) -> ReplayReport

Markers:
    @pytest.mark.edgetrace_seeds(50)              run once per seed 0..49 (or a range / list)
    @pytest.mark.edgetrace_faults("drop(p=0.2)")  add fault specs to every grid and replay

Seed precedence: --edgetrace-seed N (one seed) > --edgetrace-seeds N > the marker > the
`edgetrace_seed` ini value > 0. When a test that used these fixtures fails, the plugin saves
each run as a session and prints the seed and the exact commands to rerun, replay and explore
it. Importing this module must stay cheap: it is loaded in every pytest run of every project
with edgetrace installed, so the agent runtime, onnxruntime and regopy load only inside
fixtures.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

_RUNS = pytest.StashKey[list[dict[str, Any]]]()
_SEED = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgetrace", "edgetrace fault injection")
    group.addoption("--edgetrace-seed", type=int, default=None, metavar="N",
                    help="run edgetrace tests with this one seed (overrides markers; use to reproduce a failure)")
    group.addoption("--edgetrace-seeds", type=int, default=None, metavar="N",
                    help="run edgetrace tests once per seed 0..N-1 (overrides the edgetrace_seeds marker)")
    group.addoption("--edgetrace-save", default=None, metavar="DIR",
                    help="folder for the sessions of failing edgetrace tests (default: .edgetrace/failures)")
    group.addoption("--edgetrace-auto-replay", action="store_true", default=None,
                    help="replay every grid run a test makes and fail the test when it does not replay faithfully")
    parser.addini("edgetrace_auto_replay", "replay every grid run and fail on divergence or non-determinism",
                  type="bool", default=False)
    parser.addini("edgetrace_seed", "default seed for edgetrace fixtures", default="0")
    parser.addini("edgetrace_save", "folder for the sessions of failing edgetrace tests",
                  default=".edgetrace/failures")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "edgetrace_seeds(n_or_seeds): run the test once per seed (an int n means 0..n-1)")
    config.addinivalue_line(
        "markers", "edgetrace_faults(*specs): fault specs added to every edgetrace grid and replay in the test")


def _seeds_from_marker(marker: pytest.Mark) -> list[int]:
    if len(marker.args) != 1 or marker.kwargs:
        raise pytest.UsageError("edgetrace_seeds takes one argument: a count, a range or a list of seeds")
    arg = marker.args[0]
    if isinstance(arg, bool):
        raise pytest.UsageError(f"edgetrace_seeds: expected a count, range or list of ints, got {arg!r}")
    if isinstance(arg, int):
        if arg < 1:
            raise pytest.UsageError(f"edgetrace_seeds({arg}): the count must be at least 1")
        return list(range(arg))
    try:
        seeds = [int(s) for s in arg]
    except (TypeError, ValueError):
        raise pytest.UsageError(f"edgetrace_seeds: expected a count, range or list of ints, got {arg!r}") from None
    if not seeds:
        raise pytest.UsageError("edgetrace_seeds: the list of seeds is empty")
    return seeds


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edgetrace_seed" not in metafunc.fixturenames:
        return
    opt = metafunc.config.getoption
    marker = metafunc.definition.get_closest_marker("edgetrace_seeds")
    if opt("edgetrace_seed") is not None:
        seeds = [opt("edgetrace_seed")]
    elif opt("edgetrace_seeds") is not None:
        seeds = list(range(max(1, opt("edgetrace_seeds"))))
    elif marker is not None:
        seeds = _seeds_from_marker(marker)
    else:
        return
    metafunc.parametrize("edgetrace_seed", seeds, indirect=True, ids=[f"seed={s}" for s in seeds])


@pytest.fixture
def edgetrace_seed(request: pytest.FixtureRequest) -> int:
    """The seed for this test: parametrized by markers/options, else the ini default (0)."""
    seed = getattr(request, "param", None)
    if seed is None:
        seed = request.config.getoption("edgetrace_seed")
    if seed is None:
        try:
            seed = int(request.config.getini("edgetrace_seed"))
        except ValueError:
            raise pytest.UsageError("ini edgetrace_seed must be an integer") from None
    request.node.stash[_SEED] = int(seed)
    return int(seed)


def _marker_faults(request: pytest.FixtureRequest) -> list[str]:
    specs: list[str] = []
    for marker in reversed(list(request.node.iter_markers("edgetrace_faults"))):
        specs.extend(str(a) for a in marker.args)
    return specs


def _track(request: pytest.FixtureRequest, entry: dict[str, Any]) -> None:
    runs = request.node.stash.setdefault(_RUNS, [])
    runs.append(entry)


@pytest.fixture
def edgetrace_grid(request: pytest.FixtureRequest, edgetrace_seed: int) -> Any:
    """Build simulated grids: `edgetrace_grid(app, nodes, profile=None, faults=(), ...)`.

    Fault specs from `edgetrace_faults` markers are added to every grid; the seed is the
    test's unless given.
    """
    from edgetrace.replay.testing import GridHarness

    def make(app: Any, nodes: Any, *, seed: int | None = None, faults: Any = (), **kwargs: Any) -> GridHarness:
        auto = request.config.getoption("edgetrace_auto_replay") or request.config.getini("edgetrace_auto_replay")
        kwargs.setdefault("auto_replay", bool(auto))
        harness = GridHarness(app, list(nodes), seed=edgetrace_seed if seed is None else seed,
                              faults=[*_marker_faults(request), *faults], **kwargs)
        _track(request, {"kind": "grid", "harness": harness})
        return harness

    return make


@pytest.fixture
def edgetrace_replay(request: pytest.FixtureRequest, edgetrace_seed: int) -> Any:
    """Replay a recorded session: `edgetrace_replay(session, faults=[...], models={}, policies={})`.

    Returns the ReplayReport (violations, divergences, decisions per trace).
    """
    from edgetrace.replay._replayer import replay_session
    from edgetrace.replay._substitutions import artifact_ref, parse_substitutions

    def replay(
        session: str | Path, *, faults: Any = (), fault_files: Any = (), models: Any = None,
        policies: Any = None, checks: Any = (), seed: int | None = None, horizon_s: float = 30.0, app: Any = None,
    ) -> Any:
        faults = [*_marker_faults(request), *faults]
        swaps = {"model": parse_substitutions(models or {}, what="model"),
                 "policy": parse_substitutions(policies or {}, what="policy")}
        model_args = [f"{k}={artifact_ref(v)}" for k, v in swaps["model"].items()]
        policy_args = [f"{k}={artifact_ref(v)}" for k, v in swaps["policy"].items()]
        seed = edgetrace_seed if seed is None else seed
        report, replayer, run = replay_session(
            session, faults=faults, fault_files=[str(f) for f in fault_files], seed=seed, models=swaps["model"],
            policies=swaps["policy"], checks=list(checks), horizon_s=horizon_s, app=app,
        )
        _track(request, {"kind": "replay", "session": Path(session), "faults": faults,
                         "fault_files": [str(f) for f in fault_files], "models": model_args,
                         "policies": policy_args, "checks": list(checks), "seed": seed, "report": report,
                         "replayer": replayer, "run": run, "app": app})
        return report

    return replay


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    runs = item.stash.get(_RUNS, [])
    if not runs:
        return
    try:
        text = _save_failure(item, runs)
    except Exception as exc:  # saving must never hide the user's failure
        text = f"edgetrace: could not save the failing run: {type(exc).__name__}: {exc}"
    report.sections.append(("edgetrace: reproduce this failure", text))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")[:120]


def _save_dir(config: pytest.Config) -> Path:
    raw = config.getoption("edgetrace_save") or config.getini("edgetrace_save")
    folder = Path(raw)
    if not folder.is_absolute():
        folder = Path(config.rootpath) / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _app_ref(app: Any) -> str:
    """The `--app` a saved session needs: its own app_ref would not be trusted (docs/security.md)."""
    if app is None or (isinstance(app, str) and not app):
        return ""
    from edgetrace._trust import is_installed_app

    ref: str = app if isinstance(app, str) else app.reference()
    return "" if not ref or is_installed_app(ref) else ref


def _save_failure(item: pytest.Item, runs: list[dict[str, Any]]) -> str:
    from edgetrace.replay._replayer import replay_command

    seed = item.stash.get(_SEED, None)
    # the test by its absolute path: the line works from any directory, whatever rootdir pytest
    # picked for this run (a path-like option value can move it)
    target = f"{Path(item.path).resolve()}::{item.name}" if hasattr(item, "path") else item.nodeid
    lines = []
    if seed is not None:
        lines.append(f"seed: {seed}")
        lines.append(f"rerun:   pytest {shlex.quote(target)} --edgetrace-seed {seed}")
    folder = _save_dir(item.config)
    stem = _slug(item.nodeid.split("[")[0].replace(".py::", "::").replace("::", "-").replace("/", "-"))
    if seed is not None:
        stem += f"-seed={seed}"
    for i, entry in enumerate(runs, 1):
        suffix = f"-{i}" if len(runs) > 1 else ""
        if entry["kind"] == "grid":
            result = entry["harness"].result
            if result is None:
                continue
            path = result.save(folder / f"{stem}{suffix}.ets")
            lines.append(f"session: {path}")
            lines.append(f"replay:  {replay_command(path, checks=result.checks, app=_app_ref(entry['harness'].app))}")
            lines.append(f"explore: edgetrace explore {shlex.quote(str(path))}")
        else:
            out = folder / f"{stem}{suffix}.replayed.ets"
            entry["replayer"].save(entry["run"], entry["report"], out)
            command = replay_command(entry["session"], seed=entry["seed"], faults=entry["faults"],
                                     fault_files=entry["fault_files"], models=entry["models"],
                                     policies=entry["policies"], checks=entry["checks"],
                                     app=_app_ref(entry["app"]))
            lines.append(f"session: {entry['session']} (replayed run saved as {out})")
            lines.append(f"replay:  {command}")
            lines.append(f"explore: edgetrace explore {shlex.quote(str(entry['session']))} "
                         f"--against {shlex.quote(str(out))}")
    return "\n".join(lines)
