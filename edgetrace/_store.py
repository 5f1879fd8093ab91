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
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from edgetrace._errors import SessionNotFoundError, UsageError
from edgetrace._records import is_session_id
from edgetrace._session import SESSION_SUFFIX, FsyncPolicy, Session, SessionWriter

__all__ = ["FileSessionStore", "MemorySessionStore", "SessionStore"]

log = logging.getLogger("edgetrace.hub")


class SessionStore(abc.ABC):
    """Writers for session ids, opened on first use; readers for what is stored so far.

    `fsync` is the policy the hub honours before it acknowledges anything (`frame`: forced
    to disk per batch). Writers are used from one thread or event loop at a time.
    """

    def __init__(self, *, fsync: FsyncPolicy | str = FsyncPolicy.FRAME) -> None:
        self.fsync = FsyncPolicy(fsync)
        self._writers: dict[str, SessionWriter] = {}

    def open(self, session: str) -> SessionWriter:
        """The session's writer: created, or recovered from what is stored (a torn tail is cut)."""
        writer = self._writers.get(session)
        if writer is None:
            if not is_session_id(session):
                raise UsageError(f"bad session id {session[:40]!r}")
            writer = self._open_writer(session)
            if writer.torn_bytes_cut:
                log.warning("session %s: cut a torn tail of %d bytes left by a crash", session, writer.torn_bytes_cut)
            self._writers[session] = writer
        return writer

    def get(self, session: str) -> SessionWriter | None:
        """The session's writer if it is open, else None: nothing is created or recovered."""
        return self._writers.get(session)

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

    def __init__(self, data_dir: str | Path, *, fsync: FsyncPolicy | str = FsyncPolicy.FRAME) -> None:
        super().__init__(fsync=fsync)
        self.data_dir = Path(data_dir)

    def path(self, session: str) -> Path:
        return self.data_dir / f"{session}{SESSION_SUFFIX}"

    def sessions(self) -> list[str]:
        on_disk = {p.stem for p in self.data_dir.glob(f"*{SESSION_SUFFIX}")} if self.data_dir.is_dir() else set()
        return sorted(on_disk | set(self._writers))

    def read(self, session: str) -> Session:
        writer = self._writers.get(session)
        if writer is not None:
            writer.flush()  # under fsync=never the last batch may still sit in our buffer
        return Session(self.path(session))

    def _open_writer(self, session: str) -> SessionWriter:
        return SessionWriter(self.path(session), fsync=self.fsync)


class MemorySessionStore(SessionStore):
    """Sessions as in-memory session files (see the module docstring); nothing touches disk.

    `fsync` is accepted so a hub over this store takes the same code path as over files;
    syncing a buffer does nothing.
    """

    def __init__(self, snapshot: Mapping[str, bytes] | None = None, *,
                 fsync: FsyncPolicy | str = FsyncPolicy.FRAME) -> None:
        super().__init__(fsync=fsync)
        self._buffers = {session: io.BytesIO(data) for session, data in (snapshot or {}).items()}

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
        buffer = self._buffers.setdefault(session, io.BytesIO())
        return SessionWriter(self._name(session), fsync=self.fsync, buffer=buffer)

    @staticmethod
    def _name(session: str) -> Path:
        return Path("<memory>") / f"{session}{SESSION_SUFFIX}"
