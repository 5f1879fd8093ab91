"""How an agent reaches the hub (recorded → *shipped* → stored): a `Transport` opens `HubLink`s.

A link carries hub messages (edgetrace._wire) both ways and knows nothing of what they mean:
the exactly-once rules are in the shipper's cursor (edgetrace.agents._cursor) on one end and
`HubProtocol` (edgetrace._hub_protocol) on the other. Two transports:

- `TcpTransport`: length-prefixed frames over asyncio streams, optionally TLS (`ssl=`).
- `MemoryTransport`: the in-memory twin, wired straight to a `HubProtocol` in the same
  process (like httpx's `MockTransport`). Messages still go through the wire codec and the
  frame limit, so what passes here passes over TCP; `up = False` cuts the link (a partition:
  connects are refused, open links break), `up = True` heals it.

Failures surface as `OSError`/`ConnectionError`/`TimeoutError` (the link is down: retry) or
`FrameError` (the peer spoke nonsense); the shipper treats both as "reconnect later".
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from ssl import SSLContext
from types import TracebackType

from edgetrace._errors import FrameError
from edgetrace._hub_protocol import DROPS_CONNECTION, HubConnection, HubProtocol
from edgetrace._wire import (
    DEFAULT_MAX_FRAME,
    HubMessage,
    decode_hub,
    encode_hub,
    read_frame,
    write_frame,
)

__all__ = ["HubLink", "MemoryTransport", "TcpTransport", "Transport"]


class HubLink(abc.ABC):
    """One connection to the hub; `async with` closes it."""

    @abc.abstractmethod
    async def send(self, msg: HubMessage) -> None: ...

    @abc.abstractmethod
    async def receive(self) -> HubMessage:
        """The hub's next message; ConnectionError once the hub has hung up."""

    @abc.abstractmethod
    def close(self) -> None: ...

    async def __aenter__(self) -> HubLink:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()


class Transport(abc.ABC):
    """Opens links to one hub; holds no connection itself, so `close()` is usually a no-op."""

    @abc.abstractmethod
    async def connect(self) -> HubLink: ...

    def close(self) -> None:
        return None

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# --- TCP --------------------------------------------------------------------------------------------


class TcpTransport(Transport):
    """The hub at `host:port`; `timeout` bounds connecting and each wait for a reply."""

    def __init__(self, host: str, port: int, *, ssl: SSLContext | None = None,
                 max_frame: int = DEFAULT_MAX_FRAME, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl
        self.max_frame = max_frame
        self.timeout = timeout

    async def connect(self) -> HubLink:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=self.ssl), self.timeout)
        return _TcpLink(reader, writer, self.max_frame, self.timeout)

    def __repr__(self) -> str:
        return f"TcpTransport({self.host!r}, {self.port}{', tls' if self.ssl else ''})"


class _TcpLink(HubLink):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame: int,
                 timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._max_frame = max_frame
        self._timeout = timeout

    async def send(self, msg: HubMessage) -> None:
        await write_frame(self._writer, encode_hub(msg))

    async def receive(self) -> HubMessage:
        body = await asyncio.wait_for(read_frame(self._reader, self._max_frame), self._timeout)
        if body is None:
            raise ConnectionError("hub closed the connection")
        return decode_hub(body)

    def close(self) -> None:
        if self._writer.get_extra_info("sslcontext") is not None:
            # a TLS close waits for the hub's close_notify, which a loop that ends now never sees
            # (a stray socket); nothing unacknowledged is lost by not waiting
            self._writer.transport.abort()
        else:
            self._writer.close()


# --- in memory --------------------------------------------------------------------------------------


class MemoryTransport(Transport):
    """Links straight into `hub`, in this process and event loop (see the module docstring)."""

    def __init__(self, hub: HubProtocol) -> None:
        self.hub = hub
        self.connects = 0
        self._up = True
        self._links: set[_MemoryLink] = set()

    @property
    def up(self) -> bool:
        return self._up

    @up.setter
    def up(self, value: bool) -> None:
        """False cuts the link: open links break, connects are refused (swap `hub` now to restart it)."""
        self._up = value
        if not value:
            for link in list(self._links):
                link.close()

    async def connect(self) -> HubLink:
        await asyncio.sleep(0)  # yield like a real connect, so the shipper's loop never starves others
        if not self._up:
            raise ConnectionRefusedError("memory link is down")
        self.connects += 1
        link = _MemoryLink(self, self.hub.connect(peer=f"memory#{self.connects}"))
        self._links.add(link)
        return link


class _MemoryLink(HubLink):
    def __init__(self, transport: MemoryTransport, conn: HubConnection) -> None:
        self._transport = transport
        self._conn = conn
        self._replies: deque[bytes] = deque()
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise ConnectionResetError("memory link closed")

    async def send(self, msg: HubMessage) -> None:
        await asyncio.sleep(0)
        self._check()
        if self._conn.closed:
            raise ConnectionResetError("hub closed the connection")
        body = encode_hub(msg)[4:]
        try:
            if len(body) > self._conn.protocol.max_frame:
                raise FrameError(f"frame of {len(body)} bytes exceeds the "
                                 f"{self._conn.protocol.max_frame}-byte limit")
            self._replies.append(self._conn.receive_frame(body))
        except DROPS_CONNECTION as exc:  # as the TCP server does; the agent then finds no reply
            self._conn.abort(exc)

    async def receive(self) -> HubMessage:
        await asyncio.sleep(0)
        self._check()
        if not self._replies:
            raise ConnectionError("hub closed the connection")
        return decode_hub(self._replies.popleft()[4:])

    def close(self) -> None:
        self._closed = True
        self._conn.closed = True  # the hub's side of the conversation ends with it
        self._transport._links.discard(self)
