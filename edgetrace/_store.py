"""Session stores: where the hub keeps the sessions it writes (recorded → shipped → *stored*).

The hub's protocol (edgetrace._hub_protocol) never builds a `SessionWriter` itself: it asks a
`SessionStore` for the writer of a session id, opened — and recovered after a crash — on
first use, the same object afterwards. Two stores:

- `FileSessionStore`: one `<id>.ets` file per session under a data folder (what `edgetrace
  hub` uses).
- `MemorySessionStore`: the in-memory twin for tests. Each session is a `BytesIO` holding
  exactly the bytes the file would, written by the same `SessionWriter` code, so what a test
  reads back (`store.read(id)`, an ordinary `Session`) is what a reader would find on disk,
  torn-tail recovery included. `snapshot()` hands out those bytes; a store built from a
  snapshot is what a restarted hub would find (cut bytes off first to simulate a torn tail).
"""

from __future__ import annotations

import abc
import errno
import io
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from edgetrace._errors import SessionNotFoundError, UsageError
from edgetrace._records import is_session_id
from edgetrace._session import SESSION_SUFFIX, FsyncPolicy, Session, SessionWriter

__all__ = ["FileSessionStore", "MemorySessionStore", "SessionStore"]

log = logging.getLogger("edgetrace.hub")


class SessionStore(abc.ABC):
    """Writers for session ids, opened on first use; readers for what is stored so far.

    `fsync` is the policy the hub honours before it acknowledges anything (`frame`: forced
    to disk per batch). Writers are used from one thread or event loop at a time.

    Open sessions are bounded, least recently used first: beyond `max_open` a writer gives
    its file descriptor back (`release()`: its state stays, the next write reopens the file
    without reading it), beyond `max_sessions` it is closed and forgotten (the next use
    recovers it from the file). So hellos naming a thousand sessions cost no more than
    `max_open` descriptors.
    """

    def __init__(self, *, fsync: FsyncPolicy | str = FsyncPolicy.FRAME, max_open: int = 128,
                 max_sessions: int = 4096) -> None:
        self.fsync = FsyncPolicy(fsync)
        self.max_open = max(1, max_open)
        self.max_sessions = max(self.max_open, max_sessions)
        self._writers: OrderedDict[str, SessionWriter] = OrderedDict()

    def open(self, session: str) -> SessionWriter:
        """The session's writer: created, or recovered from what is stored (a torn tail is cut)."""
        writer = self._writers.get(session)
        if writer is not None and writer.closed:
            del self._writers[session]
            writer = None
        if writer is None:
            if not is_session_id(session):
                raise UsageError(f"bad session id {session[:40]!r}")
            writer = self._open_writer(session)
            if writer.torn_bytes_cut:
                log.warning("session %s: cut a torn tail of %d bytes left by a crash", session, writer.torn_bytes_cut)
            self._writers[session] = writer
        self._writers.move_to_end(session)
        self._bound()
        return writer

    def _bound(self) -> None:
        """Give back descriptors (and then whole writers) of the least recently used sessions."""
        while len(self._writers) > self.max_sessions:
            _, oldest = self._writers.popitem(last=False)
            oldest.close()
        if len(self._writers) > self.max_open:
            for i, writer in enumerate(self._writers.values()):
                if i >= len(self._writers) - self.max_open:
                    break
                writer.release()

    def get(self, session: str) -> SessionWriter | None:
        """The session's writer if it is open, else None: nothing is created or recovered."""
        writer = self._writers.get(session)
        return writer if writer is not None and not writer.closed else None

    @abc.abstractmethod
    def sessions(self) -> list[str]:
        """Ids of every session in the store, sorted (open or not)."""

    @abc.abstractmethod
    def read(self, session: str) -> Session:
        """A reader over what is stored of `session` so far (`refresh()` follows new frames)."""

    @abc.abstractmethod
    def _open_writer(self, session: str) -> SessionWriter: ...

    def close(self) -> None:
        """Close every open writer (synced per the fsync policy); `open` starts afresh."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class FileSessionStore(SessionStore):
    """One session file per id, `DATA/<id>.ets`; the folder is created on the first write."""

    def __init__(self, data_dir: str | Path, *, fsync: FsyncPolicy | str = FsyncPolicy.FRAME, max_open: int = 128,
                 max_sessions: int = 4096) -> None:
        super().__init__(fsync=fsync, max_open=max_open, max_sessions=max_sessions)
        self.data_dir = Path(data_dir)

    def path(self, session: str) -> Path:
        return self.data_dir / f"{session}{SESSION_SUFFIX}"

    def sessions(self) -> list[str]:
        on_disk = {p.stem for p in self.data_dir.glob(f"*{SESSION_SUFFIX}")} if self.data_dir.is_dir() else set()
        return sorted(on_disk | set(self._writers))

    def read(self, session: str) -> Session:
        return Session(self.path(session))

    def _open_writer(self, session: str) -> SessionWriter:
        return SessionWriter(self.path(session), fsync=self.fsync)


class MemorySessionStore(SessionStore):
    """Sessions as in-memory session files (see the module docstring); nothing touches disk.

    `fsync` is accepted so a hub over this store takes the same code path as over files;
    syncing a buffer does nothing. `capacity` (bytes, all sessions together) makes it a
    small disk: a write past it fails as a full disk does (ENOSPC); raise or clear it to
    give space back.
    """

    def __init__(self, snapshot: Mapping[str, bytes] | None = None, *,
                 fsync: FsyncPolicy | str = FsyncPolicy.FRAME, capacity: int | None = None,
                 max_open: int = 128, max_sessions: int = 4096) -> None:
        super().__init__(fsync=fsync, max_open=max_open, max_sessions=max_sessions)
        self.capacity = capacity
        self._buffers: dict[str, io.BytesIO] = {
            session: _Disk(self, data) for session, data in (snapshot or {}).items()}

    def used(self) -> int:
        return sum(len(buf.getbuffer()) for buf in self._buffers.values())

    def sessions(self) -> list[str]:
        return sorted(self._buffers)

    def read(self, session: str) -> Session:
        buffer = self._buffers.get(session)
        if buffer is None:
            raise SessionNotFoundError(f"{self._name(session)}: no such session", path=self._name(session))
        return Session(self._name(session), buffer=buffer)

    def snapshot(self) -> dict[str, bytes]:
        """Every session's bytes, as its file would hold them (write one out to open it with the CLI)."""
        return {session: buf.getvalue() for session, buf in sorted(self._buffers.items())}

    def _open_writer(self, session: str) -> SessionWriter:
        buffer = self._buffers.get(session)
        if buffer is None:
            buffer = self._buffers[session] = _Disk(self)
        return SessionWriter(self._name(session), fsync=self.fsync, buffer=buffer)

    @staticmethod
    def _name(session: str) -> Path:
        return Path("<memory>") / f"{session}{SESSION_SUFFIX}"


class _Disk(io.BytesIO):
    """A session's buffer that refuses to grow the store past its capacity (ENOSPC)."""

    def __init__(self, store: MemorySessionStore, data: bytes = b"") -> None:
        super().__init__(data)
        self._store = store

    def write(self, data: Any) -> int:
        capacity = self._store.capacity
        if capacity is not None:
            grow = max(0, self.tell() + len(memoryview(data)) - len(self.getbuffer()))
            if grow and self._store.used() + grow > capacity:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)
