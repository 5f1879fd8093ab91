"""Live forwarding: the hub hands every span it stores to an OTel backend as it arrives.

`edgetrace hub --otlp-endpoint` registers an `OtlpForwarder` as the hub's `on_spans` hook,
next to storing (recorded → shipped → stored → **forwarded**). Any SDK `SpanExporter` does:
an OTLP one from `make_exporter`, or `InMemorySpanExporter` to see what would be sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from edgetrace._errors import EdgeTraceError, UsageError
from edgetrace._index import CausalIndex
from edgetrace._otlp.content import decoded_blob
from edgetrace._otlp.ids import IdScheme
from edgetrace._otlp.mapping import SpanMapper, session_epoch_ns
from edgetrace._records import Manifest, Span, SpanKind
from edgetrace._vclock import VectorClock, apply_delta

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

    from edgetrace._session import Session

__all__ = ["OtlpForwarder", "SessionBlobs"]

log = logging.getLogger("edgetrace.otel")

_SESSIONS = 256  # mappers kept (one per session forwarded recently)
_CLOCKS = 100_000  # (session, node) clocks kept before starting afresh


class OtlpForwarder:
    """The hub's `on_spans` hook: maps stored spans and queues them for a background exporter.

    Queueing is the SDK's `BatchSpanProcessor` (bounded queue, batches, its own thread), so
    the hub's event loop never waits for a backend; when the queue is full spans are dropped
    with a warning, and export errors are logged by the exporter, never raised into the hub.
    Full vector clocks are rebuilt from the records' deltas as each node's stream arrives in
    order; after a hub restart a node's first clocks may miss entries sent before it.
    A record that merges another's clock by reference (`Span.merged`, written by compaction
    and merge; the hub refuses it from agents) needs that record's clock: the session's causal
    index, extended call by call, resolves it; a record not forwarded yet is read from
    `read_session(session)`'s index, if given; else the clock misses what the merge brought,
    with a warning.

    Ids follow the session's id scheme, so a span forwarded live and the same span exported
    later from the file have the same ids. A session whose manifest has no epoch yet (agents
    learn it from the driver) is placed in time by the first span forwarded: it is taken to
    have ended when it arrived. `blobs_of(session)` reads payloads for content capture.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        manifest_of: Callable[[str], Manifest] | None = None,
        max_queue_size: int = 8192,
        schedule_delay_millis: float = 1000,
        max_export_batch_size: int = 512,
        capture: bool = False,
        blobs_of: Callable[[str], Callable[[str], bytes | None]] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        read_session: Callable[[str], Session] | None = None,
    ) -> None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.exporter = exporter
        self.manifest_of = manifest_of or (lambda session: Manifest(session_id=session))
        self.processor: SpanProcessor = BatchSpanProcessor(
            exporter, max_queue_size=max_queue_size, schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
        )
        self.capture = capture
        self.blobs_of = blobs_of
        self.clock_ns = clock_ns
        self.forwarded = 0
        self._mappers: OrderedDict[str, SpanMapper] = OrderedDict()
        self.read_session = read_session
        self._clocks: dict[tuple[str, str], Mapping[str, int]] = {}
        self._indexes: dict[str, CausalIndex] = {}  # sessions whose records merge clocks by reference
        self._lock = threading.Lock()
        self._closed = False

    def _mapper(self, session: str, first: Span | None) -> SpanMapper:
        mapper = self._mappers.get(session)
        if mapper is not None:
            self._mappers.move_to_end(session)
            return mapper
        try:
            manifest = self.manifest_of(session)
        except Exception:  # a missing manifest must not stop forwarding
            manifest = Manifest(session_id=session)
        base = session_epoch_ns(manifest)
        if base == 0 and first is not None and first.kind is not SpanKind.OTEL:
            base = max(0, self.clock_ns() - first.end)
        blob = decoded_blob(self.blobs_of(session)) if self.capture and self.blobs_of else None
        mapper = SpanMapper(manifest, ids=IdScheme.for_session(manifest, fallback=session),
                            time_base_ns=base, blob=blob, capture=self.capture)
        self._mappers[session] = mapper
        if len(self._mappers) > _SESSIONS:
            self._mappers.popitem(last=False)
        return mapper

    def __call__(self, session: str, spans: Iterable[Span]) -> None:
        """Queue `spans` just stored in `session`; never blocks on, or raises from, the backend."""
        if self._closed:
            return
        with self._lock:
            spans = list(spans)
            mapper = self._mapper(session, spans[0] if spans else None)
            if len(self._clocks) > _CLOCKS:
                self._clocks.clear()
            resolved = self._resolved(session, spans) if session in self._indexes or any(
                s.merged for s in spans) else None
            for i, span in enumerate(spans):
                if resolved is not None:
                    clock: Mapping[str, int] = resolved[i]
                else:
                    key = (session, span.node)
                    clock = apply_delta(self._clocks.get(key, {}), span.vc, own=span.node, seq=span.seq)
                    self._clocks[key] = clock
                try:
                    self.processor.on_end(mapper.map(span, clock))
                    self.forwarded += 1
                except Exception as exc:  # never raise into the hub
                    log.warning("cannot forward span %s over OTLP: %s", span.ref, exc)

    def _resolved(self, session: str, spans: list[Span]) -> list[VectorClock]:
        """The full clocks of `spans`, resolving clocks by reference with the causal index.

        The hub refuses `merged` from agents, so only a session written by compaction or merge
        comes here. One index per such session is extended call by call; a reference it cannot
        resolve (its record comes in a later call) is read from `read_session(session)`'s
        index if given, else it merges nothing, with a warning."""
        if len(self._indexes) > _SESSIONS:
            self._indexes.clear()
        index = self._indexes.get(session)
        if index is None:
            index = self._indexes[session] = CausalIndex()
        try:
            index.extend(spans)
            return [index.clock(s) for s in spans]
        except UsageError as exc:
            if self.read_session is not None:
                try:
                    whole = self.read_session(session).index
                    return [whole.clock(s) for s in spans]
                except Exception as err:  # never raise into the hub
                    log.warning("cannot read the clocks of session %s: %s", session, err)
            log.warning("%s: its forwarded clock may miss entries", exc)
            index.lenient = True
            try:
                index.extend(spans)
            finally:
                index.lenient = False
            return [index.clock(s) for s in spans]

    def flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is queued now; False if that did not finish within the timeout."""
        return self.processor.force_flush(timeout_millis)

    def close(self) -> None:
        """Export what is queued, then stop the background thread."""
        if not self._closed:
            self._closed = True
            self.processor.shutdown()

    def __enter__(self) -> OtlpForwarder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()



class SessionBlobs:
    """`blobs_of` for a hub: one reader per session, refreshed when a blob is not in it yet.

    `read_session(id)` is the store's `read`; readers follow the file (`refresh()` reads only
    what was appended), so content capture costs one pass over each session, not one per span.
    """

    def __init__(self, read_session: Callable[[str], Session], keep: int = 16) -> None:
        self.read_session = read_session
        self.keep = keep
        self._readers: OrderedDict[str, Session] = OrderedDict()

    def __call__(self, session: str) -> Callable[[str], bytes | None]:
        def read(sha: str) -> bytes | None:
            reader = self._readers.get(session)
            if reader is None:
                reader = self._readers[session] = self.read_session(session)
                if len(self._readers) > self.keep:
                    self._readers.popitem(last=False)
            if sha not in reader.blob_ids():
                reader.refresh()
            try:
                return reader.blob(sha)
            except EdgeTraceError:
                return None

        return read
