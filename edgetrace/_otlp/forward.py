"""Live forwarding: the hub hands every span it stores to an OTel backend as it arrives.

`edgetrace hub --otlp-endpoint` registers an `OtlpForwarder` as the hub's `on_spans` hook,
next to storing (recorded → shipped → stored → **forwarded**). Any SDK `SpanExporter` does:
an OTLP one from `make_exporter`, or `InMemorySpanExporter` to see what would be sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from edgetrace._otlp.mapping import SpanMapper
from edgetrace._records import Manifest, Span
from edgetrace._vclock import apply_delta

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["OtlpForwarder"]

log = logging.getLogger("edgetrace.otel")


class OtlpForwarder:
    """The hub's `on_spans` hook: maps stored spans and queues them for a background exporter.

    Queueing is the SDK's `BatchSpanProcessor` (bounded queue, batches, its own thread), so
    the hub's event loop never waits for a backend; when the queue is full spans are dropped
    with a warning, and export errors are logged by the exporter, never raised into the hub.
    Full vector clocks are rebuilt from the records' deltas as each node's stream arrives in
    order; after a hub restart a node's first clocks may miss entries sent before it.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        manifest_of: Callable[[str], Manifest] | None = None,
        max_queue_size: int = 8192,
        schedule_delay_millis: float = 1000,
        max_export_batch_size: int = 512,
    ) -> None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.exporter = exporter
        self.manifest_of = manifest_of or (lambda session: Manifest(session_id=session))
        self.processor: SpanProcessor = BatchSpanProcessor(
            exporter, max_queue_size=max_queue_size, schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
        )
        self.forwarded = 0
        self._mappers: dict[str, SpanMapper] = {}
        self._clocks: dict[tuple[str, str], Mapping[str, int]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _mapper(self, session: str) -> SpanMapper:
        mapper = self._mappers.get(session)
        if mapper is None:
            try:
                manifest = self.manifest_of(session)
            except Exception:  # a missing manifest must not stop forwarding
                manifest = Manifest(session_id=session)
            mapper = self._mappers[session] = SpanMapper(manifest)
        return mapper

    def __call__(self, session: str, spans: Iterable[Span]) -> None:
        """Queue `spans` just stored in `session`; never blocks on, or raises from, the backend."""
        if self._closed:
            return
        with self._lock:
            mapper = self._mapper(session)
            for span in spans:
                key = (session, span.node)
                clock = apply_delta(self._clocks.get(key, {}), span.vc, own=span.node, seq=span.seq)
                self._clocks[key] = clock
                try:
                    self.processor.on_end(mapper.map(span, clock))
                    self.forwarded += 1
                except Exception as exc:  # never raise into the hub
                    log.warning("cannot forward span %s over OTLP: %s", span.ref, exc)

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
