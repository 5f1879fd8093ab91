"""The shipper: drains an agent's spool to the hub over slow and broken links.

Store-and-forward: it connects, introduces itself, learns the last seq the hub stored for
this node, sends what follows in size-bounded batches, and advances the spool's ack cursor
as acknowledgements come back. Any failure — refused connection, reset, timeout — ends the
connection and it tries again with exponential backoff and jitter (drawn from a seeded RNG).
It never raises into the app being traced; it logs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from typing import Any

from edgetrace._codec import encode_spans
from edgetrace._errors import EdgeTraceError, FrameError
from edgetrace._records import Manifest
from edgetrace._wire import (
    DEFAULT_MAX_FRAME,
    Ack,
    Hello,
    Records,
    Refused,
    Seal,
    Welcome,
    decode_hub,
    encode_hub,
    read_frame,
    write_frame,
)
from edgetrace.agents._spool import Spool

__all__ = ["Shipper"]

log = logging.getLogger("edgetrace.shipper")


class Shipper:
    """One node's link to the hub."""

    def __init__(self, spool: Spool, hub: tuple[str, int], *, token: str, node: str, session: str,
                 manifest: Manifest | None = None, batch: int = 500, max_frame: int = DEFAULT_MAX_FRAME,
                 backoff: tuple[float, float] = (0.05, 2.0), seed: int = 0, timeout: float = 10.0) -> None:
        self.spool = spool
        self.hub = hub
        self.token = token
        self.node = node
        self.session = session
        self.manifest = manifest
        self.batch = batch
        self.max_frame = max_frame
        self.backoff = backoff
        self.timeout = timeout
        self._rng = random.Random(f"{seed}/shipper/{node}")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.sent_batches = 0
        self.reconnects = 0
        self.refused = ""
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"shipper:{self.node}")

    def poke(self) -> None:
        """New spans were spooled: ship them soon."""
        self._wake.set()

    async def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stopping:
            try:
                await self._session()
                delay = self.backoff[0]
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionError, EdgeTraceError, TimeoutError, asyncio.IncompleteReadError) as exc:
                self.connected = False
                self.reconnects += 1
                log.info("shipper %s: link down (%s); retrying in %.2fs", self.node, exc, delay)
            if self.refused:
                log.error("shipper %s: the hub refused us: %s", self.node, self.refused)
                return
            await asyncio.sleep(delay * (0.5 + self._rng.random()))
            delay = min(delay * 2, self.backoff[1])

    async def _session(self) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.hub), self.timeout)
        try:
            await write_frame(writer, encode_hub(Hello(token=self.token, node=self.node, session=self.session,
                                                       manifest=self.manifest)))
            answer = await self._read(reader)
            if isinstance(answer, Refused):
                self.refused = answer.reason
                return
            if not isinstance(answer, Welcome):
                raise FrameError(f"expected welcome, got {type(answer).__name__}")
            self.connected = True
            if answer.last_seq > self.spool.acked:
                self.spool.ack(answer.last_seq)
            cursor = answer.last_seq
            while not self._stopping:
                spans, blobs = self.spool.pending(cursor, self.batch, max_bytes=self.max_frame // 2)
                if not spans:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), 0.2)
                    except TimeoutError:
                        pass
                    continue
                packed = zlib.compress(encode_spans(spans), 1)
                await write_frame(writer, encode_hub(Records(spans=packed, blobs=blobs, zlib=True)))
                ack = await self._read(reader)
                if not isinstance(ack, Ack):
                    raise FrameError(f"expected ack, got {type(ack).__name__}")
                self.spool.ack(ack.seq)
                self.sent_batches += 1
                cursor = ack.seq
        finally:
            self.connected = False
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Any:
        body = await asyncio.wait_for(read_frame(reader, self.max_frame), self.timeout)
        if body is None:
            raise ConnectionError("hub closed the connection")
        return decode_hub(body)

    async def flush(self, timeout: float) -> bool:
        """Wait until the hub acknowledged everything spooled; False on timeout."""
        deadline = time.monotonic() + timeout
        self.poke()
        while self.spool.acked < self.spool.last_seq:
            if time.monotonic() > deadline or self.refused:
                return False
            self.poke()
            await asyncio.sleep(0.02)
        return True

    async def seal(self) -> None:
        """Tell the hub the recording is over (used by `edgetrace record`)."""
        reader, writer = await asyncio.open_connection(*self.hub)
        try:
            await write_frame(writer, encode_hub(Hello(token=self.token, node=self.node, session=self.session)))
            await self._read(reader)
            await write_frame(writer, encode_hub(Seal(session=self.session)))
            await self._read(reader)
        finally:
            writer.close()

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
