"""Where a recorder puts what it records: the seam between recording and storage.

Live agents write to a `Spool` (crash-safe local file, drained by the shipper); the
replayer and unit tests use `MemorySink`. Blobs are content-addressed, so putting the same
tensor twice stores it once.
"""

from __future__ import annotations

import abc
from types import TracebackType

from edgetrace._records import Span, blob_id

__all__ = ["MemorySink", "SpanSink"]


class SpanSink(abc.ABC):
    """Receives spans and payload blobs from a recorder, in emission order."""

    @abc.abstractmethod
    def emit(self, span: Span) -> None:
        """Store one span. Must not raise into the traced code for transient trouble."""

    @abc.abstractmethod
    def put_blob(self, data: bytes) -> str:
        """Store a payload and return its sha256 hex id."""

    def close(self) -> None:  # noqa: B027 - optional for sinks with nothing to release
        """Flush and release resources."""

    def __enter__(self) -> SpanSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class MemorySink(SpanSink):
    """Keeps everything in lists and dicts: for the replayer, tests and users' own tests."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.blobs: dict[str, bytes] = {}

    def emit(self, span: Span) -> None:
        self.spans.append(span)

    def put_blob(self, data: bytes) -> str:
        sha = blob_id(data)
        self.blobs.setdefault(sha, bytes(data))
        return sha
