"""Where a sweep's seeds run: this process, a local process pool, or a Ray cluster.

A sweep is one `SweepTask` (session, plan, options: everything a replay needs, picklable)
and its seeds cut into batches. An executor runs `run_batch(task, seeds)` for every batch
and yields each batch's results as it completes; the sweep orders them by seed, and every
replay is deterministic, so the report is the same bytes whatever ran it and in whatever
order batches came back. Batches (~100 seeds) keep the per-task cost of a distributed engine
(scheduling, argument transfer, a worker loading the session once) small against the work.

    SweepExecutor ── map(task, batches) ──► [SeedResult, ...] per batch
      ├─ InlineExecutor     this process (the in-memory twin: tests, --jobs 1)
      ├─ ProcessExecutor    a local spawn pool (the default)
      └─ RayExecutor        Ray tasks on a local or remote cluster (`edgetrace[ray]`)
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import enum
import hashlib
import importlib
import math
import multiprocessing as mp
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from edgetrace._errors import UsageError

__all__ = ["ExecutorKind", "InlineExecutor", "ProcessExecutor", "RayExecutor", "SeedResult", "SweepExecutor",
           "SweepTask", "batches", "make_executor", "run_batch"]

BATCH = 100  # seeds per task, at most


@dataclass(frozen=True)
class SeedResult:
    """What one seed of a sweep came to."""

    seed: int
    verdict: str
    violations: int
    divergences: int
    first: dict[str, Any] | None
    coverage: tuple[tuple[str, int], ...] = ()  # (coverage invariant, times reached) in this seed

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "verdict": self.verdict, "violations": self.violations,
                "divergences": self.divergences, "first_violation": self.first,
                "coverage": dict(self.coverage)}


@dataclass(frozen=True)
class SweepTask:
    """Everything a worker needs to replay one seed of a sweep; plain data, so it pickles."""

    session: str
    faults: tuple[str, ...] = ()
    fault_files: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    reexecute: bool = False
    verify_memo: int = 0
    #: replay_session keywords added by other features (e.g. the app to run), passed as they are
    extra: tuple[tuple[str, Any], ...] = ()
    #: file contents shipped with the task to a machine that does not share this one's disk
    files: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)

    def options(self) -> dict[str, Any]:
        return {"models": list(self.models), "policies": list(self.policies), "checks": list(self.checks),
                "reexecute": self.reexecute, "verify_memo": self.verify_memo, **dict(self.extra)}


_LOADED: dict[tuple[str, int, int, tuple[tuple[str, Any], ...]], tuple[Any, Any]] = {}  # per process


def loaded(session: str, extra: tuple[tuple[str, Any], ...] = ()) -> tuple[Any, Any]:
    """(Replayer, SharedArtifacts) for this file as it is now, loaded once per process: a worker
    reads the session and builds each model once for all the seeds it runs."""
    from edgetrace.replay._replayer import Replayer
    from edgetrace.replay._world import SharedArtifacts

    kwargs = {k: v for k, v in extra if k in ("app", "trust_session")}
    try:
        stat = os.stat(session)
    except OSError:
        return Replayer(session, **kwargs), None  # raises the usual one-line error
    key = (session, stat.st_mtime_ns, stat.st_size, tuple(sorted(kwargs.items())))
    found = _LOADED.get(key)
    if found is None:
        for _, artifacts in _LOADED.values():  # one session per sweep: keep only the newest
            artifacts.close()
        _LOADED.clear()
        found = _LOADED[key] = (Replayer(session, **kwargs), SharedArtifacts())
    return found


def run_one(task: SweepTask, seed: int, *, faults: Sequence[str] | None = None,
            fault_files: Sequence[str] | None = None, **more: Any) -> tuple[SeedResult, Any]:
    """Replay one seed of `task` (optionally with another plan); (result, report)."""
    from edgetrace.replay._replayer import replay_session

    replayer, artifacts = loaded(task.session, task.extra)
    options = {**task.options(), **more}
    for key in ("app", "trust_session"):
        options.pop(key, None)
    report, _, _ = replay_session(
        task.session, faults=list(task.faults if faults is None else faults),
        fault_files=list(task.fault_files if fault_files is None else fault_files), seed=seed,
        replayer=replayer, artifacts=artifacts, **options)
    first = None
    if report.violations:
        v = report.violations[0]
        first = {"invariant": v.invariant, "span": v.span, "trace": v.trace, "message": v.message}
    coverage = tuple((name, n) for name, mode, n in report.coverage if mode != "unreachable")
    return SeedResult(seed, report.verdict, len(report.violations), len(report.divergences), first,
                      coverage), report


def run_batch(task: SweepTask, seeds: Sequence[int]) -> list[SeedResult]:
    """Replay every seed of one batch, in order (what a worker runs)."""
    return [run_one(task, seed)[0] for seed in seeds]


def batches(seeds: Sequence[int], workers: int, *, most: int = BATCH) -> list[list[int]]:
    """Seeds cut into batches of at most `most`, at least four per worker when there are few
    seeds (so a short sweep still keeps every worker busy to the end)."""
    size = max(1, min(most, math.ceil(len(seeds) / max(1, workers * 4))))
    return [list(seeds[i:i + size]) for i in range(0, len(seeds), size)]


class ExecutorKind(enum.StrEnum):
    """Where seeds run (`--executor`)."""

    INLINE = "inline"
    PROCESS = "process"
    RAY = "ray"

    @classmethod
    def parse(cls, text: str) -> ExecutorKind:
        try:
            return cls(text)
        except ValueError:
            raise UsageError(f"unknown executor {text!r}; expected one of: "
                             f"{', '.join(k.value for k in cls)}") from None


class SweepExecutor(abc.ABC):
    """Runs batches of a sweep somewhere and yields their results as they complete."""

    kind: ExecutorKind

    @property
    @abc.abstractmethod
    def workers(self) -> int:
        """How many batches can run at once (sets the batch size for short sweeps)."""

    @abc.abstractmethod
    def map(self, task: SweepTask, work: Sequence[Sequence[int]]) -> Iterator[list[SeedResult]]:
        """Run `run_batch(task, batch)` for every batch; yield each result list, in any order."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        pass

    def __enter__(self) -> SweepExecutor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class InlineExecutor(SweepExecutor):
    """In this process, one batch after the other."""

    kind = ExecutorKind.INLINE

    @property
    def workers(self) -> int:
        return 1

    def map(self, task: SweepTask, work: Sequence[Sequence[int]]) -> Iterator[list[SeedResult]]:
        for batch in work:
            yield run_batch(task, batch)


class ProcessExecutor(SweepExecutor):
    """A local pool of `jobs` spawned processes (spawn, not fork: ONNX Runtime and regopy hold
    threads and native state)."""

    kind = ExecutorKind.PROCESS

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self._pool: cf.ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self.jobs

    def map(self, task: SweepTask, work: Sequence[Sequence[int]]) -> Iterator[list[SeedResult]]:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(max_workers=self.jobs, mp_context=mp.get_context("spawn"))
        futures = [self._pool.submit(run_batch, task, list(batch)) for batch in work]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor(SweepExecutor):
    """Ray tasks, one per batch, on the cluster at `address` (None: the one this process is
    connected to, else a local one started here and stopped on close).

    Workers need edgetrace and the app installed (or a `runtime_env` that brings them); the
    session, fault-plan files and substituted artifact files are shipped with the tasks, so the
    cluster's machines need not share this one's disk.
    """

    kind = ExecutorKind.RAY

    def __init__(self, address: str | None = None, *, runtime_env: dict[str, Any] | None = None) -> None:
        try:
            ray: Any = importlib.import_module("ray")  # Any: typed alike with and without Ray's stubs
        except ImportError:
            ray = None
        if not hasattr(ray, "init"):  # not installed (or only Ray's /tmp/ray folder, seen as a package)
            raise UsageError("--executor ray needs Ray: pip install 'edgetrace[ray]'")
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if runtime_env:
                kwargs["runtime_env"] = runtime_env
            try:
                ray.init(address=address, **kwargs)
            except ConnectionError as exc:
                raise UsageError(f"--executor ray: cannot reach a Ray cluster at {address}: {exc}") from None
            self._started = True
        self._remote = ray.remote(_ray_batch)

    @property
    def workers(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def map(self, task: SweepTask, work: Sequence[Sequence[int]]) -> Iterator[list[SeedResult]]:
        ray = self._ray
        shipped = ship(task)
        session = ray.put(Path(task.session).read_bytes())
        pending = [self._remote.remote(shipped, session, list(batch)) for batch in work]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False


def ship(task: SweepTask) -> SweepTask:
    """The task with the contents of the files it names (fault plans, substituted artifacts)."""
    files: dict[str, bytes] = {}
    for path in task.fault_files:
        files[path] = Path(path).read_bytes()
    for item in (*task.models, *task.policies):
        _, _, ref = item.partition("=")
        if Path(ref).is_file():
            files[ref] = Path(ref).read_bytes()
    return replace(task, files=tuple(sorted(files.items())))


def _ray_batch(task: SweepTask, session: bytes, seeds: list[int]) -> list[SeedResult]:
    """A Ray task: put the shipped files on this machine's disk, then run the batch."""
    return run_batch(unpack(task, session), seeds)


def unpack(task: SweepTask, session: bytes) -> SweepTask:
    """Write a shipped task's session and files under the temp folder (once per content) and
    point the task at them."""
    root = Path(tempfile.gettempdir()) / "edgetrace-sweep"
    moved: dict[str, str] = {}

    def put(name: str, data: bytes) -> str:
        folder = root / hashlib.sha256(data).hexdigest()[:24]
        target = folder / (Path(name).name or "file")
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, target)  # atomic: two workers on one machine may race here
        return str(target)

    session_path = put(task.session, session)
    for name, data in task.files:
        moved[name] = put(name, data)

    def swap(item: str) -> str:
        name, sep, ref = item.partition("=")
        return f"{name}={moved[ref]}" if sep and ref in moved else item

    return replace(task, session=session_path, fault_files=tuple(moved.get(f, f) for f in task.fault_files),
                   models=tuple(swap(m) for m in task.models), policies=tuple(swap(p) for p in task.policies),
                   files=())


def make_executor(kind: ExecutorKind | str = ExecutorKind.PROCESS, *, jobs: int | None = None,
                  address: str | None = None) -> SweepExecutor:
    """The executor `--executor KIND [--jobs N] [--address ADDR]` names."""
    kind = ExecutorKind.parse(kind) if isinstance(kind, str) else kind
    if address and kind is not ExecutorKind.RAY:
        raise UsageError("--address is for --executor ray")
    if kind is ExecutorKind.RAY:
        return RayExecutor(address)
    if kind is ExecutorKind.INLINE or jobs == 1:
        return InlineExecutor()
    return ProcessExecutor(jobs)
