"""The shipper: drains an agent's spool to the hub over slow and broken links.

Store-and-forward: it connects, lets its `ShipperCursor` (edgetrace.agents._cursor) say hello
and decide what to send, and hands the cursor each reply. This module is only the loop
around that: any failure — refused connection, reset, timeout, a reply that makes no sense
— ends the connection and it tries again with exponential backoff and jitter (drawn from a
seeded RNG); a hub that is busy (a full disk) is asked again after the delay it gave. The
link itself is a `Transport` (TCP by default, or the in-memory twin). It never raises into
the app being traced; it logs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from edgetrace._errors import AuthError, EdgeTraceError, TransportError
from edgetrace._records import Manifest
from edgetrace._transport import TcpTransport, Transport
from edgetrace._wire import DEFAULT_MAX_FRAME
from edgetrace.agents._cursor import ShipperCursor
from edgetrace.agents._spool import Spool

__all__ = ["Shipper"]

log = logging.getLogger("edgetrace.shipper")


class Shipper:
    """One node's link to the hub: `hub` is (host, port) for TCP, or any `Transport`.

    `max_frame` and `timeout` configure the TCP transport built from an address.
    """

    def __init__(self, spool: Spool, hub: tuple[str, int] | Transport, *, token: str, node: str, session: str,
                 manifest: Manifest | None = None, batch: int = 500, max_frame: int = DEFAULT_MAX_FRAME,
                 backoff: tuple[float, float] = (0.05, 2.0), seed: int = 0, timeout: float = 10.0,
                 on_rebase: Callable[[int], None] | None = None) -> None:
        self.spool = spool
        self.transport = hub if isinstance(hub, Transport) else TcpTransport(*hub, max_frame=max_frame,
                                                                              timeout=timeout)
        self.node = node
        self.session = session
        self.cursor = ShipperCursor(spool, token=token, node=node, session=session, manifest=manifest,
                                    batch=batch, max_bytes=max_frame // 2, on_rebase=on_rebase)
        self.backoff = backoff
        self._rng = random.Random(f"{seed}/shipper/{node}")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.sent_batches = 0
        self.reconnects = 0
        self._stopping = False

    @property
    def refused(self) -> str:
        """Why the hub refused us ("" if it did not); the shipper gives up then."""
        return self.cursor.refused

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"shipper:{self.node}")

    def poke(self) -> None:
        """New spans were spooled: ship them soon."""
        self._wake.set()

    async def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stopping:
            try:
                await self._converse()
                delay = self.backoff[0]
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionError, EdgeTraceError, TimeoutError, asyncio.IncompleteReadError) as exc:
                self.reconnects += 1
                log.info("shipper %s: link down (%s); retrying in %.2fs", self.node, exc, delay)
            if self.refused:
                log.error("shipper %s: the hub refused us: %s", self.node, self.refused)
                return
            if self.cursor.busy:
                log.warning("shipper %s: the hub cannot store now (%s); asking again in %.1fs", self.node,
                            self.cursor.busy, self.cursor.retry_after)
                await asyncio.sleep(self.cursor.retry_after * (0.5 + self._rng.random()))
                continue
            await asyncio.sleep(delay * (0.5 + self._rng.random()))
            delay = min(delay * 2, self.backoff[1])

    async def _converse(self) -> None:
        cursor = self.cursor
        async with await self.transport.connect() as link:
            try:
                await link.send(cursor.hello())
                cursor.receive(await link.receive())
                if cursor.refused or cursor.busy:
                    return
                self.connected = True
                while not self._stopping:
                    batch = cursor.next_batch()
                    if batch is None:
                        self._wake.clear()
                        try:
                            await asyncio.wait_for(self._wake.wait(), 0.2)
                        except TimeoutError:
                            pass
                        continue
                    await link.send(batch)
                    cursor.receive(await link.receive())
                    if cursor.must_wait():
                        return
                    self.sent_batches += 1
            finally:
                self.connected = False
                cursor.lost()

    async def flush(self, timeout: float) -> bool:
        """Wait until the hub acknowledged everything spooled; False on timeout."""
        deadline = time.monotonic() + timeout
        self.poke()
        while self.spool.acked < self.spool.last_span:
            if time.monotonic() > deadline or self.refused:
                return False
            self.poke()
            await asyncio.sleep(0.02)
        return True

    async def seal(self) -> None:
        """Tell the hub the recording is over, on a connection of its own."""
        cursor = ShipperCursor(self.spool, token=self.cursor.token, node=self.node, session=self.session)
        async with await self.transport.connect() as link:
            await link.send(cursor.hello())
            cursor.receive(await link.receive())
            if cursor.refused:
                raise AuthError(f"the hub refused to seal session {self.session!r}: {cursor.refused}")
            if cursor.busy:
                raise TransportError(f"the hub cannot seal session {self.session!r} now: {cursor.busy}")
            await link.send(cursor.seal())
            cursor.receive(await link.receive())
            if cursor.busy:
                raise TransportError(f"the hub cannot seal session {self.session!r} now: {cursor.busy}")

    async def stop(self) -> None:
        # A flag as well as cancel(): on 3.11 a cancel that lands as wait_for times out can be
        # swallowed as a TimeoutError, and the loop must still end.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except (asyncio.CancelledError, Exception):
                pass
