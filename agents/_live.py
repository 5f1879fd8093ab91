"""The live world: one node of an app on real time and real TCP.

Each agent listens for messages from its peers (and inputs from the driver), and sends to
peers over length-prefixed MessagePack frames. A grid profile can emulate a slow, lossy
link on loopback: the sender holds each message for a delay drawn from the link's
profile, or drops it, keeping each link FIFO as TCP would. Spans go to a sink (the spool,
drained to the hub by the shipper).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from edgetrace._errors import FrameError
from edgetrace._records import Span
from edgetrace._stepkey import StepKey
from edgetrace._wire import read_frame, write_frame
from edgetrace.agents._grid import GridProfile
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._rules import Decision, RuleEngine
from edgetrace.agents._sink import SpanSink
from edgetrace.agents._world import NodeWorld

if TYPE_CHECKING:
    from edgetrace.agents._node import NodeRuntime

__all__ = ["LiveWorld", "read_message", "write_message"]

log = logging.getLogger("edgetrace.agent")

_encoder = msgspec.msgpack.Encoder(order="deterministic")
_decoder = msgspec.msgpack.Decoder(Message)
MAX_MESSAGE = 4 * 1024 * 1024


async def read_message(reader: asyncio.StreamReader, max_size: int = MAX_MESSAGE) -> Message | None:
    """The next node-to-node message, or None at a clean end of stream."""
    body = await read_frame(reader, max_size)
    if body is None:
        return None
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise FrameError(f"malformed message frame: {exc}") from None


def encode_message(msg: Message) -> bytes:
    body = _encoder.encode(msg)
    return struct.pack(">I", len(body)) + body


async def write_message(writer: asyncio.StreamWriter, msg: Message) -> None:
    await write_frame(writer, encode_message(msg))


class LiveWorld(NodeWorld):
    """A node's world on real time: the wall clock since the session epoch, real sockets, real timeouts."""

    def __init__(
        self,
        node: str,
        sink: SpanSink,
        *,
        epoch_ns: int,
        peers: Mapping[str, tuple[str, int]],
        profile: GridProfile | None = None,
        seed: int = 0,
        actuators: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.node = node
        self.sink = sink
        self.epoch_ns = epoch_ns
        self.peers = dict(peers)
        self.profile = profile or GridProfile("none")
        self.actuators = dict(actuators or {})
        self._link_rng = random.Random(f"{seed}/live-link/{node}")
        self._writers: dict[str, asyncio.StreamWriter] = {}
        self._queues: dict[str, asyncio.Queue[tuple[float, Message]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._deliver: Callable[[Message], None] | None = None
        self._deliver_here: Callable[[Message], None] | None = None
        self.sent = 0
        self.lost = 0
        self._inflight = 0
        self.stop_requested = asyncio.Event()
        # counters for the recording driver's termination check (`status`): messages handed to a
        # link, messages a link could not deliver, messages and inputs taken in
        self.posted = 0
        self.undeliverable = 0
        self.received = 0
        self.inputs = 0
        self._local_pending = 0
        self._timers: set[asyncio.TimerHandle] = set()
        #: called with the poll number when the driver asks for this node's `status`
        self.on_status: Callable[[Any], None] | None = None
        #: called once when the session epoch arrives (start-up handlers wait for it)
        self.on_epoch: Callable[[], None] | None = None

    def now_ns(self) -> int:
        return time.time_ns() - self.epoch_ns

    def actuator(self, action: str) -> Callable[..., Any] | None:
        return self.actuators.get(action)

    def call_later(self, seconds: float, callback: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        handle = asyncio.get_running_loop().call_later(seconds, callback, *args)
        self._timers.add(handle)
        return handle

    def status(self, runtime: NodeRuntime) -> dict[str, Any]:
        """What this node is still doing, and its message counters: the recording driver stops
        the run when every node is idle and every message posted has been taken in (twice in a
        row, so a message crossing between two reads is not missed)."""
        now = asyncio.get_running_loop().time()
        self._timers = {t for t in self._timers if not t.cancelled() and t.when() >= now}
        busy = []
        if runtime.tasks:
            names = sorted(t.get_name() for t in runtime.tasks)
            busy.append(f"{len(names)} handler(s) running (started by {', '.join(names[:3])}"
                        + (", …" if len(names) > 3 else "") + ")")
        if self._inflight or self._local_pending:
            busy.append(f"{self._inflight + self._local_pending} message(s) waiting to leave")
        due = min((t.when() - now for t in self._timers), default=None)
        return {"node": self.node, "busy": busy, "next_timer_s": None if due is None else round(due, 3),
                "posted": self.posted, "undeliverable": self.undeliverable, "received": self.received,
                "inputs": self.inputs}

    # --- sending ----------------------------------------------------------------------------

    def transmit(self, msg: Message, span: Span) -> None:
        if msg.dst == self.node:
            deliver = self._deliver_here
            if deliver is not None:
                self._local_pending += 1
                asyncio.get_running_loop().call_soon(self._deliver_local, deliver, msg)
            return
        delay_ns = self.profile.link(self.node, msg.dst).draw(self._link_rng)
        if delay_ns is None:
            self.lost += 1
            log.info("link emulation lost %s %s -> %s", msg.kind.value, span.ref, msg.dst)
            return
        queue = self._queues.get(msg.dst)
        if queue is None:
            queue = self._queues[msg.dst] = asyncio.Queue()
            self._senders[msg.dst] = asyncio.get_running_loop().create_task(self._sender(msg.dst, queue))
        self._inflight += 1
        self.posted += 1
        queue.put_nowait((time.monotonic() + delay_ns / 1e9, msg))

    def _deliver_local(self, deliver: Callable[[Message], None], msg: Message) -> None:
        self._local_pending -= 1
        deliver(msg)

    async def _sender(self, dst: str, queue: asyncio.Queue[tuple[float, Message]]) -> None:
        """One FIFO per link: a message leaves when its drawn delay is over, never before the previous."""
        while True:
            due, msg = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                writer = await self._connect(dst)
                await write_message(writer, msg)
                self.sent += 1
            except (OSError, ConnectionError) as exc:
                self.lost += 1
                self.undeliverable += 1
                self._writers.pop(dst, None)
                log.warning("cannot deliver %s to %s: %s", msg.kind.value, dst, exc)
            finally:
                self._inflight -= 1

    async def _connect(self, dst: str) -> asyncio.StreamWriter:
        writer = self._writers.get(dst)
        if writer is not None and not writer.is_closing():
            return writer
        address = self.peers.get(dst)
        if address is None:
            raise ConnectionError(f"no address known for node {dst!r}")
        _, writer = await asyncio.open_connection(*address)
        self._writers[dst] = writer
        return writer

    # --- receiving ---------------------------------------------------------------------------

    async def serve(self, deliver: Callable[[Message], None], host: str, port: int) -> asyncio.Server:
        """Listen for peers (and the recording driver); hand each message to `deliver` on the loop."""
        self._deliver_here = deliver  # a node's messages to itself are not counted as taken in
        self._deliver = self._counted(deliver)
        return await asyncio.start_server(self._handle, host, port)

    def _counted(self, deliver: Callable[[Message], None]) -> Callable[[Message], None]:
        def counted(msg: Message) -> None:
            if msg.src == "driver":
                self.inputs += 1
            else:
                self.received += 1
            deliver(msg)
        return counted

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                msg = await read_message(reader)
                if msg is None:
                    break
                if msg.kind is MessageKind.CONTROL:
                    self._control(msg)
                elif self._deliver is not None:
                    self._deliver(msg)
        except (FrameError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.warning("closing connection from %s: %s", peer, exc)
        finally:
            writer.close()

    def _control(self, msg: Message) -> None:
        if msg.topic == "epoch" and isinstance(msg.payload, int):
            self.epoch_ns = msg.payload
            started, self.on_epoch = self.on_epoch, None
            if started is not None:
                started()
        elif msg.topic == "status":
            if self.on_status is not None:
                self.on_status(msg.payload)
        elif msg.topic == "stop":
            self.stop_requested.set()
        else:
            log.warning("ignoring unknown control message %r", msg.topic)

    # --- steps with real timeouts -----------------------------------------------------------

    async def run_policy(self, engine: RuleEngine, document: Any, timeout: float | None,
                         key: StepKey) -> Decision:
        if timeout is None:
            return engine.evaluate(document)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(None, engine.evaluate, document), timeout)
        except TimeoutError:
            return Decision(None, None, [], timed_out=True)

    async def drain(self, runtime: NodeRuntime, timeout: float) -> None:
        """Wait until handlers finish and queued messages leave (clean shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = bool(runtime.tasks) or self._inflight > 0
            if not busy:
                break
            await asyncio.sleep(0.05)
        for task in self._senders.values():
            task.cancel()
        for writer in self._writers.values():
            writer.close()
