"""The OTLP bridge, outbound: edgetrace spans as OpenTelemetry spans.

Sits after the store (recorded → shipped → stored → **exported**): `edgetrace export` sends a
whole session, and the hub's `--otlp-endpoint` forwards spans as they are stored. Spans are
rebuilt as the SDK's `ReadableSpan` with their recorded times and ids and handed to an
ordinary OTLP exporter, so every backend that speaks OTLP (Jaeger, Tempo, a collector) sees
them, and the exporters' own env vars (`OTEL_EXPORTER_OTLP_*`) apply.

Ids are derived, never random, so exporting the same session twice gives the same trace and
span ids and a parent always points at the span that was exported for it:

- trace id: the edgetrace trace id itself when it is 32 hex digits, else 128 bits of
  sha256(trace);
- span id: the original OTel span id for spans the hub took in over OTLP, else 64 bits of
  sha256(node:seq).

Causality travels as attributes (`edgetrace.vclock`, `edgetrace.seq`) and as a span link
from every receive to the send that caused it. Payloads stay in the session: attributes
carry their sha256 and a short preview, every string capped at 2 KB.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace._errors import UsageError
from edgetrace._records import Manifest, Span, SpanKind, Status
from edgetrace._vclock import VectorClock, apply_delta
from edgetrace._version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

    from edgetrace._session import Session

__all__ = [
    "ATTR_LIMIT",
    "PROTOCOLS",
    "ExportSummary",
    "OtlpForwarder",
    "SpanMapper",
    "compact_clock",
    "export_session",
    "make_exporter",
    "otel_span_id",
    "otel_trace_id",
]

log = logging.getLogger("edgetrace.otel")

#: Longest attribute string sent to a backend; the session keeps the full payload as a blob.
ATTR_LIMIT = 2048
#: OTLP transports `--protocol` accepts (the names of OTEL_EXPORTER_OTLP_PROTOCOL).
PROTOCOLS = ("grpc", "http/protobuf")

# Attributes the OTLP ingest stores on foreign spans, so they export with their own ids.
OTEL_SPAN_ID = attr.OTEL_SPAN_ID
OTEL_PARENT_ID = attr.OTEL_PARENT_SPAN_ID
OTEL_KIND = attr.OTEL_KIND
OTEL_NODE_PREFIX = "otel:"

_HEX = frozenset("0123456789abcdef")


def _is_hex(text: str, size: int) -> bool:
    return len(text) == size and set(text) <= _HEX and set(text) != {"0"}


def otel_trace_id(trace: str, *, namespace: str = "") -> int:
    """The 128-bit OTel trace id of an edgetrace trace id (stable across runs and hosts)."""
    if not namespace and _is_hex(trace, 32):
        return int(trace, 16)
    digest = hashlib.sha256(f"edgetrace-trace\0{namespace}\0{trace}".encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1


def otel_span_id(ref: str, *, namespace: str = "") -> int:
    """The 64-bit OTel span id of a span reference `node:seq`."""
    digest = hashlib.sha256(f"edgetrace-span\0{namespace}\0{ref}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def compact_clock(clock: Mapping[str, int]) -> str:
    """`hub=3,tractor-01=7`: `VectorClock.__str__`, which the index and forwarder already hand us."""
    return str(clock if isinstance(clock, VectorClock) else VectorClock(clock))


def _clip(text: str) -> str:
    if len(text) <= ATTR_LIMIT:
        return text
    cut = text.encode()[: ATTR_LIMIT - 3].decode("utf-8", "ignore")
    return cut + "…"


def _attr_value(value: Any) -> Any:
    """An OTel attribute value: a primitive or a homogeneous list of one; else JSON text."""
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, bytes):
        return _clip(value.hex())
    if isinstance(value, list | tuple) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds <= {str, bool, int, float}:
            items = [_attr_value(v) for v in value]
            if all(type(v) is type(items[0]) for v in items) and len(json.dumps(items)) <= ATTR_LIMIT:
                return items
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return _clip(text)


def otel_attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Recorded attributes made valid for OTLP; `None` values are left out (OTel has no null)."""
    return {str(k): _attr_value(v) for k, v in attrs.items() if v is not None}


def _time_base(manifest: Manifest) -> int:
    """Unix ns of a session's local time zero: agents count from the session epoch."""
    epoch = manifest.meta.get("epoch_ns") if isinstance(manifest.meta, dict) else None
    if isinstance(epoch, int) and epoch > 0:
        return epoch
    if manifest.created:
        try:
            return int(datetime.fromisoformat(manifest.created).timestamp()) * 1_000_000_000
        except ValueError:
            pass
    return 0


@functools.cache
def _sdk() -> tuple[Any, Any, Any, Any]:
    """The OTel classes `map` needs, imported once, on first use (import edgetrace stays light)."""
    from opentelemetry import trace as api
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace.status import Status, StatusCode

    global _SAMPLED
    _SAMPLED = api.TraceFlags(api.TraceFlags.SAMPLED)
    return api, ReadableSpan, Status, StatusCode


_SAMPLED: Any = None

# span kind → OTel SpanKind name
_KINDS: dict[SpanKind, str] = {
    SpanKind.INFER: "CLIENT",
    SpanKind.SEND: "PRODUCER",
    SpanKind.RECV: "CONSUMER",
    SpanKind.STATE_GET: "CLIENT",
    SpanKind.STATE_PUT: "CLIENT",
}


class SpanMapper:
    """Turns edgetrace spans into SDK `ReadableSpan`s for one session.

    `lookup` finds a span by ref (so a parent that came in over OTLP exports under its own
    id); `time_base_ns` moves node-local times (counted from the session epoch) to Unix time.
    """

    def __init__(
        self,
        manifest: Manifest,
        *,
        lookup: Callable[[str], Span | None] | None = None,
        time_base_ns: int | None = None,
        namespace: str = "",
    ) -> None:
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        self.manifest = manifest
        self.lookup = lookup or (lambda ref: None)
        self.time_base_ns = _time_base(manifest) if time_base_ns is None else time_base_ns
        self.namespace = namespace
        self.scope = InstrumentationScope("edgetrace", __version__)
        self._resources: dict[str, Resource] = {}
        self._trace_ids: dict[str, int] = {}

    def resource(self, node: str, attrs: Mapping[str, Any] | None = None) -> Resource:
        """One Resource per node: the app is the service, the node its instance and host."""
        found = self._resources.get(node)
        if found is not None:
            return found
        from opentelemetry.sdk.resources import Resource

        m = self.manifest
        if node.startswith(OTEL_NODE_PREFIX):
            service = str((attrs or {}).get("service.name") or node[len(OTEL_NODE_PREFIX):])
            values: dict[str, Any] = {"service.name": service, attr.NODE: node}
        else:
            values = {
                "service.name": m.app or "edgetrace",
                "service.instance.id": node,
                "host.name": node,
                "service.version": str(m.meta.get("app_version") or m.edgetrace or __version__),
                attr.NODE: node,
            }
        if m.session_id:
            values[attr.SESSION_ID] = m.session_id
        if m.scenario:
            values[attr.SCENARIO] = m.scenario
        found = self._resources[node] = Resource.create(values)
        return found

    def span_id(self, ref: str) -> int:
        span = self.lookup(ref)
        if span is not None and span.kind is SpanKind.OTEL:
            own = str(span.attrs.get(OTEL_SPAN_ID, ""))
            if _is_hex(own, 16):
                return int(own, 16)
        return otel_span_id(ref, namespace=self.namespace)

    def map(self, span: Span, clock: Mapping[str, int]) -> ReadableSpan:
        """One `ReadableSpan`; `clock` is the span's full vector clock."""
        api, ReadableSpan, OtelStatus, StatusCode = _sdk()

        foreign = span.kind is SpanKind.OTEL
        trace_id = self._trace_ids.get(span.trace)
        if trace_id is None:
            trace_id = otel_trace_id(span.trace or f"untraced:{span.node}", namespace=self.namespace)
            if len(self._trace_ids) < 100_000:
                self._trace_ids[span.trace] = trace_id
        flags = _SAMPLED
        own_id = span.attrs.get(OTEL_SPAN_ID, "") if foreign else ""
        span_id = int(own_id, 16) if isinstance(own_id, str) and _is_hex(own_id, 16) else (
            otel_span_id(span.ref, namespace=self.namespace))
        context = api.SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)
        parent = None
        parent_raw = span.attrs.get(OTEL_PARENT_ID, "") if foreign else ""
        if span.parent:
            parent = api.SpanContext(trace_id, self.span_id(span.parent), is_remote=False, trace_flags=flags)
        elif isinstance(parent_raw, str) and _is_hex(parent_raw, 16):
            parent = api.SpanContext(trace_id, int(parent_raw, 16), is_remote=True, trace_flags=flags)

        attrs = otel_attributes(span.attrs)
        attrs.update({
            attr.KIND: span.kind.value,
            attr.NODE: span.node,
            attr.SEQ: span.seq,
            attr.VCLOCK: _clip(compact_clock(clock)),
        })
        if span.trace:
            attrs[attr.TRACE] = _clip(span.trace)
        if span.parent:
            attrs[attr.PARENT] = span.parent
        if span.cause:
            attrs[attr.CAUSE] = span.cause
        for name, sha in span.blobs.items():
            attrs[attr.BLOB_PREFIX + name] = sha
        name = span.name
        if foreign:
            kind_name = str(span.attrs.get(OTEL_KIND, "INTERNAL")).upper()
            attrs.setdefault(attr.UNTIMED, True)
        else:
            kind_name = _KINDS.get(span.kind, "INTERNAL")
            if span.kind in (SpanKind.STATE_GET, SpanKind.STATE_PUT) and span.cause:
                kind_name = "SERVER"  # the state host serving a request
            name = f"{span.kind.value} {span.name}"
        if span.kind is SpanKind.INFER:
            op = str(attrs.setdefault(attr.GEN_AI_OPERATION_NAME, "text_completion"))
            model = str(attrs.setdefault(attr.GEN_AI_REQUEST_MODEL, span.name))
            attrs.setdefault(attr.GEN_AI_RESPONSE_MODEL, model)
            attrs.setdefault(attr.GEN_AI_PROVIDER_NAME, "onnxruntime")
            name = f"{op} {model}"
        status = OtelStatus(StatusCode.UNSET)
        if span.status is Status.ERROR:
            status = OtelStatus(StatusCode.ERROR, _clip(span.error or "error"))
            attrs.setdefault(attr.ERROR_TYPE, "_OTHER")
        links = []
        if span.cause:
            cause = api.SpanContext(trace_id, self.span_id(span.cause), is_remote=False, trace_flags=flags)
            links.append(api.Link(cause, {attr.LINK: "caused_by", attr.CAUSE: span.cause}))
        base = 0 if foreign else self.time_base_ns
        start = base + span.start
        return ReadableSpan(
            name=_clip(name),
            context=context,
            parent=parent,
            resource=self.resource(span.node, span.attrs if foreign else None),
            attributes=attrs,
            links=links,
            kind=getattr(api.SpanKind, kind_name, api.SpanKind.INTERNAL),
            status=status,
            start_time=start,
            end_time=max(start, base + span.end),
            instrumentation_scope=self.scope,
        )


# --- exporters -----------------------------------------------------------------------------------


def make_exporter(
    protocol: str | None = None,
    endpoint: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> SpanExporter:
    """An OTLP span exporter; anything left as None comes from the OTEL_EXPORTER_OTLP_* vars.

    An HTTP endpoint given without a path gets `/v1/traces`, as the env var would.
    """
    import os

    if protocol is None:
        protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown OTLP protocol {protocol!r}; expected one of: {', '.join(PROTOCOLS)}")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        if endpoint is not None and "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        return Grpc(endpoint=endpoint, headers=dict(headers) if headers else None, timeout=timeout)
    from urllib.parse import urlsplit

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    if endpoint is not None:
        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        if urlsplit(endpoint).path in ("", "/"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
    return Http(endpoint=endpoint, headers=dict(headers) if headers else None, timeout=timeout)


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


def session_otel_spans(session: Session, *, namespace: str = "") -> Iterator[ReadableSpan]:
    """Every span of a session as a `ReadableSpan`, in causal order."""
    base = _time_base(session.manifest)
    if base == 0 and session.spans:
        # no recorded epoch (e.g. a replay): say the session ended when its file was written
        native = [s.end for s in session.spans if s.kind is not SpanKind.OTEL]
        base = max(0, session.path.stat().st_mtime_ns - max(native, default=0))
    mapper = SpanMapper(session.manifest, lookup=session.get, time_base_ns=base, namespace=namespace)
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
            log.warning("OTLP export of %d spans failed (%s); retrying", len(batch), error)
            time.sleep(backoff * (2**attempt))
    return error


def export_session(
    session: Session,
    exporter: SpanExporter,
    *,
    batch_size: int = 512,
    retries: int = 1,
    backoff: float = 0.5,
    namespace: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Send a whole session through `exporter`; failures are counted and logged, not raised.

    The OTLP exporters already retry transient errors within their timeout; a batch that
    still fails is tried `retries` more times, and after that the backend is taken to be
    down: the remaining spans are counted as failed without waiting on it again.
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
    try:
        for item in session_otel_spans(session, namespace=namespace):
            batch.append(item)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    finally:
        otel_log.removeHandler(problem)
    summary.seconds = time.perf_counter() - started
    return summary


# --- live forwarding from the hub ----------------------------------------------------------------


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
        self.processor = BatchSpanProcessor(
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
