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

__all__ = ["PROTOCOLS", "make_exporter", "resolve_protocol", "validate_endpoint"]

#: OTLP transports `--protocol` accepts (the names of OTEL_EXPORTER_OTLP_PROTOCOL).
PROTOCOLS = ("grpc", "http/protobuf")


def validate_endpoint(endpoint: str, protocol: str) -> str:
    """`endpoint` as the exporter wants it, or a `UsageError` naming what is wrong with it.

    Checked before anything is sent, so a typo is one line at once, not a minute of retries.
    A bare `host:port` gets `http://`; an HTTP endpoint without a path gets `/v1/traces`.
    """
    from urllib.parse import urlsplit

    text = endpoint.strip()
    if not text:
        raise UsageError("empty OTLP endpoint; expected a URL such as http://localhost:4318")
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"bad OTLP endpoint {endpoint!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"bad OTLP endpoint {endpoint!r}: scheme {parts.scheme!r}; expected http or https")
    if not parts.hostname:
        raise UsageError(f"bad OTLP endpoint {endpoint!r}: no host; expected e.g. http://localhost:4318")
    if port == 0:
        raise UsageError(f"bad OTLP endpoint {endpoint!r}: port 0")
    if protocol == "grpc":
        if parts.path not in ("", "/"):
            raise UsageError(f"bad OTLP/gRPC endpoint {endpoint!r}: gRPC takes no path "
                             "(did you mean --protocol http/protobuf?)")
        return text
    if parts.path in ("", "/"):
        text = text.rstrip("/") + "/v1/traces"
    return text


def resolve_protocol(protocol: str | None) -> str:
    if protocol is None:
        protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown OTLP protocol {protocol!r}; expected one of: {', '.join(PROTOCOLS)}")
    return protocol


def make_exporter(
    protocol: str | None = None,
    endpoint: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> SpanExporter:
    """An OTLP span exporter; anything left as None comes from the OTEL_EXPORTER_OTLP_* vars.

    The endpoint (given, or from the variables) is validated first (`validate_endpoint`).
    """
    protocol = resolve_protocol(protocol)
    if endpoint is None:
        from_env = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if from_env:
            validate_endpoint(from_env, "grpc" if protocol == "grpc" else "http/traces")
        elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            validate_endpoint(os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"], protocol)
    else:
        endpoint = validate_endpoint(endpoint, protocol)
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as Grpc,
            )
        except ImportError:
            raise UsageError("OTLP over gRPC needs the gRPC exporter: pip install 'edgetrace[grpc]' "
                             "(or use --protocol http/protobuf)") from None
        return Grpc(endpoint=endpoint, headers=dict(headers) if headers else None, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http(endpoint=endpoint, headers=dict(headers) if headers else None, timeout=timeout)
