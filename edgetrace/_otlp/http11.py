"""Just enough HTTP/1.1 for OTLP/HTTP: reading requests and writing replies on asyncio streams.

The receiver's transport (client → **HTTP** → decoded → …). It takes what OTel SDKs and the
Collector's `otlphttp` exporter send: Content-Length or chunked bodies, keep-alive, a
bounded number of headers and body bytes. Malformed input is an `IngestError` carrying the
status to answer with. Replies follow OTLP/HTTP: an `ExportTraceServiceResponse` (with
`partial_success` when spans were rejected) on success, a `google.rpc.Status` on error, each
in the encoding the client sent.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from edgetrace._otlp.decode import IngestError

__all__ = ["RequestHead", "read_body", "read_head", "status_body", "success_body", "write_response"]

MAX_HEADERS = 100
MAX_CHUNKS = 100_000  # chunks per body: bounded like everything a client sends
MAX_TRAILERS = 100
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
            413: "Payload Too Large", 415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class RequestHead:
    """A request line and its headers (names lower-cased)."""

    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.target.split("?")[0]

    @property
    def media(self) -> str:
        """The Content-Type without parameters, lower-cased: how to encode the reply."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def content_length(self) -> int | None:
        """The declared body size (0 when absent), None when it is not a plain number."""
        length = self.headers.get("content-length", "0").strip()
        return int(length) if length.isascii() and length.isdigit() else None

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        return conn != "close" and (self.version == "HTTP/1.1" or conn == "keep-alive")


async def _line(reader: asyncio.StreamReader) -> bytes:
    """One line; a line longer than the stream's limit (64 KiB) is a 431, not an internal error."""
    try:
        return await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):  # readline turns LimitOverrunError into ValueError
        raise IngestError("HTTP request line or header longer than 64 KiB", status=431) from None


async def read_head(reader: asyncio.StreamReader) -> RequestHead | None:
    """The next request's line and headers; None when the client closed the connection."""
    line = await _line(reader)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise IngestError("malformed HTTP request line")
    head = RequestHead(method=parts[0], target=parts[1], version=parts[2])
    for _ in range(MAX_HEADERS + 1):
        raw = await _line(reader)
        if raw in (b"\r\n", b"\n", b""):
            return head
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise IngestError("malformed HTTP header line")
        head.headers[name.strip().lower()] = value.strip()
    raise IngestError("too many HTTP headers")


async def read_body(reader: asyncio.StreamReader, head: RequestHead, limit: int) -> bytes:
    """The request's body, chunked or by Content-Length, refused past `limit` bytes (413)."""
    headers = head.headers
    if head.chunked:
        chunks: list[bytes] = []
        total = 0
        for _ in range(MAX_CHUNKS + 1):
            size_line = (await _line(reader)).split(b";")[0].strip()
            if not size_line or not set(size_line) <= _HEX_DIGITS:  # no sign, no blanks, no 0x
                raise IngestError(f"malformed chunk size {size_line[:20]!r}")
            size = int(size_line, 16)
            if size == 0:
                for _ in range(MAX_TRAILERS + 1):
                    if (await _line(reader)) in (b"\r\n", b"\n", b""):
                        return b"".join(chunks)
                raise IngestError("too many HTTP trailer lines")
            total += size
            if total > limit:
                raise IngestError(f"body is larger than {limit} bytes", status=413)
            chunks.append(await reader.readexactly(size))
            await _line(reader)
        raise IngestError("too many chunks")
    length = head.content_length
    if length is None:
        raise IngestError(f"bad Content-Length {headers.get('content-length', '')[:20]!r}")
    if length > limit:
        raise IngestError(f"body is larger than {limit} bytes", status=413)
    return await reader.readexactly(length)


def status_body(message: str, media: str) -> tuple[bytes, str]:
    """The error body OTLP/HTTP asks for: a google.rpc.Status (code 3, INVALID_ARGUMENT)."""
    if media == "application/json":
        return json.dumps({"code": 3, "message": message}).encode(), "application/json"
    if media in ("application/x-protobuf", "application/protobuf"):
        raw = message.encode()
        length = bytearray()
        n = len(raw)
        while True:
            length.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                break
        return b"\x08\x03\x12" + bytes(length) + raw, "application/x-protobuf"
    return (message + "\n").encode(), "text/plain; charset=utf-8"


def success_body(rejected: list[str], media: str) -> tuple[bytes, str]:
    """An ExportTraceServiceResponse, with partial success naming the first rejected span."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = len(rejected)
        response.partial_success.error_message = f"{len(rejected)} span(s) rejected; first: {rejected[0]}"
    if media == "application/json":
        # protobuf ships no type information and types-protobuf is not a dependency
        from google.protobuf import json_format  # type: ignore[import-untyped]

        return json_format.MessageToJson(response, indent=None).encode(), "application/json"
    return response.SerializeToString(), "application/x-protobuf"


async def write_response(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str,
                         keep: bool) -> None:
    """Send one reply; `keep` says whether the connection stays open after it."""
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n")
    writer.write(head.encode() + body)
    await writer.drain()
