"""A virtual-time asyncio event loop: the replayer's deterministic scheduler.

Ordinary asyncio code (`sleep`, `wait_for`, `gather`, queues, locks) runs on it unchanged,
but `time()` is virtual: when nothing is ready the fake selector jumps the clock straight
to the earliest timer instead of waiting. Two rules make runs repeatable, which stock
asyncio does not promise:

- timers due at the same instant fire in the order they were scheduled (a sequence number
  breaks heap ties, instead of heap accident);
- time is integer nanoseconds from 0, so there is no float drift and no huge epoch values.

Nothing here reads a wall clock, starts a thread or touches the real selector.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import selectors
from asyncio import events
from collections.abc import Callable, Mapping
from typing import Any

from edgetrace._errors import ReplayError

__all__ = ["VirtualLoop", "run_virtual"]


class _OrderedTimer(events.TimerHandle):
    """A TimerHandle ordered by (when, scheduling order): a FIFO tie rule."""

    __slots__ = ("_order",)

    def __init__(self, when: float, order: int, callback: Callable[..., Any], args: tuple[Any, ...],
                 loop: asyncio.AbstractEventLoop, context: Any = None) -> None:
        super().__init__(when, callback, args, loop, context=context)
        self._order = order

    def __lt__(self, other: object) -> bool:
        # the heap's hot path: no tuples, no isinstance (every timer on this loop is ordered)
        try:
            return self._when < other._when or (  # type: ignore[attr-defined]
                self._when == other._when and self._order < other._order)  # type: ignore[attr-defined]
        except AttributeError:
            return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimer):
            return (self._when, self._order) <= (other._when, other._order)
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimer):
            return (self._when, self._order) > (other._when, other._order)
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimer):
            return (self._when, self._order) >= (other._when, other._order)
        return NotImplemented


class _JumpSelector(selectors.BaseSelector):
    """Never waits: 'selecting' for t seconds moves virtual time forward by t."""

    def __init__(self, loop: VirtualLoop) -> None:
        self._loop = loop
        self._keys: dict[Any, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events_: int, data: Any = None) -> selectors.SelectorKey:
        key = selectors.SelectorKey(fileobj, id(fileobj), events_, data)
        self._keys[fileobj] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._keys.pop(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise ReplayError(
                "the simulation stalled: a task waits on something no timer or message will "
                "ever complete (an await on real I/O, a thread, or a future nobody resolves)"
            )
        if timeout > 0:
            self._loop._advance_to_next_timer()
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._keys

    def close(self) -> None:
        self._keys.clear()


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock is virtual integer nanoseconds starting at 0."""

    def __init__(self) -> None:
        self._now_ns = 0
        self._order = itertools.count()
        super().__init__(selector=_JumpSelector(self))
        # Timers within this window of "now" fire together; with integer-ns time only
        # exact ties share an instant, and those fire in scheduling order.
        self._clock_resolution = 1e-10

    def time(self) -> float:
        return self._now_ns / 1e9

    def time_ns(self) -> int:
        return self._now_ns

    def _advance_to_next_timer(self) -> None:
        if self._scheduled:
            due = self._scheduled[0]._when
            target = round(due * 1e9)
            if target / 1e9 < due:
                target += 1
            if target > self._now_ns:
                self._now_ns = target

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,
                context: Any = None) -> asyncio.TimerHandle:
        # Snap to the integer-ns grid so equal delays give equal instants.
        when = max(round(when * 1e9), 0) / 1e9
        self._check_closed()
        timer = _OrderedTimer(when, next(self._order), callback, args, self, context)
        if timer._source_traceback:  # pragma: no cover - debug mode only
            del timer._source_traceback[-1]
        heapq.heappush(self._scheduled, timer)
        timer._scheduled = True
        return timer

    def call_at_ns(self, when_ns: int, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return self.call_at(when_ns / 1e9, callback, *args)

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> Any:
        raise ReplayError("handlers may not use threads under replay (run_in_executor breaks determinism)")

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise ReplayError("handlers may not do real network I/O under replay")


def run_virtual(main: Callable[[], Any]) -> Any:
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
