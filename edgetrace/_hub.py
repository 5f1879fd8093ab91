"""The hub as a TCP service: agents connect, ship spans, and each acknowledged record is stored
exactly once in DATA/<session>.ets.

All the rules — authentication, dedup by (node, seq), gaps, validation, durability before
the ack — are in `HubProtocol` (edgetrace._hub_protocol); sessions live in a
`FileSessionStore` (edgetrace._store). This module is only the loop around them: read a
length-prefixed frame, hand it to the connection's protocol object, write the reply. A
connection that sends garbage, an oversized frame or a bad token is closed with a logged
reason; the hub and its other connections carry on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from ssl import SSLContext

from edgetrace._hub_protocol import DROPS_CONNECTION, HubProtocol, HubStats, SpanHook
from edgetrace._records import Manifest, Span
from edgetrace._session import FsyncPolicy, SessionWriter
from edgetrace._store import FileSessionStore
from edgetrace._wire import DEFAULT_MAX_FRAME, read_frame

__all__ = ["Hub", "HubStats"]

log = logging.getLogger("edgetrace.hub")


class Hub:
    """An asyncio TCP server writing one session file per session id under `data_dir`.

    `ssl`, when given, is the server-side TLS context for the agents' links.
    """

    def __init__(self, data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 7411, token: str = "",
                 max_frame: int = DEFAULT_MAX_FRAME, fsync: FsyncPolicy | str = FsyncPolicy.FRAME,
                 on_spans: SpanHook | None = None, ssl: SSLContext | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.ssl = ssl
        self.store = FileSessionStore(self.data_dir, fsync=fsync)
        self.protocol = HubProtocol(self.store, token=token, max_frame=max_frame, on_spans=on_spans)
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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=2**16, ssl=self.ssl)
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
        conn = self.protocol.connect(peer)
        try:
            while not conn.closed:
                body = await read_frame(reader, self.protocol.max_frame)
                if body is None:
                    return
                writer.write(conn.receive_frame(body))  # stored and synced before this reply exists
                await writer.drain()
        except DROPS_CONNECTION as exc:
            conn.abort(exc)
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("connection from %s ended: %s", peer, exc)
        finally:
            writer.close()
