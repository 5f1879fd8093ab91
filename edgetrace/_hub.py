"""The hub as a TCP service: agents connect, ship spans, and each acknowledged record is stored
exactly once in DATA/<session>.ets.

All the rules — authentication, dedup by (incarnation, seq), gaps, validation, durability
before the ack — are in `HubProtocol` (edgetrace._hub_protocol); sessions live in a
`FileSessionStore` (edgetrace._store). This module is only the loop around them: admit the
connection (edgetrace._gate: caps, a small hello before the token is checked, handshake and
idle deadlines), do the TLS handshake if the hub has a certificate, read a length-prefixed
frame, hand it to the connection's protocol object, write the reply. A connection that sends
garbage, an oversized frame or a bad token is closed with a logged reason; the hub and its
other connections carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
from collections.abc import Callable
from pathlib import Path
from ssl import SSLContext

from edgetrace._errors import StorageError
from edgetrace._gate import Gate, Limits
from edgetrace._hub_protocol import DROPS_CONNECTION, HubProtocol, HubStats, SpanHook
from edgetrace._records import Manifest, Span
from edgetrace._session import FsyncPolicy, SessionWriter
from edgetrace._store import FileSessionStore
from edgetrace._wire import DEFAULT_MAX_FRAME, Busy, encode_hub, read_frame

__all__ = ["Hub", "HubStats"]

log = logging.getLogger("edgetrace.hub")


class Hub:
    """An asyncio TCP server writing one session file per session id under `data_dir`.

    `ssl`, when given, is the server-side TLS context for the agents' links (edgetrace._tls
    builds one, with client certificates required for mutual TLS). `limits` bounds what
    connections may cost (edgetrace._gate); `max_open` bounds the session files kept open.
    """

    def __init__(self, data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 7411, token: str = "",
                 max_frame: int = DEFAULT_MAX_FRAME, fsync: FsyncPolicy | str = FsyncPolicy.FRAME,
                 on_spans: SpanHook | None = None, ssl: SSLContext | None = None, limits: Limits | None = None,
                 max_open: int = 128) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.ssl = ssl
        self.store = FileSessionStore(self.data_dir, fsync=fsync, max_open=max_open)
        self.protocol = HubProtocol(self.store, token=token, max_frame=max_frame, on_spans=on_spans)
        self.gate = Gate(limits)
        self._server: asyncio.Server | None = None

    # the protocol's settings, readable and settable on the hub as before the split
    @property
    def token(self) -> str:
        return self.protocol.token

    @token.setter
    def token(self, value: str) -> None:
        self.protocol.token = value

    @property
    def max_frame(self) -> int:
        return self.protocol.max_frame

    @max_frame.setter
    def max_frame(self, value: int) -> None:
        self.protocol.max_frame = value

    @property
    def on_spans(self) -> SpanHook | None:
        return self.protocol.on_spans

    @on_spans.setter
    def on_spans(self, hook: SpanHook | None) -> None:
        self.protocol.on_spans = hook

    @property
    def fsync(self) -> FsyncPolicy:
        return self.store.fsync

    @property
    def stats(self) -> HubStats:
        return self.protocol.stats

    async def start(self) -> tuple[str, int]:
        """Listen; StorageError if the data folder cannot be made, OSError if the address is taken."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the data folder {self.data_dir}: {exc.strerror or exc}",
                               path=self.data_dir) from None
        # a TLS handshake is bounded by the same deadline as the hello (asyncio does it before
        # `_handle`: upgrading after accept would race the client's first bytes)
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=2**16, backlog=128, ssl=self.ssl,
            ssl_handshake_timeout=self.gate.limits.handshake_timeout if self.ssl is not None else None)
        sock = self._server.sockets[0].getsockname()
        self.port = sock[1]
        return sock[0], sock[1]

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() the hub first"
        async with self._server:
            await self._server.serve_forever()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.store.close()

    def session_path(self, session: str) -> Path:
        return self.store.path(session)

    def manifest(self, session: str) -> Manifest:
        """What the hub knows of a session so far (the OTLP forwarder names resources by it)."""
        return self.protocol.manifest(session)

    async def store_local(self, session: str, build: Callable[[SessionWriter], list[Span]]) -> list[Span]:
        """Append records the hub makes itself (spans taken in over OTLP): see `HubProtocol.store_local`."""
        return self.protocol.store_local(session, build)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ticket = self.gate.admit(str(peer[0]) if isinstance(peer, tuple) else str(peer), writer.transport.abort)
        if ticket is None:  # too many connections: say so and let go (a few bytes: the socket takes them)
            with contextlib.suppress(Exception):
                writer.write(encode_hub(Busy(reason="the hub has too many connections", retry_after=2.0)))
            writer.close()
            return
        limits = self.gate.limits
        conn = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.handshake_timeout
        try:
            conn = self.protocol.connect(peer)
            body = await asyncio.wait_for(read_frame(reader, limits.hello_max), max(0.0, deadline - loop.time()))
            if body is None:
                return
            writer.write(conn.receive_frame(body))
            await asyncio.wait_for(writer.drain(), limits.handshake_timeout)
            if conn.authenticated:
                self.gate.authenticated(ticket)
            while not conn.closed:
                body = await asyncio.wait_for(read_frame(reader, self.protocol.max_frame), limits.idle_timeout)
                if body is None:
                    return
                writer.write(conn.receive_frame(body))  # stored and synced before this reply exists
                await asyncio.wait_for(writer.drain(), limits.idle_timeout)
        except DROPS_CONNECTION as exc:
            if conn is not None:
                conn.abort(exc)
            else:
                log.info("connection from %s dropped: %s", peer, exc)
        except TimeoutError:
            log.info("connection from %s %s", peer, "went idle" if ticket.authenticated else
                     "did not complete its handshake in time")
        except (OSError, ConnectionError, asyncio.IncompleteReadError, _ssl.SSLError) as exc:
            log.info("connection from %s ended: %s", peer, exc)
        finally:
            self.gate.release(ticket)
            writer.close()
