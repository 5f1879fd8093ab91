"""Edgetrace spans as OpenTelemetry spans: the mapping both the export and the forwarder use.

Sits after the store (recorded → shipped → stored → **exported**). Each span is rebuilt as the
SDK's `ReadableSpan` with its recorded times and derived ids (`ids.py`), so any OTLP
exporter can send it and every backend (Jaeger, Tempo, a collector) shows it:

- one Resource per node: the app is the service, the node its instance and host; a foreign
  node (`otel:checkout`) is its own service again;
- causality travels as attributes (`edgetrace.vclock`, `edgetrace.seq`) and as a span link
  from every receive to the send that caused it;
- inference spans follow the GenAI conventions (`gen_ai.*`, named `{operation} {model}`);
- payloads stay in the session: attributes carry their sha256 and a short preview, every
  string capped at `ATTR_LIMIT`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

from edgetrace import _attrs as attr
from edgetrace._otlp.ids import OTEL_NODE_PREFIX, is_otel_hex, otel_span_id, otel_trace_id
from edgetrace._records import Manifest, Span, SpanKind, Status
from edgetrace._vclock import VectorClock
from edgetrace._version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import TraceFlags
    from opentelemetry.trace.status import Status as OtelStatus
    from opentelemetry.trace.status import StatusCode

__all__ = ["ATTR_LIMIT", "SpanMapper", "compact_clock", "otel_attributes", "session_epoch_ns"]

#: Longest attribute string sent to a backend; the session keeps the full payload as a blob.
ATTR_LIMIT = 2048


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


def session_epoch_ns(manifest: Manifest) -> int:
    """Unix ns of a session's local time zero (agents count from the session epoch); 0 if unknown."""
    epoch = manifest.meta.get("epoch_ns") if isinstance(manifest.meta, dict) else None
    if isinstance(epoch, int) and epoch > 0:
        return epoch
    if manifest.created:
        try:
            return int(datetime.fromisoformat(manifest.created).timestamp()) * 1_000_000_000
        except ValueError:
            pass
    return 0


class _Sdk(NamedTuple):
    api: ModuleType  # opentelemetry.trace
    readable_span: type[ReadableSpan]
    status: type[OtelStatus]
    status_code: type[StatusCode]
    sampled: TraceFlags


@functools.cache
def _sdk() -> _Sdk:
    """The OTel classes `map` needs, imported once, on first use (import edgetrace stays light)."""
    from opentelemetry import trace as api
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace.status import Status, StatusCode

    return _Sdk(api, ReadableSpan, Status, StatusCode, api.TraceFlags(api.TraceFlags.SAMPLED))


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
        self.time_base_ns = session_epoch_ns(manifest) if time_base_ns is None else time_base_ns
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
            service = str((attrs or {}).get(attr.SERVICE_NAME) or node[len(OTEL_NODE_PREFIX):])
            values: dict[str, Any] = {attr.SERVICE_NAME: service, attr.NODE: node}
        else:
            values = {
                attr.SERVICE_NAME: m.app or "edgetrace",
                attr.SERVICE_INSTANCE_ID: node,
                attr.HOST_NAME: node,
                attr.SERVICE_VERSION: str(m.meta.get("app_version") or m.edgetrace or __version__),
                attr.NODE: node,
            }
        if m.session_id:
            values[attr.SESSION_ID] = m.session_id
        if m.scenario:
            values[attr.SCENARIO] = m.scenario
        found = self._resources[node] = Resource.create(values)
        return found

    def span_id(self, ref: str) -> int:
        """The OTel span id the span `ref` was (or will be) exported under."""
        span = self.lookup(ref)
        if span is not None and span.kind is SpanKind.OTEL:
            own = str(span.attrs.get(attr.OTEL_SPAN_ID, ""))
            if is_otel_hex(own, 16):
                return int(own, 16)
        return otel_span_id(ref, namespace=self.namespace)

    def map(self, span: Span, clock: Mapping[str, int]) -> ReadableSpan:
        """One `ReadableSpan`; `clock` is the span's full vector clock."""
        api, ReadableSpan, OtelStatus, StatusCode, flags = _sdk()

        foreign = span.kind is SpanKind.OTEL
        trace_id = self._trace_ids.get(span.trace)
        if trace_id is None:
            trace_id = otel_trace_id(span.trace or f"untraced:{span.node}", namespace=self.namespace)
            if len(self._trace_ids) < 100_000:
                self._trace_ids[span.trace] = trace_id
        own_id = span.attrs.get(attr.OTEL_SPAN_ID, "") if foreign else ""
        span_id = int(own_id, 16) if isinstance(own_id, str) and is_otel_hex(own_id, 16) else (
            otel_span_id(span.ref, namespace=self.namespace))
        context = api.SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)
        parent = None
        parent_raw = span.attrs.get(attr.OTEL_PARENT_SPAN_ID, "") if foreign else ""
        if span.parent:
            parent = api.SpanContext(trace_id, self.span_id(span.parent), is_remote=False, trace_flags=flags)
        elif isinstance(parent_raw, str) and is_otel_hex(parent_raw, 16):
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
            kind_name = str(span.attrs.get(attr.OTEL_KIND, "INTERNAL")).upper()
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
