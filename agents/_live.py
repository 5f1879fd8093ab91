"""The live world: one node of an app on real time and real TCP.

Each agent listens for messages from its peers (and inputs from the driver), and sends to
peers over length-prefixed MessagePack frames. A grid profile can emulate a slow, lossy
link on loopback: the sender holds each message for a delay drawn from the link's
profile, or drops it, keeping each link FIFO as TCP would. Spans go to a sink (the spool,
drained to the hub by the shipper).

The peer port follows the hub's rules (edgetrace._gate, edgetrace._credentials): every
connection opens with a `PeerHello` carrying the shared token (checked in constant time when
the agent has one; a token is required to listen off loopback), read with the small hello
limit and deadline; after it, every message must come from the node the hello named, and
nothing — an input, a forged receive, a CONTROL `stop` — is taken from a connection that did
not authenticate. Links may run over TLS (mutual TLS optional).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import ssl
import struct
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from edgetrace._credentials import PeerSecurity
from edgetrace._errors import FrameError
from edgetrace._gate import Gate
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

__all__ = ["LiveWorld", "PeerHello", "encode_peer_hello", "read_message", "write_message"]

log = logging.getLogger("edgetrace.agent")

_encoder = msgspec.msgpack.Encoder(order="deterministic")
_decoder = msgspec.msgpack.Decoder(Message)
MAX_MESSAGE = 4 * 1024 * 1024
_I64 = 2**63 - 1


class PeerHello(msgspec.Struct, tag="peer-hello", kw_only=True):
    """The first frame on a peer link: who is calling, and its proof of membership."""

    token: str
    node: str


_hello_decoder = msgspec.msgpack.Decoder(PeerHello)


def encode_peer_hello(token: str, node: str) -> bytes:
    body = _encoder.encode(PeerHello(token=token, node=node))
    return struct.pack(">I", len(body)) + body


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
        security: PeerSecurity | None = None,
    ) -> None:
        self.node = node
        self.security = security or PeerSecurity()
        self.gate = Gate(self.security.limits)
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
        sec = self.security
        _, opened = await asyncio.wait_for(asyncio.open_connection(*address, ssl=sec.client_ssl),
                                           sec.limits.handshake_timeout)
        opened.write(encode_peer_hello(sec.token, self.node))
        self._writers[dst] = opened
        return opened

    # --- receiving ---------------------------------------------------------------------------

    async def serve(self, deliver: Callable[[Message], None], host: str, port: int) -> asyncio.Server:
        """Listen for peers (and the recording driver); hand each message to `deliver` on the loop."""
        self._deliver_here = deliver  # a node's messages to itself are not counted as taken in
        self._deliver = self._counted(deliver)
        sec = self.security
        return await asyncio.start_server(self._handle, host, port, ssl=sec.server_ssl, backlog=256,
                                          ssl_handshake_timeout=sec.limits.handshake_timeout if sec.server_ssl else None)

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
        ticket = self.gate.admit(str(peer[0]) if isinstance(peer, tuple) else str(peer), writer.transport.abort)
        if ticket is None:
            writer.close()
            return
        limits = self.security.limits
        try:
            first = await asyncio.wait_for(read_frame(reader, limits.hello_max), limits.handshake_timeout)
            if first is None:
                return
            caller, pending = self._greet(first)
            self.gate.authenticated(ticket)
            if pending is not None:
                self._take(pending, caller)
            while True:
                body = await asyncio.wait_for(read_frame(reader, MAX_MESSAGE), limits.idle_timeout)
                if body is None:
                    break
                try:
                    msg = _decoder.decode(body)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise FrameError(f"malformed message frame: {exc}") from None
                self._take(msg, caller)
        except (FrameError, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            log.warning("closing connection from %s: %s", peer, exc)
        except TimeoutError:
            log.info("connection from %s %s", peer, "went idle" if ticket.authenticated else
                     "did not say hello in time")
        finally:
            self.gate.release(ticket)
            writer.close()

    def _greet(self, body: bytes) -> tuple[str | None, Message | None]:
        """Check a connection's first frame: who calls (None: anyone), and a message to take now."""
        first: PeerHello | Message
        try:
            first = _hello_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            try:
                first = _decoder.decode(body)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise FrameError(f"expected a peer hello first: {exc}") from None
        token = self.security.token
        if isinstance(first, Message):  # no hello: only an agent without a token takes that
            if token:
                raise FrameError("refused: no token presented (a peer hello must come first)")
            return None, first
        if not hmac.compare_digest(first.token.encode(), token.encode()):
            raise FrameError(f"refused {first.node[:40]!r}: missing or wrong token")
        return first.node, None

    def _take(self, msg: Message, caller: str | None) -> None:
        """One message from an authenticated connection: it must be what it says it is."""
        if caller is not None and msg.src != caller:
            raise FrameError(f"a peer that said it is {caller[:40]!r} sent a message from {msg.src[:40]!r}")
        if msg.dst != self.node:
            raise FrameError(f"a message for {msg.dst[:40]!r} arrived at {self.node!r}")
        if any(not isinstance(k, str) or not 0 <= v <= _I64 for k, v in msg.vc.items()):
            raise FrameError(f"a message from {msg.src[:40]!r} carries a clock no node can have")
        if msg.kind is MessageKind.CONTROL:
            self._control(msg)
        elif self._deliver is not None:
            self._deliver(msg)

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
        await self.close_links()

    async def close_links(self, timeout: float = 2.0) -> None:
        """Stop sending and close every link to a peer, waiting (at most `timeout` in all) until
        each is closed; one that does not close in time (a TLS peer that never answers the
        close) is aborted, so a stopped agent leaves no half-open sockets behind."""
        for task in self._senders.values():
            task.cancel()
        writers = list(self._writers.values())
        for writer in writers:
            writer.close()
        if not writers:
            return
        closing = [asyncio.ensure_future(writer.wait_closed()) for writer in writers]
        await asyncio.wait(closing, timeout=timeout)
        for writer, closed in zip(writers, closing, strict=True):
            if not closed.done():
                closed.cancel()
                writer.transport.abort()
            elif not closed.cancelled() and isinstance(closed.exception(), (OSError, ssl.SSLError)):
                writer.transport.abort()
