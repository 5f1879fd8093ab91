"""The virtual loop: ordinary asyncio on virtual time, FIFO ties, honest stalls, no real I/O."""

from __future__ import annotations

import asyncio

import pytest

from edgetrace import ReplayError
from edgetrace.replay import VirtualLoop, run_virtual


def test_time_jumps_to_the_next_timer_and_asyncio_works_unchanged():
    async def main():
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[int] = asyncio.Queue()

        async def producer():
            for i in range(3):
                await asyncio.sleep(0.5)
                await q.put(i)

        task = asyncio.ensure_future(producer())
        got = [await q.get() for _ in range(3)]
        await task
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(100), 2)
        async with asyncio.timeout(1):
            await asyncio.sleep(0.25)
        lock, event = asyncio.Lock(), asyncio.Event()
        loop.call_later(3, event.set)
        async with lock:
            await event.wait()
        return got, loop.time_ns()

    got, now = run_virtual(main)
    assert got == [0, 1, 2]
    assert now == 6_750_000_000  # 1.5 s of queue, 2 s timeout, 0.25 s, 3 s event: exact, no drift


def test_timers_due_at_the_same_instant_fire_in_scheduling_order():
    async def main():
        order: list[int] = []
        loop = asyncio.get_running_loop()
        for i in reversed(range(20)):
            loop.call_later(1.0, order.append, i)
        loop.call_soon(order.append, -1)  # ready callbacks run before newly due timers
        await asyncio.sleep(1.0)
        return order

    assert run_virtual(main) == [-1, *reversed(range(20))]


def test_a_stalled_simulation_is_reported_not_hung():
    async def main():
        await asyncio.get_running_loop().create_future()  # nobody will ever resolve it

    with pytest.raises(ReplayError, match="stalled"):
        run_virtual(main)


@pytest.mark.parametrize("call", [
    lambda loop: loop.run_in_executor(None, print),
    lambda loop: loop.call_soon_threadsafe(print),
    lambda loop: loop.add_reader(0, print),
])
def test_threads_and_real_io_are_refused_with_the_rule(call):
    async def main():
        call(asyncio.get_running_loop())

    with pytest.raises(ReplayError, match="under replay"):
        run_virtual(main)


def test_sockets_are_refused():
    async def main():
        await asyncio.open_connection("127.0.0.1", 9)

    with pytest.raises(ReplayError, match="under replay"):
        run_virtual(main)


def test_a_failing_callback_stops_the_run():
    def boom():
        raise ZeroDivisionError("a simulator bug")

    async def main():
        asyncio.get_running_loop().call_later(1, boom)
        await asyncio.sleep(5)

    with pytest.raises(ZeroDivisionError):
        run_virtual(main)


def test_pending_timers_counts_live_timers_only():
    loop = VirtualLoop()
    a = loop.call_later(1, print)
    loop.call_later(2, print)
    a.cancel()
    assert loop.pending_timers() == 1
    loop.close()


def test_runs_inside_a_test_that_already_has_a_loop():
    async def outer():
        inner = run_virtual(lambda: asyncio.sleep(3600, result="done"))
        assert asyncio.get_running_loop() is outer_loop  # handed back
        return inner

    outer_loop = asyncio.new_event_loop()
    try:
        assert outer_loop.run_until_complete(outer()) == "done"
    finally:
        outer_loop.close()
