"""Non-determinism caught at its source line: what handler code must not do under replay.

Handlers get time, randomness and concurrency from `ctx` (`ctx.now()`, `ctx.sleep()`,
`ctx.rng`, `ctx.call`). Code that reads the wall clock (`time.time`, `time.monotonic`,
`datetime.now`, …), draws from the global `random` module, starts a thread or an executor, or
does blocking I/O behaves differently on every run, so a replay of it cannot be faithful.
While a replay runs, those calls *from app code* are caught — Temporal's Python sandbox does the
same for workflows — and each is reported with the app line that made it: "time.time() at
pipeline.py:57 (12×)". The call still returns, with a deterministic stand-in (virtual time, a
seeded RNG, the work done inline), so the replay goes on and stays repeatable. Calls made by
libraries and by edgetrace itself (logging's timestamps, the model runtime) are left alone.

Live, `edgetrace agent --audit FILE` (and `edgetrace record --audit`) installs the same guards
with `stand_ins=False`: each call is counted with its line and then made for real, so the
recording is not changed by the audit; the findings say what its replay will not repeat.

Limits: a function bound at import time (`from time import time`) is caught only if the module
attribute is read at call time; C extensions that read clocks are not seen.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import Any

from edgetrace.agents._code import IN_HANDLER, is_app_file, is_library_file, is_runtime_file

__all__ = ["Sandbox", "app_caller"]

_S = 1_000_000_000
_RANDOM_FUNCS = ("random", "uniform", "randint", "randrange", "choice", "choices", "shuffle", "sample",
                 "gauss", "normalvariate", "expovariate", "triangular", "betavariate", "getrandbits", "randbytes")
_active: list[Sandbox] = []  # the sandbox of the replay running now (replays run one at a time per thread)
_hooked = False


def app_caller(depth: int = 2) -> str:
    """Where a handler made the call `depth` frames up: '' when it is not a handler's doing.

    Only calls inside a handler's task count, and only when the immediate caller is not
    edgetrace's runtime or the standard library (logging's timestamps, asyncio's own clock).
    The line named is the app's own, walking out of any library the app called.
    """
    if not IN_HANDLER.get():
        return ""
    try:
        frame: FrameType | None = sys._getframe(depth)
    except ValueError:
        return ""
    if frame is None or not is_app_file(frame.f_code.co_filename):
        return ""
    first = frame
    while frame is not None and is_library_file(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None or not is_app_file(frame.f_code.co_filename):
        frame = first  # a library called from somewhere we cannot name: name the library's line
    return f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}"


class Sandbox:
    """Catches non-deterministic calls from app code while a replay runs; counts them by (call, line)."""

    def __init__(self, *, now_ns: Callable[[], int], epoch_ns: int = 0, seed: int = 0,
                 stand_ins: bool = True) -> None:
        self._now_ns = now_ns  # virtual time, for the stand-ins of clock reads
        self._stand_ins = stand_ins  # False: live audit, count the call and make it for real
        self._epoch_ns = epoch_ns
        self._rng = random.Random(f"{seed}/sandbox")
        self.findings: Counter[tuple[str, str]] = Counter()
        self._saved: list[tuple[Any, str, Any]] = []

    # --- what the report shows ------------------------------------------------------------------

    def report(self) -> list[dict[str, Any]]:
        """[{"call": "time.time()", "at": "pipeline.py:57", "count": 12}], in a stable order."""
        return [{"call": call, "at": at, "count": n}
                for (call, at), n in sorted(self.findings.items(), key=lambda kv: (kv[0][1], kv[0][0]))]

    def caught(self, call: str, at: str) -> None:
        self.findings[(call, at)] += 1

    # --- installing the guards ----------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        global _hooked
        if not _hooked:  # an audit hook cannot be removed: install one, gated by `_active`
            sys.addaudithook(_audit)
            _hooked = True
        _active.append(self)
        self._patch(time, "time", lambda: self._wall_ns() / 1e9, "time.time()")
        self._patch(time, "time_ns", self._wall_ns, "time.time_ns()")
        for name in ("monotonic", "perf_counter", "process_time"):
            self._patch(time, name, lambda: self._now_ns() / 1e9, f"time.{name}()")
            self._patch(time, f"{name}_ns", self._now_ns, f"time.{name}_ns()")
        self._patch(time, "sleep", lambda seconds: None, "time.sleep()")
        for name in _RANDOM_FUNCS:
            stand_in = getattr(self._rng, name, None)
            if stand_in is not None:
                self._patch(random, name, stand_in, f"random.{name}()")
        self._patch_datetime()
        self._patch(threading.Thread, "start", _inline_thread_start, "threading.Thread.start()", method=True)
        self._patch(concurrent.futures.ThreadPoolExecutor, "submit", _inline_submit, "ThreadPoolExecutor.submit()",
                    method=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()
        _active.remove(self)

    def _wall_ns(self) -> int:
        return self._epoch_ns + self._now_ns()

    def _patch(self, owner: Any, name: str, stand_in: Callable[..., Any], call: str, *, method: bool = False) -> None:
        original = getattr(owner, name)
        self._saved.append((owner, name, original))

        if method:
            def guarded_method(this: Any, *args: Any, **kwargs: Any) -> Any:
                at = app_caller()
                if at:
                    self.caught(call, at)
                    if self._stand_ins:
                        return stand_in(this, *args, **kwargs)
                return original(this, *args, **kwargs)

            setattr(owner, name, guarded_method)
            return

        def guarded(*args: Any, **kwargs: Any) -> Any:
            at = app_caller()
            if at:
                self.caught(call, at)
                if self._stand_ins:
                    return stand_in(*args, **kwargs)
            return original(*args, **kwargs)

        setattr(owner, name, guarded)

    def _patch_datetime(self) -> None:
        sandbox = self
        real = _dt.datetime

        class GuardedDateTime(real):  # type: ignore[valid-type,misc]
            @classmethod
            def now(cls, tz: _dt.tzinfo | None = None) -> Any:
                at = app_caller()
                if at:
                    sandbox.caught("datetime.now()", at)
                    if sandbox._stand_ins:
                        return real.fromtimestamp(sandbox._wall_ns() / 1e9, tz)
                return real.now(tz)

            @classmethod
            def utcnow(cls) -> Any:
                at = app_caller()
                if at:
                    sandbox.caught("datetime.utcnow()", at)
                    if sandbox._stand_ins:
                        return real.fromtimestamp(sandbox._wall_ns() / 1e9, _dt.UTC).replace(tzinfo=None)
                return real.now(_dt.UTC).replace(tzinfo=None)

        self._saved.append((_dt, "datetime", real))
        _dt.datetime = GuardedDateTime  # type: ignore[misc]


def _inline_thread_start(thread: threading.Thread) -> None:
    """A thread started by a handler runs to completion right here (deterministically)."""
    thread.run()


def _inline_submit(pool: concurrent.futures.Executor, fn: Callable[..., Any], /, *args: Any,
                   **kwargs: Any) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except BaseException as exc:  # the work's own error, handed back as a thread pool would
        future.set_exception(exc)
    return future


_AUDITED = {"open": "open()", "socket.connect": "socket.connect()", "socket.getaddrinfo": "socket.getaddrinfo()",
            "subprocess.Popen": "subprocess.Popen()", "os.system": "os.system()", "urllib.Request": "urllib.request"}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Blocking I/O from app code: reported (it still happens — reading a file may be fine)."""
    if not _active or event not in _AUDITED:
        return
    at = _first_app_frame()
    if at:
        what = _AUDITED[event]
        if event == "open" and args and isinstance(args[0], str | bytes):
            what = f"open({str(args[0])[-40:]!r})"
        _active[-1].caught(what, at)


def _first_app_frame() -> str:
    """The app line behind an audited event, through any standard-library frames in between;
    '' when edgetrace itself does the I/O on the handler's behalf (a model file, a policy)."""
    if not IN_HANDLER.get():
        return ""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if is_runtime_file(name):
            return ""
        if is_app_file(name):
            return f"{name.rsplit('/', 1)[-1]}:{frame.f_lineno}"
        frame = frame.f_back
    return ""
