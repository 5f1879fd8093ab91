"""Which OTLP exporter to send through: gRPC or HTTP/protobuf, configured like any OTel SDK.

`edgetrace export` and the hub's `--otlp-endpoint` both get their exporter here. Anything
not given comes from the exporters' own `OTEL_EXPORTER_OTLP_*` variables, so a user's usual
OTel configuration applies. Code that wants spans elsewhere (a test, a custom backend)
skips this and hands any SDK `SpanExporter` to `export_session` or `OtlpForwarder`, e.g.
the SDK's `InMemorySpanExporter`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from edgetrace._errors import UsageError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["PROTOCOLS", "make_exporter"]

#: OTLP transports `--protocol` accepts (the names of OTEL_EXPORTER_OTLP_PROTOCOL).
PROTOCOLS = ("grpc", "http/protobuf")


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
