"""Edgetrace spans as OpenTelemetry spans: the mapping both the export and the forwarder use.

Sits after the store (recorded → shipped → stored → **exported**). Each span is rebuilt as the
SDK's `ReadableSpan` with its recorded times and derived ids (`ids.py`), so any OTLP
exporter can send it and every backend (Jaeger, Tempo, Phoenix, a collector) shows it:

- one Resource per node: the app is the service, the node its instance and host; a foreign
  node (`otel:checkout`) is its own service again, with the instance id it sent (or a stable
  one derived from the session, never the SDK's random one);
- causality travels as attributes (`edgetrace.vclock`, `edgetrace.seq`) and as a span link
  from every receive to the send that caused it;
- inference spans follow the GenAI conventions (`gen_ai.*`, named `{operation} {model}`) and
  carry OpenInference's names too (`content.py`); roots are named by their input
  (`frame tractor-01/f0001`) and every span names its node in attributes, for backends
  that ignore resources;
- spans taken in over OTLP go back out as they came: ids, kind, events, links, status;
- payloads stay in the session: attributes carry their sha256 and a short preview, every
  string capped at `ATTR_LIMIT` UTF-8 bytes (content capture: `content.py`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

from edgetrace import _attrs as attr
from edgetrace._otlp.content import (
    DEFAULT_CONTENT_LIMIT,
    BlobReader,
    clip_utf8,
    content_attributes,
    exception_event,
)
from edgetrace._otlp.ids import OTEL_NODE_PREFIX, IdScheme, is_otel_hex, stable_instance_id
from edgetrace._records import Manifest, Span, SpanKind, Status
from edgetrace._vclock import VectorClock
from edgetrace._version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link, TraceFlags
    from opentelemetry.trace.status import Status as OtelStatus
    from opentelemetry.trace.status import StatusCode

__all__ = ["ATTR_LIMIT", "SpanMapper", "clip", "compact_clock", "otel_attributes", "session_epoch_ns"]

#: Longest attribute string sent to a backend, in UTF-8 bytes; the session keeps the full payload.
ATTR_LIMIT = 2048

# bookkeeping of foreign spans that goes back out as real OTel events and links, not attributes
_STRUCTURED = frozenset({attr.OTEL_EVENTS, attr.OTEL_LINKS})


def compact_clock(clock: Mapping[str, int]) -> str:
    """`hub=3,tractor-01=7`: `VectorClock.__str__`, which the index and forwarder already hand us."""
    return str(clock if isinstance(clock, VectorClock) else VectorClock(clock))


def clip(text: str) -> str:
    """A string cut to `ATTR_LIMIT` UTF-8 bytes: the one cap, on the way in and on the way out."""
    return clip_utf8(text, ATTR_LIMIT)


def _attr_value(value: Any) -> Any:
    """An OTel attribute value: a primitive or a homogeneous list of one; else JSON text."""
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, bytes):
        return clip(value.hex())
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
    return clip(text)


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
    event: type[Event]
    status: type[OtelStatus]
    status_code: type[StatusCode]
    sampled: TraceFlags


@functools.cache
def _sdk() -> _Sdk:
    """The OTel classes `map` needs, imported once, on first use (import edgetrace stays light)."""
    from opentelemetry import trace as api
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace.status import Status, StatusCode

    return _Sdk(api, ReadableSpan, Event, Status, StatusCode, api.TraceFlags(api.TraceFlags.SAMPLED))


# span kind → OTel SpanKind name
_KINDS: dict[SpanKind, str] = {
    SpanKind.INFER: "CLIENT",
    SpanKind.SEND: "PRODUCER",
    SpanKind.RECV: "CONSUMER",
    SpanKind.STATE_GET: "CLIENT",
    SpanKind.STATE_PUT: "CLIENT",
}


def _hex_id(value: Any, size: int) -> int | None:
    return int(value, 16) if isinstance(value, str) and is_otel_hex(value, size) else None


class SpanMapper:
    """Turns edgetrace spans into SDK `ReadableSpan`s for one session.

    `lookup` finds a span by ref (so a parent that came in over OTLP exports under its own
    id); `time_base_ns` moves node-local times (counted from the session epoch) to Unix time;
    `ids` is the session's id scheme (default: from its manifest); `blob` reads a payload by
    sha256 for content capture (`capture`, each value capped at `content_limit` bytes).
    """

    def __init__(
        self,
        manifest: Manifest,
        *,
        lookup: Callable[[str], Span | None] | None = None,
        time_base_ns: int | None = None,
        namespace: str | None = None,
        ids: IdScheme | None = None,
        blob: BlobReader | None = None,
        capture: bool = False,
        content_limit: int = DEFAULT_CONTENT_LIMIT,
    ) -> None:
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        self.manifest = manifest
        self.lookup = lookup or (lambda ref: None)
        self.time_base_ns = session_epoch_ns(manifest) if time_base_ns is None else time_base_ns
        self.ids = ids or IdScheme.for_session(manifest, override=namespace)
        self.blob = blob
        self.capture = capture
        self.content_limit = content_limit
        self.scope = InstrumentationScope("edgetrace", __version__)
        self._resources: dict[str, Resource] = {}
        self._trace_ids: dict[str, int] = {}

    @property
    def namespace(self) -> str:
        return self.ids.namespace

    def resource(self, node: str, attrs: Mapping[str, Any] | None = None) -> Resource:
        """One Resource per node: the app is the service, the node its instance and host."""
        found = self._resources.get(node)
        if found is not None:
            return found
        from opentelemetry.sdk.resources import Resource

        m = self.manifest
        if node.startswith(OTEL_NODE_PREFIX):
            given = attrs or {}
            service = str(given.get(attr.SERVICE_NAME) or node[len(OTEL_NODE_PREFIX):])
            values: dict[str, Any] = {
                attr.SERVICE_NAME: service, attr.NODE: node,
                attr.SERVICE_INSTANCE_ID: str(given.get(attr.SERVICE_INSTANCE_ID)
                                              or stable_instance_id(self.namespace, node)),
            }
            for key in (attr.SERVICE_VERSION, attr.HOST_NAME, attr.SERVICE_NAMESPACE):
                if given.get(key) is not None:
                    values[key] = str(given[key])
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
        values[attr.OI_PROJECT_NAME] = m.app or "edgetrace"
        found = self._resources[node] = Resource.create(values)
        return found

    def span_id(self, ref: str) -> int:
        """The OTel span id the span `ref` was (or will be) exported under."""
        span = self.lookup(ref)
        if span is not None and span.kind is SpanKind.OTEL:
            own = _hex_id(span.attrs.get(attr.OTEL_SPAN_ID), 16)
            if own is not None:
                return own
        return self.ids.span_id(ref)

    def trace_id(self, span: Span) -> int:
        key = span.trace or f"untraced:{span.node}"  # untraced steps of two nodes are two traces
        trace_id = self._trace_ids.get(key)
        if trace_id is None:
            trace_id = self.ids.trace_id(key)
            if len(self._trace_ids) < 100_000:
                self._trace_ids[key] = trace_id
        return trace_id

    def map(self, span: Span, clock: Mapping[str, int]) -> ReadableSpan:
        """One `ReadableSpan`; `clock` is the span's full vector clock."""
        api, ReadableSpan, Event, OtelStatus, StatusCode, flags = _sdk()

        foreign = span.kind is SpanKind.OTEL
        trace_id = self.trace_id(span)
        own_id = _hex_id(span.attrs.get(attr.OTEL_SPAN_ID), 16) if foreign else None
        span_id = own_id if own_id is not None else self.ids.span_id(span.ref)
        context = api.SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)
        parent = None
        # a foreign span's parent is the id it was sent with, whoever that parent turned out to be
        parent_raw = _hex_id(span.attrs.get(attr.OTEL_PARENT_SPAN_ID), 16) if foreign else None
        if parent_raw is not None:
            parent = api.SpanContext(trace_id, parent_raw, is_remote=not span.parent, trace_flags=flags)
        elif span.parent:
            parent = api.SpanContext(trace_id, self.span_id(span.parent), is_remote=False, trace_flags=flags)

        attrs = otel_attributes({k: v for k, v in span.attrs.items() if k not in _STRUCTURED}
                                if foreign else span.attrs)
        attrs.update({
            attr.KIND: span.kind.value,
            attr.NODE: span.node,
            attr.SEQ: span.seq,
            attr.VCLOCK: clip(compact_clock(clock)),
        })
        if span.trace:
            attrs[attr.TRACE] = clip(span.trace)
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
            if span.kind is SpanKind.INPUT and span.trace and not span.parent:
                name = f"{span.name} {span.trace}"  # a root is named by its input: frame tractor-01/f0001
            for key, value in content_attributes(span, session_id=self.manifest.session_id, blob=self.blob,
                                                 capture=self.capture, limit=self.content_limit).items():
                attrs.setdefault(key, value)
        if span.kind is SpanKind.INFER:
            op = str(attrs.setdefault(attr.GEN_AI_OPERATION_NAME, "text_completion"))
            model = str(attrs.setdefault(attr.GEN_AI_REQUEST_MODEL, span.name))
            attrs.setdefault(attr.GEN_AI_RESPONSE_MODEL, model)
            attrs.setdefault(attr.GEN_AI_PROVIDER_NAME, "onnxruntime")
            name = f"{op} {model}"
        status = OtelStatus(StatusCode.UNSET)
        if span.status is Status.ERROR:
            status = OtelStatus(StatusCode.ERROR, clip(span.error or "error"))
            if not foreign:  # a foreign span names its own error.type, or none
                attrs.setdefault(attr.ERROR_TYPE, "_OTHER")
        base = 0 if foreign else self.time_base_ns
        start = base + span.start
        end = max(start, base + span.end)
        events = self._events(span, foreign, Event, end)
        links = self._links(span, foreign, trace_id, flags)
        return ReadableSpan(
            name=clip(name),
            context=context,
            parent=parent,
            resource=self.resource(span.node, span.attrs if foreign else None),
            attributes=attrs,
            events=events,
            links=links,
            kind=getattr(api.SpanKind, kind_name, api.SpanKind.INTERNAL),
            status=status,
            start_time=start,
            end_time=end,
            instrumentation_scope=self.scope,
        )

    @staticmethod
    def _events(span: Span, foreign: bool, Event: type[Event], end: int) -> list[Event]:
        if not foreign:
            raised = exception_event(span.attrs) if span.status is Status.ERROR else None
            return [Event("exception", otel_attributes(raised), timestamp=end)] if raised else []
        found = []
        for item in span.attrs.get(attr.OTEL_EVENTS) or []:
            if isinstance(item, str):  # sessions ingested before events kept more than names
                found.append(Event(clip(item), {}, timestamp=span.start))
            elif isinstance(item, dict):
                when = item.get("time")
                found.append(Event(clip(str(item.get("name", ""))),
                                   otel_attributes(item.get("attributes") or {}),
                                   timestamp=when if isinstance(when, int) and when > 0 else span.start))
        return found

    def _links(self, span: Span, foreign: bool, trace_id: int, flags: TraceFlags) -> list[Link]:
        api = _sdk().api
        links = []
        if span.cause:
            cause = api.SpanContext(trace_id, self.span_id(span.cause), is_remote=False, trace_flags=flags)
            links.append(api.Link(cause, {attr.LINK: "caused_by", attr.CAUSE: span.cause}))
        if foreign:
            for item in span.attrs.get(attr.OTEL_LINKS) or []:
                if isinstance(item, str):  # older sessions: "trace:span"
                    t, _, s = item.partition(":")
                    item = {"trace_id": t, "span_id": s}
                if not isinstance(item, dict):
                    continue
                t_id, s_id = _hex_id(item.get("trace_id"), 32), _hex_id(item.get("span_id"), 16)
                if t_id is None or s_id is None:
                    continue
                linked = api.SpanContext(t_id, s_id, is_remote=True, trace_flags=flags)
                links.append(api.Link(linked, otel_attributes(item.get("attributes") or {})))
        return links
