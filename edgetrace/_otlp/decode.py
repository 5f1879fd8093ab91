"""OTLP/HTTP trace request bodies, decoded: protobuf or JSON, optionally gzip, size-bounded.

The first step of the ingest (client → **decoded** → foreign spans → numbered → stored).
Bodies come from any client on the network, so every failure is an `IngestError` (a
`TransportError`, in the one `EdgeTraceError` tree) with a one-line reason and the HTTP status
to answer with; nothing else escapes, whatever the bytes.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import TYPE_CHECKING, Any

from edgetrace._errors import TransportError

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["DEFAULT_MAX_BODY", "IngestError", "decode_request"]

#: Largest (inflated) body `decode_request` takes unless told otherwise.
DEFAULT_MAX_BODY = 16 * 1024 * 1024


class IngestError(TransportError):
    """A request the receiver cannot take; `status` is the HTTP status to answer with."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = " ".join(reason.split())[:300]
        self.status = status


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise IngestError(f"body is not valid gzip: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise IngestError(f"body inflates to more than {limit} bytes", status=413)
    if not inflater.eof:
        raise IngestError("gzip body is truncated")
    return data


def _hex_to_b64(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        raise IngestError(f"{where} is not hex: {value[:40]!r}") from None


def _json_ids_to_b64(doc: Any) -> None:
    """OTLP/JSON writes ids as hex where protobuf's JSON mapping expects base64."""
    if not isinstance(doc, dict):
        raise IngestError("JSON body is not an object")
    for rs in _items(doc, "resourceSpans", "resource_spans"):
        for ss in _items(rs, "scopeSpans", "scope_spans"):
            for i, span in enumerate(_items(ss, "spans")):
                for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
                    if key in span:
                        span[key] = _hex_to_b64(span[key], f"spans[{i}].{key}")
                for link in _items(span, "links"):
                    for key in ("traceId", "trace_id", "spanId", "span_id"):
                        if key in link:
                            link[key] = _hex_to_b64(link[key], f"spans[{i}].links.{key}")


def _items(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    for key in keys:
        value = obj.get(key)
        if isinstance(value, list):
            return [v for v in value if isinstance(v, dict)]
    return []


def decode_request(
    body: bytes, *, content_type: str = "application/x-protobuf", content_encoding: str = "",
    max_size: int = DEFAULT_MAX_BODY,
) -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP trace request body; raise `IngestError` saying what is wrong."""
    # protobuf ships no type information and types-protobuf is not a dependency
    from google.protobuf import json_format  # type: ignore[import-untyped]
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, max_size)
    elif encoding not in ("", "identity"):
        raise IngestError(f"unsupported Content-Encoding {encoding!r}; expected gzip or none", 415)
    if len(body) > max_size:
        raise IngestError(f"body is larger than {max_size} bytes", status=413)
    media = content_type.split(";")[0].strip().lower()
    request = ExportTraceServiceRequest()
    if media in ("application/x-protobuf", "application/protobuf"):
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise IngestError(f"body is not an OTLP protobuf ExportTraceServiceRequest: {exc}") from None
    elif media == "application/json":
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise IngestError(f"body is not JSON: {exc}") from None
        _json_ids_to_b64(doc)
        try:
            json_format.ParseDict(doc, request, ignore_unknown_fields=True)
        except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as exc:
            raise IngestError(f"JSON is not an OTLP ExportTraceServiceRequest: {exc}") from None
    else:
        raise IngestError(
            f"unsupported Content-Type {media or '(none)'!r}; expected application/x-protobuf "
            "or application/json", 415)
    return request
