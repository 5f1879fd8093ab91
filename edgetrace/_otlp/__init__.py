"""The OTLP bridge between edgetrace sessions and OpenTelemetry, one job per module.

Out (stored → **exported / forwarded**):

    ids         derived OTel trace and span ids, namespaced by the session's identity
    content     prompts, answers and decisions where LLM backends look (GenAI, OpenInference)
    mapping     an edgetrace span as an SDK ReadableSpan: resources, attributes, events, links
    exporter    the OTLP exporter to send through (gRPC or HTTP, OTEL_EXPORTER_OTLP_* vars)
    export      a whole session in batches, with retries and a summary (`edgetrace export`)
    forward     spans as the hub stores them (`edgetrace hub --otlp-endpoint`)

In (`edgetrace hub --otlp-listen / --otlp-grpc-listen`; client → … → stored):

    http11      HTTP/1.1 requests and OTLP/HTTP replies on asyncio streams
    grpcserver  OTLP/gRPC `TraceService/Export` on grpcio's asyncio server
    decode      request bodies: protobuf or JSON, gzip, size-bounded
    foreign     OTLP spans as ForeignSpans on `otel:<service>` nodes
    matching    the session a span joins, its parent's ref, its seq; dedup across restarts
    receiver    the servers' shared ingest: stored before acknowledged

The exporter is a seam: `export_session` and `OtlpForwarder` take any SDK `SpanExporter`
(the SDK's `InMemorySpanExporter` is its in-memory twin). Everything here imports the
OpenTelemetry packages lazily, on first use, so a hub without OTLP never loads them.
"""

from __future__ import annotations

from edgetrace._otlp.content import CAPTURE_ENV, DEFAULT_CONTENT_LIMIT, capture_from_env
from edgetrace._otlp.decode import IngestError, decode_request
from edgetrace._otlp.export import ExportSummary, export_session, session_otel_spans
from edgetrace._otlp.exporter import PROTOCOLS, make_exporter, validate_endpoint
from edgetrace._otlp.foreign import ForeignSpan, foreign_spans
from edgetrace._otlp.forward import OtlpForwarder
from edgetrace._otlp.ids import (
    OTEL_NODE_PREFIX,
    IdScheme,
    otel_span_id,
    otel_trace_id,
    session_namespace,
)
from edgetrace._otlp.mapping import ATTR_LIMIT, SpanMapper, compact_clock, otel_attributes
from edgetrace._otlp.receiver import (
    DEFAULT_OTLP_GRPC_PORT,
    DEFAULT_OTLP_PORT,
    TRACES_PATH,
    OtlpReceiver,
)

__all__ = [
    "ATTR_LIMIT",
    "CAPTURE_ENV",
    "DEFAULT_CONTENT_LIMIT",
    "DEFAULT_OTLP_GRPC_PORT",
    "DEFAULT_OTLP_PORT",
    "OTEL_NODE_PREFIX",
    "PROTOCOLS",
    "TRACES_PATH",
    "ExportSummary",
    "ForeignSpan",
    "IdScheme",
    "IngestError",
    "OtlpForwarder",
    "OtlpReceiver",
    "SpanMapper",
    "capture_from_env",
    "compact_clock",
    "decode_request",
    "export_session",
    "foreign_spans",
    "make_exporter",
    "otel_attributes",
    "otel_span_id",
    "otel_trace_id",
    "session_namespace",
    "session_otel_spans",
    "validate_endpoint",
]
