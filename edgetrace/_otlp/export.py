"""`edgetrace export`: a whole stored session sent to an OTel backend in batches.

Spans go out in causal order, mapped by `SpanMapper`, through whatever SDK `SpanExporter`
the caller gives (an OTLP one from `make_exporter`, or `InMemorySpanExporter` in tests).
A backend that fails is retried a little, then given up on; the `ExportSummary` says how
many spans got through and, in one line each, why the rest did not. Nothing is raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgetrace._otlp.content import DEFAULT_CONTENT_LIMIT, decoded_blob
from edgetrace._otlp.ids import IdScheme
from edgetrace._otlp.mapping import SpanMapper, session_epoch_ns
from edgetrace._records import SpanKind

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

    from edgetrace._session import Session

__all__ = ["ExportSummary", "export_session", "session_otel_spans"]

log = logging.getLogger("edgetrace.otel")


@dataclass
class ExportSummary:
    """What `export_session` did, as `edgetrace export --json` prints it."""

    spans: int = 0
    exported: int = 0
    failed: int = 0
    traces: int = 0
    batches: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        rate = self.exported / self.seconds if self.seconds > 0 else 0.0
        return {"spans": self.spans, "exported": self.exported, "failed": self.failed,
                "traces": self.traces, "batches": self.batches, "seconds": round(self.seconds, 3),
                "spans_per_second": round(rate, 1), "errors": self.errors}


def session_otel_spans(session: Session, *, namespace: str | None = None, capture: bool = False,
                       content_limit: int = DEFAULT_CONTENT_LIMIT) -> Iterator[ReadableSpan]:
    """Every span of a session as a `ReadableSpan`, in causal order.

    Ids come from the session's identity (`IdScheme.for_session`) unless `namespace` says
    otherwise; `capture` adds prompts and decision inputs read from the session's blobs.
    """
    base = session_epoch_ns(session.manifest)
    if base == 0 and session.spans:
        # no recorded epoch (e.g. a replay): say the session ended when its file was written
        native = [s.end for s in session.spans if s.kind is not SpanKind.OTEL]
        base = max(0, session.path.stat().st_mtime_ns - max(native, default=0))
    ids = IdScheme.for_session(session.manifest, fallback=session.path.stem, override=namespace)

    def read_blob(sha: str) -> bytes | None:
        return session.blob(sha)

    mapper = SpanMapper(session.manifest, lookup=session.get, time_base_ns=base, ids=ids,
                        blob=decoded_blob(read_blob), capture=capture, content_limit=content_limit)
    index = session.index
    for span in index.causal_sort(session.spans):
        yield mapper.map(span, index.clock(span))


class _LastProblem(logging.Handler):
    """Keeps the exporter's last warning, so a failure can say why in one line."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = " ".join(record.getMessage().split())
        except Exception:
            return
        if not self.message:  # the first one names the cause; later ones only say "gave up"
            self.message = text.split(" encountered while exporting")[0][:300]


def _export_batch(exporter: SpanExporter, batch: Sequence[ReadableSpan], retries: int, backoff: float,
                  problem: _LastProblem) -> str:
    """Export one batch, retrying; return "" or the last failure."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    error = ""
    for attempt in range(retries + 1):
        problem.message = ""
        try:
            if exporter.export(batch) is SpanExportResult.SUCCESS:
                return ""
            error = problem.message or "the exporter reported a failure"
        except Exception as exc:  # an exporter bug must not lose the rest of the session
            error = f"{type(exc).__name__}: {exc}"
        if attempt < retries:
            log.info("OTLP export of %d spans failed (%s); retrying", len(batch), error)
            time.sleep(backoff * (2**attempt))
    return error


def export_session(
    session: Session,
    exporter: SpanExporter,
    *,
    batch_size: int = 512,
    retries: int = 1,
    backoff: float = 0.5,
    namespace: str | None = None,
    capture: bool = False,
    content_limit: int = DEFAULT_CONTENT_LIMIT,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Send a whole session through `exporter`; failures are counted and logged, not raised.

    The OTLP exporters already retry transient errors within their timeout; a batch that
    still fails is tried `retries` more times, and after that the backend is taken to be
    down: the remaining spans are counted as failed without waiting on it again. The
    exporter stays open (the caller made it, the caller shuts it down).
    """
    summary = ExportSummary(spans=len(session), traces=len({s.trace for s in session.spans}))
    started = time.perf_counter()
    batch: list[ReadableSpan] = []
    problem = _LastProblem()
    otel_log = logging.getLogger("opentelemetry.exporter")

    def flush() -> None:
        summary.batches += 1
        error = "" if not summary.failed else "skipped: an earlier batch failed"
        if not summary.failed:
            error = _export_batch(exporter, batch, retries, backoff, problem)
        if error:
            summary.failed += len(batch)
            if error not in summary.errors and not error.startswith("skipped"):
                summary.errors.append(error)
        else:
            summary.exported += len(batch)
        batch.clear()
        if progress is not None:
            progress(summary.exported + summary.failed, summary.spans)

    otel_log.addHandler(problem)
    propagate, otel_log.propagate = otel_log.propagate, False  # the SDK's retry chatter: one line at the end
    try:
        for item in session_otel_spans(session, namespace=namespace, capture=capture,
                                       content_limit=content_limit):
            batch.append(item)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    finally:
        otel_log.removeHandler(problem)
        otel_log.propagate = propagate
    summary.seconds = time.perf_counter() - started
    return summary
