"""A virtual-time asyncio event loop: the replayer's deterministic scheduler.

Ordinary asyncio code (`sleep`, `wait_for`, `timeout`, `gather`, queues, locks) runs on it
unchanged, but time is virtual: when nothing is ready the clock jumps straight to the
earliest timer instead of waiting. The loop owns its ready queue and its timer queue — it
implements `asyncio.AbstractEventLoop` itself rather than bending a selector loop — so the
simulator can ask it plain questions (`pending_timers()`) and no caller touches asyncio
internals. Rules that make runs repeatable, which stock asyncio does not promise:

- time is integer nanoseconds from 0: no float drift, no epoch-sized values;
- timers due at the same instant fire in the order they were scheduled (FIFO tie rule),
  after the callbacks that were already ready;
- nothing here reads a wall clock, starts a thread or touches a selector: threads, executors,
  DNS and sockets are refused with a `ReplayError` naming the rule;
- an exception escaping a plain callback stops the run (unless an exception handler is set):
  a replay never carries on past a bug of its own.

A coroutine that waits on something no timer or message will ever complete stalls the
simulation; that is reported as a `ReplayError`, not a hang.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar, TypeVarTuple, Unpack, cast

from edgetrace._errors import ReplayError

__all__ = ["VirtualLoop", "run_virtual"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
log = logging.getLogger("asyncio")


class _Queued:
    """What the loop needs of a queued callback; it runs it through its context, never via asyncio's privates."""

    _call: Callable[..., object]
    _params: tuple[Any, ...]
    _ctx: contextvars.Context
    _dead: bool

    def _setup(self, callback: Callable[..., object], args: tuple[Any, ...],
               context: contextvars.Context | None) -> None:
        self._call = callback
        self._params = args
        self._ctx = context if context is not None else contextvars.copy_context()
        self._dead = False

    def cancel(self) -> None:
        self._dead = True

    def cancelled(self) -> bool:
        return self._dead

    def get_context(self) -> contextvars.Context:
        return self._ctx

    def __repr__(self) -> str:
        name = getattr(self._call, "__qualname__", repr(self._call))
        return f"<virtual callback {name}{' cancelled' if self._dead else ''}>"


class _Handle(_Queued, asyncio.Handle):
    def __init__(self, callback: Callable[..., object], args: tuple[Any, ...],
                 context: contextvars.Context | None) -> None:
        self._setup(callback, args, context)


class _Timer(_Queued, asyncio.TimerHandle):
    """A callback due at `when_ns`; ordered by (when, scheduling order)."""

    def __init__(self, when_ns: int, order: int, callback: Callable[..., object], args: tuple[Any, ...],
                 context: contextvars.Context | None) -> None:
        self._setup(callback, args, context)
        self.when_ns = when_ns
        self.order = order

    def when(self) -> float:
        return self.when_ns / 1e9

    def __lt__(self, other: object) -> bool:
        # the heap's hot path: every timer on this loop is a _Timer
        o: _Timer = other  # type: ignore[assignment]
        return self.when_ns < o.when_ns or (self.when_ns == o.when_ns and self.order < o.order)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


def _refusal(api: str, what: str) -> str:
    return f"handlers may not use {what} under replay ({api} breaks determinism)"


class VirtualLoop(asyncio.AbstractEventLoop):
    """An event loop whose clock is virtual integer nanoseconds starting at 0."""

    def __init__(self) -> None:
        self._now_ns = 0
        self._order = itertools.count()
        self.ran = 0  # callbacks run so far: how the watchdog sees the loop move
        self._ready: collections.deque[_Handle | _Timer] = collections.deque()
        self._timers: list[_Timer] = []
        self._running = False
        self._stopping = False
        self._closed = False
        self._debug = False
        self._exception_handler: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None = None
        self._task_factory: Any = None
        #: Told (call, app line) when handler code hands work to a thread; the work then runs
        #: inline. Unset, such a call is refused.
        self.on_nondeterminism: Callable[[str, str], None] | None = None

    # --- time -----------------------------------------------------------------------------------

    def time(self) -> float:
        return self._now_ns / 1e9

    def time_ns(self) -> int:
        return self._now_ns

    def start_at_ns(self, ns: int) -> None:
        """Start the clock at `ns` instead of 0 (a replay from a cut); only before anything ran."""
        if self.ran or self._timers or self._ready:
            raise RuntimeError("the virtual clock can only be set before the loop runs")
        self._now_ns = ns

    def pending_timers(self) -> int:
        """Timers still due to fire (cancelled ones not counted)."""
        return sum(1 for t in self._timers if not t._dead)

    # --- scheduling -----------------------------------------------------------------------------

    def call_soon(self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        self._check_closed()
        handle = _Handle(callback, args, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                             context: contextvars.Context | None = None) -> asyncio.Handle:
        raise ReplayError("handlers may not use threads under replay (call_soon_threadsafe breaks determinism)")

    def call_later(self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        # snap to the integer-ns grid so equal delays give equal instants
        return self.call_at_ns(max(round(when * 1e9), 0), callback, *args, context=context)

    def call_at_ns(self, when_ns: int, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        self._check_closed()
        timer = _Timer(when_ns, next(self._order), callback, args, context)
        heapq.heappush(self._timers, timer)
        return timer

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T], *,
                    name: str | None = None, context: contextvars.Context | None = None) -> asyncio.Task[_T]:
        self._check_closed()
        if self._task_factory is not None:
            task: asyncio.Task[_T] = self._task_factory(self, coro)
            if name is not None:
                task.set_name(name)
            return task
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def set_task_factory(self, factory: Any) -> None:
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        return self._task_factory

    # --- running --------------------------------------------------------------------------------

    def _run_once(self) -> None:
        ready, timers = self._ready, self._timers
        if not ready and not self._stopping:
            while timers and timers[0]._dead:
                heapq.heappop(timers)
            if not timers:
                raise ReplayError(
                    "the simulation stalled: a task waits on something no timer or message will "
                    "ever complete (an await on real I/O, a thread, or a future nobody resolves)"
                )
            if timers[0].when_ns > self._now_ns:
                self._now_ns = timers[0].when_ns
        now = self._now_ns
        while timers and timers[0].when_ns <= now:
            ready.append(heapq.heappop(timers))
        self.ran += 1
        for _ in range(len(ready)):
            handle = ready.popleft()
            if handle._dead:
                continue
            try:
                handle._ctx.run(handle._call, *handle._params)
            except BaseException as exc:
                # A failing callback is a bug in the simulation (handlers run in tasks, which keep
                # their own exceptions): it stops the replay rather than being logged and lost.
                if self._exception_handler is None:
                    raise
                self.call_exception_handler({"message": f"Exception in callback {handle!r}",
                                             "exception": exc, "handle": handle})

    def run_forever(self) -> None:
        self._check_closed()
        if self._running:
            raise RuntimeError("this virtual loop is already running")
        # A replay may run inside a test's own asyncio loop: stand in for it, then give it back.
        outer = asyncio._get_running_loop()
        self._running = True
        asyncio._set_running_loop(self)
        try:
            while True:
                self._run_once()
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._running = False
            asyncio._set_running_loop(outer)

    def run_until_complete(self, future: Generator[Any, None, _T] | Awaitable[_T]) -> _T:
        self._check_closed()
        task = asyncio.ensure_future(cast(Awaitable[_T], future), loop=self)
        task.add_done_callback(lambda _f: self.stop())
        try:
            self.run_forever()
        except BaseException:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the error that stopped the loop is what propagates
            raise
        if not task.done():
            raise RuntimeError("the virtual loop stopped before the future completed")
        return task.result()

    def stop(self) -> None:
        self._stopping = True

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._running:
            raise RuntimeError("cannot close a running event loop")
        self._closed = True
        self._ready.clear()
        self._timers.clear()

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("the virtual loop is closed")

    async def shutdown_asyncgens(self) -> None:
        """Async generators are not tracked: handlers finish or are cancelled with their task."""

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """There is no executor under replay."""

    # --- errors ---------------------------------------------------------------------------------

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        info = (type(exc), exc, exc.__traceback__) if isinstance(exc, BaseException) else None
        log.error("%s", context.get("message", "unhandled exception in the virtual loop"), exc_info=info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is None:
            self.default_exception_handler(context)
        else:
            self._exception_handler(self, context)

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled

    # --- what a handler must not do under replay --------------------------------------------------

    def run_in_executor(self, executor: Any, func: Callable[[Unpack[_Ts]], _T], *args: *_Ts) -> asyncio.Future[_T]:
        if self.on_nondeterminism is None:
            raise ReplayError("handlers may not use threads under replay (run_in_executor breaks determinism)")
        from edgetrace.agents._sandbox import app_caller

        at = app_caller()
        if at:
            self.on_nondeterminism("loop.run_in_executor()", at)
        future: asyncio.Future[_T] = self.create_future()
        try:
            future.set_result(func(*args))  # deterministic: done now, on the loop
        except Exception as exc:  # the work's own error, handed back as an executor would
            future.set_exception(exc)
        return future

    def set_default_executor(self, executor: Any) -> None:
        raise ReplayError("handlers may not use threads under replay (set_default_executor)")

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("getaddrinfo", "real network I/O (DNS)"))

    async def getnameinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("getnameinfo", "real network I/O (DNS)"))

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("create_connection", "real network I/O (send through ctx.send / ctx.call instead)"))

    async def create_server(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("create_server", "real network I/O"))

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("create_unix_connection", "real network I/O"))

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("create_unix_server", "real network I/O"))

    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("create_datagram_endpoint", "real network I/O"))

    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("connect_accepted_socket", "real network I/O"))

    async def sendfile(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sendfile", "real I/O"))

    async def start_tls(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("start_tls", "real network I/O"))

    async def sock_recv(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sock_recv", "real network I/O"))

    async def sock_recv_into(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sock_recv_into", "real network I/O"))

    async def sock_recvfrom(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sock_recvfrom", "real network I/O"))

    async def sock_recvfrom_into(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sock_recvfrom_into", "real network I/O"))

    async def sock_sendall(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sock_sendall", "real network I/O"))

    async def sock_sendto(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sock_sendto", "real network I/O"))

    async def sock_connect(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sock_connect", "real network I/O"))

    async def sock_accept(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sock_accept", "real network I/O"))

    async def sock_sendfile(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("sock_sendfile", "real network I/O"))

    async def connect_read_pipe(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("connect_read_pipe", "real I/O (pipes)"))

    async def connect_write_pipe(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("connect_write_pipe", "real I/O (pipes)"))

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("subprocess_exec", "processes"))

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("subprocess_shell", "processes"))

    def add_reader(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise ReplayError(_refusal("add_reader", "real I/O (file descriptors)"))

    def remove_reader(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("remove_reader", "real I/O (file descriptors)"))

    def add_writer(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise ReplayError(_refusal("add_writer", "real I/O (file descriptors)"))

    def remove_writer(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("remove_writer", "real I/O (file descriptors)"))

    def add_signal_handler(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise ReplayError(_refusal("add_signal_handler", "signals"))

    def remove_signal_handler(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError(_refusal("remove_signal_handler", "signals"))


def run_virtual(main: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run `main()` (a coroutine function) to completion on a fresh VirtualLoop."""
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
        finally:
            loop.close()
